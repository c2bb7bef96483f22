"""Generate the settings reference of ``docs/settings.md`` from the settings attrs classes.

:func:`render_settings_markdown` walks :class:`~chatmgmt.settings.ChatSettings` and prints one
table per section: every setting's dotted path, type, default (as ``from_dict`` takes it), a
one-line description and where it can be overridden. Descriptions come from a field's
``metadata["doc"]`` when present, else from the first sentence of the class docstring that
names the field (````name````), else from the docstring of the field's own type.

``python -m chatmgmt._settings_doc`` rewrites the part of ``docs/settings.md`` between
:data:`BEGIN_MARKER` and :data:`END_MARKER`; a test fails when the page is stale.
"""

from __future__ import annotations

import enum
import inspect
import json
import re
import sys
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from .settings import ChatSettings, SatisfactionSettings
from .settings._satisfaction import _INVITATION_RULES

__all__ = ["BEGIN_MARKER", "END_MARKER", "render_settings_markdown", "update_settings_doc"]

BEGIN_MARKER = "<!-- BEGIN GENERATED SETTINGS REFERENCE -->"
"""The line after which ``docs/settings.md`` holds the generated reference."""
END_MARKER = "<!-- END GENERATED SETTINGS REFERENCE -->"
"""The line before which the generated reference ends."""

_OVERRIDE_FIELDS = ("channels", "groups")


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))


def _args(tp: Any) -> tuple[Any, ...]:
    return typing.get_args(tp)


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _strip_none(tp: Any) -> Any:
    if _is_union(tp):
        rest = [a for a in _args(tp) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return tp


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    if tp is Any:
        return "any"
    if _is_union(tp):
        return " | ".join(_type_name(a) for a in _args(tp))
    origin = typing.get_origin(tp)
    if origin is not None:
        args = _args(tp)
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return f"list of {_type_name(args[0])}"
        if origin in (Mapping, dict) or (isinstance(origin, type) and issubclass(origin, Mapping)):
            return f"mapping of {_type_name(args[0])} to {_type_name(args[1])}"
        return str(tp)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return " | ".join(f'"{m.value}"' for m in tp)
    if isinstance(tp, type):
        return {"str": "string", "bool": "boolean", "int": "integer", "float": "number"}.get(
            tp.__name__, tp.__name__
        )
    return str(tp)


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if attrs.has(type(value)):
        return {f.name: _plain(getattr(value, f.name)) for f in attrs.fields(type(value))}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list, frozenset)):
        return [_plain(v) for v in value]
    return value


def _default(field: attrs.Attribute[Any]) -> str:
    default = field.default
    if default is attrs.NOTHING:
        return "required"
    factory = getattr(default, "factory", None)
    if isinstance(default, attrs.Factory) and callable(factory):  # type: ignore[arg-type]
        default = factory()
    text = json.dumps(_plain(default), ensure_ascii=False)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"`{text}`".replace("|", "\\|")


_SENTENCE = re.compile(r"(?<=[^.]\.)\s+(?=[A-Z`(])")


def _sentences(doc: str) -> list[str]:
    out: list[str] = []
    for paragraph in doc.strip().split("\n\n"):
        body = " ".join(line.strip() for line in paragraph.splitlines())
        out += [s.strip() for s in _SENTENCE.split(body) if s.strip()]
    return out


