"""The recent moderation alerts the live snapshot shows: a bounded ring in the process.

Every committed ``moderation.hit`` and ``moderation.alert`` event passes through the core's one
emit step; :class:`AlertLog` keeps the last ``size`` of them (older ones fall off). Nothing is
scanned and nothing is stored: the ring is per manager (per process). A host running several
processes that wants one list for all of them keeps its own store, fed from the outbox, the
webhooks or an event sink.
"""

from __future__ import annotations

import threading
from collections import deque

from ..model import Event
from ._snapshot import Alert

__all__ = ["ALERT_TYPES", "AlertLog"]

ALERT_TYPES = frozenset({"moderation.hit", "moderation.alert"})
"""The event types the monitor keeps as alerts."""


class AlertLog:
    """The last ``size`` moderation events as :class:`Alert` values (thread-safe)."""

    def __init__(self, size: int = 100) -> None:
        self._ring: deque[Alert] = deque(maxlen=max(0, size))
        self._lock = threading.Lock()

    def record(self, event: Event) -> None:
        """Keep ``event`` when it is a moderation event; ignore anything else."""
        if event.type in ALERT_TYPES:
            alert = Alert.from_event(event)
            with self._lock:
                self._ring.append(alert)

    def recent(self, limit: int | None = None) -> tuple[Alert, ...]:
        """The kept alerts, newest last (the last ``limit`` when given)."""
        with self._lock:
            items = tuple(self._ring)
        return items if limit is None else items[max(0, len(items) - limit) :]
