"""A clock that moves only when told to."""

from __future__ import annotations

import threading

__all__ = ["ManualClock"]


class ManualClock:
    """A :class:`~chatmgmt.ports.Clock` for tests: ``advance`` or ``set`` moves it.

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
