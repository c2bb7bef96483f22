"""The clocks: the wall clock (the default) and a manual clock for tests and simulations."""

from __future__ import annotations

import threading
import time

__all__ = ["ManualClock", "SystemClock"]


class SystemClock:
    """The wall clock (``time.time()``): the default :class:`~chatmgmt.ports.Clock`."""

    def now(self) -> float:
        """The current Unix time."""
        return time.time()


class ManualClock:
    """A :class:`~chatmgmt.ports.Clock` that moves only when told to: ``advance`` or ``set``.

    Used by the simulator and by tests (``chatmgmt.testing`` re-exports it).

    >>> clock = ManualClock(100.0)
    >>> clock.advance(5)
    105.0
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        """The current manual time."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (>= 0) and return the new time."""
        if seconds < 0:
            raise ValueError("a ManualClock never goes back")
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, now: float) -> None:
        """Jump to ``now`` (not earlier than the current time)."""
        if now < self._now:
            raise ValueError("a ManualClock never goes back")
        self._now = float(now)
