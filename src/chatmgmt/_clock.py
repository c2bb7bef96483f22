"""The default clock."""

from __future__ import annotations

import time

__all__ = ["SystemClock"]


class SystemClock:
    """The wall clock (``time.time()``): the default :class:`~chatmgmt.ports.Clock`."""

    def now(self) -> float:
        """The current Unix time."""
        return time.time()
