"""Chat Monitoring: the live snapshot, recent moderation alerts and OpenTelemetry metrics.

* :class:`Snapshot` (with :class:`GroupView` and :class:`Alert`) is what
  :meth:`chatmgmt.ChatManager.monitor` returns; :func:`build_snapshot` is the pure fold of the
  stores' reads behind it.
* :class:`AlertLog` is the bounded, per-process ring of recent ``moderation.*`` events.
* :class:`ChatMetrics` turns committed events, webhook attempts and snapshots into OpenTelemetry
  metrics (:data:`METRICS`), through ``opentelemetry-api`` (the ``chatmgmt[metrics]`` extra).
* :func:`fan_out` combines event sinks.

See ``docs/monitoring.md``.
"""

from __future__ import annotations

import logging
from typing import Any

from ..model import Event
from ..ports import EventSink
from ._alerts import ALERT_TYPES, AlertLog
from ._metrics import METRICS, ChatMetrics
from ._snapshot import Alert, GroupView, Snapshot, build_snapshot, group_counts

__all__ = [
    "ALERT_TYPES",
    "METRICS",
    "Alert",
    "AlertLog",
    "ChatMetrics",
    "GroupView",
    "Snapshot",
    "build_snapshot",
    "fan_out",
    "group_counts",
]

log = logging.getLogger("chatmgmt")


class _FanOut:
    def __init__(self, sinks: tuple[EventSink, ...]) -> None:
        self.sinks = sinks

    def emit(self, event: Event) -> None:
        for sink in self.sinks:
            try:
                sink.emit(event)
            except Exception:
                log.exception("event sink failed on %s", getattr(event, "type", event))


def fan_out(*sinks: EventSink | None) -> Any:
    """One event sink that hands each event to every sink given (None skipped), in order; a
    sink that raises is logged and the others still get the event."""
    flat: list[EventSink] = []
    for sink in sinks:
        if isinstance(sink, _FanOut):
            flat.extend(sink.sinks)
        elif sink is not None:
            flat.append(sink)
    return _FanOut(tuple(flat))
