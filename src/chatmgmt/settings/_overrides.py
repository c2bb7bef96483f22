"""Overrides per channel and skill group: how a partial section is laid over a section
(:func:`resolve`) and how a section checks every override it carries.

A piece of :mod:`chatmgmt.settings`, which re-exports :func:`resolve`.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from typing import Any, TypeVar

import attrs

from ..errors import SettingsError
from ._base import _fail
from ._convert import _converter, _leaf_messages

_S = TypeVar("_S")


_SKIP_CHECK: contextvars.ContextVar[bool] = contextvars.ContextVar("_SKIP_CHECK", default=False)


def _check_with_overrides(section: Any, root: str) -> None:
    if _SKIP_CHECK.get():
        return
    section.check(root)
    for kind in ("groups", "channels"):
        overrides = getattr(section, kind, None)
        if overrides is None or not isinstance(overrides, Mapping):
            continue
        for name, partial in overrides.items():
            _apply(section, partial, f"{root}.{kind}.{name}").check(f"{root}.{kind}.{name}")
    _check_layered(section, root)


def _check_layered(section: Any, root: str) -> None:
    """A chat of group g on channel c gets the channel's override over the group's: check
    each such pair too (each override alone was checked against the global section)."""
    groups = getattr(section, "groups", None)
    channels = getattr(section, "channels", None)
    if not (isinstance(groups, Mapping) and isinstance(channels, Mapping) and channels):
        return
    for group, g_partial in groups.items():
        if not isinstance(g_partial, Mapping):
            return  # groups of whole sections (not partial overrides): nothing is layered
        over_group = _apply(section, g_partial, f"{root}.groups.{group}")
        for channel, c_partial in channels.items():
            path = f"{root}.channels.{channel}"
            try:
                _apply(over_group, c_partial, path).check(path)
            except SettingsError as exc:
                why = f"{exc.problem} (for a chat of group {group!r}, over {root}.groups.{group})"
                raise _fail(exc.path, why) from None


_NOT_OVERRIDABLE = frozenset({"channels", "groups"})


def _apply(section: _S, partial: Mapping[str, Any], path: str) -> _S:
    if not isinstance(partial, Mapping):
        raise _fail(path, "an override must be a mapping of field names to values")
    attrs.resolve_types(type(section))  # type: ignore[type-var]
    fields = attrs.fields_dict(type(section))  # type: ignore[arg-type]
    changes: dict[str, Any] = {}
    for key, value in partial.items():
        if key not in fields or key in _NOT_OVERRIDABLE:
            raise _fail(f"{path}.{key}", "not a setting that can be overridden here")
        field_type = fields[key].type
        try:
            changes[key] = _converter.structure(value, field_type)  # type: ignore[arg-type]
        except Exception as exc:
            messages = _leaf_messages(exc)
            why = messages[0].rpartition(" @ ")[0] if messages else ""
            raise _fail(f"{path}.{key}", why or f"invalid value {value!r}") from None
    token = _SKIP_CHECK.set(True)
    try:
        return attrs.evolve(section, **changes)  # type: ignore[misc]
    finally:
        _SKIP_CHECK.reset(token)


def resolve(section: _S, *, channel: str | None = None, group: str | None = None) -> _S:
    """The effective section for a chat: channel override > group override > global.

    Works for every section that carries ``channels`` and/or ``groups`` overrides
    (``submission``, ``end_of_chat``, ``bot``); other sections are returned unchanged.
    """
    groups = getattr(section, "groups", None)
    channels = getattr(section, "channels", None)
    out = section
    # ``groups and``/``channels and``: no override at all (the usual case) costs no
    # isinstance check against the Mapping ABC
    if group is not None and groups and isinstance(groups, Mapping) and group in groups:
        partial = groups[group]
        if isinstance(partial, Mapping):
            out = _apply(out, partial, f"groups.{group}")
    if channel is not None and channels and isinstance(channels, Mapping) and channel in channels:
        out = _apply(out, channels[channel], f"channels.{channel}")
    return out
