"""Reproducible ids for tests: inject ``sequential_ids()`` as a manager's ``ids``."""

from __future__ import annotations

import itertools
from collections.abc import Callable

__all__ = ["sequential_ids"]


def sequential_ids(start: int = 1) -> Callable[[], str]:
    """A source of ids ``000000000000000000000001``, ``...02``, ... (24 hex digits, as the
    default source gives): two managers given one each create the same ids in the same order.

    >>> ids = sequential_ids()
    >>> ids(), ids()
    ('000000000000000000000001', '000000000000000000000002')
    """
    counter = itertools.count(start)
    return lambda: f"{next(counter):024x}"
