"""Shared checks of the settings tree: typed errors naming the path, number ranges, text leaves.

A piece of :mod:`chatmgmt.settings`, which re-exports its public names; kept apart so that each
module holds one part of the tree.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from typing import Any, cast

import attrs

from .._text import text_problem
from ..errors import SettingsError


def _fail(path: str, problem: str) -> SettingsError:
    return SettingsError(path, problem)


def _need(cond: bool, path: str, problem: str) -> None:
    if not cond:
        raise _fail(path, problem)


MAX_SECONDS = 10 * 366 * 24 * 3600.0
"""The longest duration any setting accepts: ten years, in seconds."""
MAX_COUNT = 1_000_000
"""The largest count (lengths, limits, levels) any setting accepts."""


def _number(
    value: object,
    path: str,
    *,
    lo: float = 0,
    hi: float = MAX_SECONDS,
    above: bool = False,
    integer: bool = False,
    note: str = "",
) -> None:
    """Raise SettingsError at ``path`` unless ``value`` is a finite number in the range.

    The range is ``lo <= value <= hi`` (``lo < value`` when ``above``); the message names it.
    """
    if integer:
        ok_type = isinstance(value, int) and not isinstance(value, bool)
        kind = "an integer"
    else:
        ok_type = isinstance(value, (int, float)) and not isinstance(value, bool)
        kind = "a number"
    low = f"> {lo:g}" if above else f">= {lo:g}"
    if integer:
        allowed = f"{kind} from {int(lo) + above} to {int(hi)}"
    elif hi == MAX_SECONDS:
        allowed = f"{kind} {low} and <= {hi:.0f} (ten years)"
    else:
        allowed = f"{kind} {low} and <= {hi:g}"
    if note:
        allowed += f" ({note})"
    if not ok_type:
        raise _fail(path, f"must be {allowed}, got {value!r}")
    number = cast(float, value)
    if not math.isfinite(number) or number < lo or number > hi or (above and number == lo):
        raise _fail(path, f"must be {allowed}, got {number!r}")


def _check_text_leaves(value: object, path: str) -> None:
    """Every string can be stored and serialized (no lone surrogate, no NUL); every number is
    finite (a safety net: each number also has its own range check)."""
    if isinstance(value, str):
        problem = text_problem(value)
        if problem is not None:
            raise _fail(path, problem)
    elif isinstance(value, float):
        _need(math.isfinite(value), path, f"must be a finite number, got {value!r}")
    elif isinstance(value, enum.Enum):
        return
    elif attrs.has(type(value)):
        for field in attrs.fields(cast(Any, type(value))):
            _check_text_leaves(getattr(value, field.name), f"{path}.{field.name}".lstrip("."))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            key_path = f"{path}.{key}".lstrip(".") if isinstance(key, str) else path
            if isinstance(key, str):
                problem = text_problem(key)
                if problem is not None:
                    raise _fail(path, f"a key {problem}")
            _check_text_leaves(item, key_path)
    elif isinstance(value, (tuple, list)):
        for i, item in enumerate(value):
            _check_text_leaves(item, f"{path}[{i}]")
