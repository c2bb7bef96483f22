"""The :class:`~chatmgmt.ports.RateCounter` contract: sliding windows, every hit counted."""

from __future__ import annotations

from ._support import StorageCase, run_threads

__all__ = ["RateCounterContract"]


class RateCounterContract(StorageCase):
    """Sliding-window counters."""

    def test_rate_counter_sliding_window(self) -> None:
        """hit counts the hits of its key within the window."""
        s = self.storage
        assert s.counters.hit("k", 0.0, 10.0) == 1
        assert s.counters.hit("k", 5.0, 10.0) == 2
        assert s.counters.hit("other", 5.0, 10.0) == 1
        assert s.counters.hit("k", 9.0, 10.0) == 3
        assert s.counters.hit("k", 10.0, 10.0) == 3  # the hit at 0 left the window
        assert s.counters.hit("k", 30.0, 10.0) == 1

    def test_concurrent_hits_are_all_counted(self) -> None:
        """Concurrent hits are counted once each."""
        s = self.storage
        run_threads(self.threads, lambda i: s.counters.hit("k", 1.0, 100.0))
        assert s.counters.hit("k", 2.0, 100.0) == self.threads + 1