def _summary(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().split("\n\n", 1)[0].replace("\n", " ")


def _describe(cls: type, field: attrs.Attribute[Any], tp: Any) -> str:
    if "doc" in field.metadata:
        return str(field.metadata["doc"])
    mention = f"``{field.name}``"
    for sentence in _sentences(inspect.getdoc(cls) or ""):
        if mention in sentence:
            clauses = [c.strip() for c in sentence.split("; ")]
            own = [c for c in clauses if c.startswith(mention)]
            best = own[0] if own else sentence
            return best.rstrip(";").replace("``", "`")
    inner = _strip_none(tp)
    origin = typing.get_origin(inner)
    if origin is tuple and _args(inner):
        inner = _args(inner)[0]
    if isinstance(inner, type) and (issubclass(inner, enum.Enum) or attrs.has(inner)):
        return _summary(inner).replace("``", "`")
    return ""


def _scope(cls: type, name: str, hints: Mapping[str, Any]) -> list[str]:
    """Where the setting ``name`` of section ``cls`` can be overridden."""
    if cls is SatisfactionSettings:  # schemes per group (groups); invitation rules per
        # group (group_rules) and channel (channels)
        if name == "scheme":
            return ["group"]
        return ["channel", "group"] if name in _INVITATION_RULES else []
    if name in _OVERRIDE_FIELDS:
        return []
    out: list[str] = []
    for kind, label in (("channels", "channel"), ("groups", "group")):
        tp = hints.get(kind)
        if tp is None or typing.get_origin(tp) is None:
            continue
        args = _args(tp)
        if len(args) != 2 or typing.get_origin(tp) is tuple:
            continue
        value = args[1]
        if typing.get_origin(value) is not None and issubclass(typing.get_origin(value), Mapping):
            out.append(label)  # partial overrides: every field of the section
        elif isinstance(value, type) and attrs.has(value):
            own = {f.name for f in attrs.fields(value)}
            if name in own or _strip_none(hints[name]) is value:
                out.append(label)
    return out


def _rows(cls: type, prefix: str, out: list[str]) -> None:
    hints = _hints(cls)
    for field in attrs.fields(cls):
        path = f"{prefix}.{field.name}" if prefix else field.name
        tp = hints[field.name]
        scope = _scope(cls, field.name, hints)
        where = ", ".join(scope) if scope else "—"
        desc = _describe(cls, field, tp).replace("|", "\\|")
        type_name = _type_name(tp).replace("|", "\\|")
        out.append(f"| `{path}` | {type_name} | {_default(field)} | {where} | {desc} |")
        inner = _strip_none(tp)
        origin = typing.get_origin(inner)
        args = _args(inner)
        if isinstance(inner, type) and attrs.has(inner):
            _rows(inner, path, out)
        elif origin is tuple and args and isinstance(args[0], type) and attrs.has(args[0]):
            _rows(args[0], f"{path}[]", out)
        elif (
            origin is not None
            and isinstance(origin, type)
            and issubclass(origin, Mapping)
            and len(args) == 2
            and isinstance(args[1], type)
            and attrs.has(args[1])
        ):
            placeholder = "<group>" if field.name == "groups" else "<key>"
            _rows(args[1], f"{path}.{placeholder}", out)


def render_settings_markdown() -> str:
    """The settings reference as Markdown: one table per section of :class:`ChatSettings`."""
    out: list[str] = [
        "Generated from `chatmgmt/settings/` by `python -m chatmgmt._settings_doc`; "
        "do not edit by hand.",
        "",
        "Paths: `a.b` is a field of a section, `a[]` an element of a list, `a.<group>` an entry "
        "of a mapping. *Overridable* names the override mappings that can change a setting "
        "(`channel`: the section's `channels`, `group`: its `groups`).",
        "",
    ]
    header = [
        "| setting | type | default | overridable per | description |",
        "|---|---|---|---|---|",
    ]
    top: list[str] = []
    for field in attrs.fields(ChatSettings):
        tp = _hints(ChatSettings)[field.name]
        if not (isinstance(tp, type) and attrs.has(tp)):
            top.append(
                f"| `{field.name}` | {_type_name(tp).replace('|', chr(92) + '|')} | "
                f"{_default(field)} | — | "
                f"{_describe(ChatSettings, field, tp)} |"
            )
    out += ["### Top level", "", *header, *top, ""]
    for field in attrs.fields(ChatSettings):
        tp = _hints(ChatSettings)[field.name]
        if isinstance(tp, type) and attrs.has(tp):
            rows: list[str] = []
            _rows(tp, field.name, rows)
            out += [f"### `{field.name}` — {tp.__name__}", "", _summary(tp), ""]
            out += [*header, *rows, ""]
    return "\n".join(out).rstrip() + "\n"


def update_settings_doc(path: str | Path) -> bool:
    """Rewrite the generated part of the page at ``path``; True when it changed."""
    page = Path(path)
    text = page.read_text(encoding="utf-8")
    head, sep, rest = text.partition(BEGIN_MARKER)
    if not sep or END_MARKER not in rest:
        raise ValueError(f"{path}: markers {BEGIN_MARKER!r} and {END_MARKER!r} not found")
    tail = rest.split(END_MARKER, 1)[1]
    new = f"{head}{BEGIN_MARKER}\n\n{render_settings_markdown()}\n{END_MARKER}{tail}"
    if new == text:
        return False
    page.write_text(new, encoding="utf-8")
    return True


if __name__ == "__main__":  # pragma: no cover
    target = sys.argv[1] if len(sys.argv) > 1 else "docs/settings.md"
    print(("updated " if update_settings_doc(target) else "unchanged ") + target)
