"""The cattrs converter of the settings tree: strict structuring hooks (no bool for a number, no
string for a list) and the translation of cattrs' errors into one :class:`SettingsError`
naming the bad field's path.

A piece of :mod:`chatmgmt.settings`; :meth:`ChatSettings.from_dict` and overrides use it.
"""

from __future__ import annotations

import enum
import re
import typing
from collections.abc import Mapping
from typing import Any, cast

import attrs
import cattrs
from cattrs.cols import homogenous_tuple_structure_factory
from cattrs.errors import ClassValidationError

from ..errors import SettingsError
from ..model import EndReason, ReceptionMode
from ._enums import (
    FieldType,
    LeaveAction,
    OverflowCondition,
    QueueLimitAction,
    SecondRating,
    StrategyName,
    SubmissionMode,
    UnverifiedIdentity,
)


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)

    def _structure_float(value: Any, _t: type) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Invalid(f"expected a number, got {_short(value)}")
        try:
            return float(value)  # inf and nan go on to the range check, which names the range
        except OverflowError:
            raise _Invalid(f"expected a finite number, got {_short(value)}") from None

    def _structure_int(value: Any, _t: type) -> int:
        if isinstance(value, float) and value.is_integer():
            return int(value)  # JSON has one number type: 3.0 is the integer 3
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Invalid(f"expected an integer, got {_short(value)}")
        return value

    def _structure_bool(value: Any, _t: type) -> bool:
        if not isinstance(value, bool):
            raise _Invalid(f"expected true or false, got {_short(value)}")
        return value

    def _structure_str(value: Any, _t: type) -> str:
        if not isinstance(value, str):
            raise _Invalid(f"expected a string, got {_short(value)}")
        return value

    def _structure_enum(value: Any, type_: type[enum.Enum]) -> enum.Enum:
        try:
            return type_(value)
        except ValueError:
            raise _Invalid(f"expected {_allowed(type_)}, got {_short(value)}") from None

    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook(str, _structure_str)
    # str-based enums would dispatch to the str hook: give each its own, validating hook
    for enum_type in (
        ReceptionMode,
        EndReason,
        UnverifiedIdentity,
        StrategyName,
        OverflowCondition,
        QueueLimitAction,
        LeaveAction,
        SubmissionMode,
        FieldType,
        SecondRating,
    ):
        conv.register_structure_hook(enum_type, _structure_enum)
    conv.register_unstructure_hook(
        Mapping, lambda m: {k: conv.unstructure(v) for k, v in m.items()}
    )

    def _tuple_factory(type_: Any) -> Any:
        inner = homogenous_tuple_structure_factory(type_, conv)

        def structure(value: Any, t: Any) -> Any:
            # a string is iterable: "web" must not become ("w", "e", "b")
            if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
                raise _Invalid(f"expected a list, got {_short(value)}")
            return inner(value, t)

        return structure

    conv.register_structure_hook_factory(
        lambda t: cast(Any, typing.get_origin(t)) is tuple and typing.get_args(t)[-1:] == (...,),
        _tuple_factory,
    )

    def _section_factory(type_: Any) -> Any:
        inner = conv.gen_structure_attrs_fromdict(type_)

        def structure(value: Any, t: Any) -> Any:
            # a section is a JSON object; a list or a string there says so, not "no .keys()"
            if not isinstance(value, Mapping):
                raise _Invalid(
                    f"expected a mapping of setting names to values (a JSON object), "
                    f"got {_short(value)}"
                )
            return inner(value, t)

        return structure

    conv.register_structure_hook_factory(attrs.has, _section_factory)

    def _mapping_factory(type_: Any) -> Any:
        inner = conv.gen_structure_mapping(type_)

        def structure(value: Any, t: Any) -> Any:
            if not isinstance(value, Mapping):
                raise _Invalid(
                    f"expected a mapping of names to values (a JSON object), got {_short(value)}"
                )
            return inner(value, t)

        return structure

    conv.register_structure_hook_factory(
        lambda t: cast(Any, typing.get_origin(t)) in (Mapping, typing.Mapping), _mapping_factory
    )
    return conv


class _Invalid(ValueError):
    """A value refused by one of the converter's hooks; its message is the whole story."""


def _short(value: object) -> str:
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def _allowed(type_: type[enum.Enum]) -> str:
    values = [repr(m.value) for m in type_]
    return "one of " + ", ".join(values)


def _format_exception(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, _Invalid):
        return str(exc)
    inner = _strip_optional(type_)
    if isinstance(inner, type) and issubclass(inner, enum.Enum):
        return f"expected {_allowed(inner)}"
    if isinstance(exc, KeyError):
        return "required setting missing"
    return cattrs.v.format_exception(exc, type_)


def _strip_optional(type_: Any) -> Any:
    args = [a for a in typing.get_args(type_) if a is not type(None)]
    if len(args) == 1 and type(None) in typing.get_args(type_):
        return args[0]
    return type_


_converter = _make_converter()


def _leaf_messages(exc: BaseException) -> list[str]:
    if not isinstance(exc, (ClassValidationError, cattrs.IterableValidationError)) and not (
        isinstance(exc, cattrs.BaseValidationError)
    ):
        return [f"{_format_exception(exc, None)} @ $"]
    return list(cattrs.transform_error(exc, path="$", format_exception=_format_exception))


def _find_settings_error(exc: BaseException) -> SettingsError | None:
    if isinstance(exc, SettingsError):
        return exc
    for sub in getattr(exc, "exceptions", ()):
        found = _find_settings_error(sub)
        if found is not None:
            return found
    return None


def _translate(exc: BaseException) -> SettingsError:
    found = _find_settings_error(exc)
    if found is not None:
        return found
    messages = _leaf_messages(exc)
    first = messages[0] if messages else str(exc)
    problem, _, where = first.rpartition(" @ ")
    if not problem:
        problem, where = first, "$"
    path = where.removeprefix("$").lstrip(".")
    path = re.sub(r"\[['\"]([^'\"\]]*)['\"]\]", r".\1", path)
    path = re.sub(r"\.\[", "[", path)
    extra = re.match(r"extra fields found \((.*)\)", problem)
    if extra:
        name = extra.group(1).split(", ")[0]
        path = f"{path}.{name}" if path else name
        problem = "unknown setting"
    if len(messages) > 1:
        problem += f" (and {len(messages) - 1} more problem(s))"
    return SettingsError(path, problem)
