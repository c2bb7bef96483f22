"""OpenTelemetry metrics derived from committed events and from the webhook dispatcher.

:class:`ChatMetrics` is an event sink: the manager feeds it every committed event
(:meth:`chatmgmt.ChatManager.observe`), so the rule of what counts as "a chat opened" or "a
chat's queue wait" lives once, in the events the core already emits. The dispatcher reports each
recorded attempt through its attempt hook (:meth:`ChatMetrics.watch`). Gauges read the last
snapshot (:meth:`ChatMetrics.bind` a source, or :meth:`ChatMetrics.record_snapshot`).

It uses ``opentelemetry-api`` only (the ``chatmgmt[metrics]`` extra); without it every method
does nothing. The host configures the SDK (``MeterProvider``, readers, exporters) as usual.
The catalogue of names and units is :data:`METRICS` (and ``docs/monitoring.md``).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..model import AgentStatus, Event
from ._snapshot import Snapshot

__all__ = ["METRICS", "ChatMetrics"]

log = logging.getLogger("chatmgmt")

METRICS: Mapping[str, tuple[str, str, str]] = {
    "chatmgmt.chats.opened": ("counter", "{chat}", "chats opened (channel, skill_group)"),
    "chatmgmt.chats.assigned": (
        "counter",
        "{chat}",
        "chats given to an agent, transfers included (skill_group, transfer)",
    ),
    "chatmgmt.chats.queued": (
        "counter",
        "{chat}",
        "chats put in a queue or the Always On pool (skill_group, mode)",
    ),
    "chatmgmt.chats.ended": (
        "counter",
        "{chat}",
        "chats ended, by reason; abandoned chats count with reason abandoned (skill_group, reason)",
    ),
    "chatmgmt.messages": ("counter", "{message}", "messages stored, by role (role)"),
    "chatmgmt.moderation.hits": (
        "counter",
        "{hit}",
        "sensitive-word hits, one per category of a message (category, action, role)",
    ),
    "chatmgmt.webhook.deliveries": (
        "counter",
        "{attempt}",
        "webhook attempts recorded, by result delivered, retry or dead (endpoint, result)",
    ),
    "chatmgmt.queue.wait": (
        "histogram",
        "s",
        "from a chat's first queuing to its first assignment, or to abandoning (skill_group)",
    ),
    "chatmgmt.chat.first_response": (
        "histogram",
        "s",
        "from a chat's start to its first agent message (skill_group)",
    ),
    "chatmgmt.chat.handle_time": (
        "histogram",
        "s",
        "from a chat's first assignment to its end (skill_group, reason)",
    ),
    "chatmgmt.webhook.latency": (
        "histogram",
        "s",
        "the latency of each webhook attempt (endpoint, result)",
    ),
    "chatmgmt.queue.length": (
        "gauge",
        "{chat}",
        "chats waiting per skill group, from the last snapshot (skill_group)",
    ),
    "chatmgmt.agents": (
        "gauge",
        "{agent}",
        "agents by status, from the last snapshot (status)",
    ),
}
"""Every metric: name -> (instrument, unit, description with its attributes)."""

_TRACKED = 100_000  # per-chat start times kept for the histograms (oldest forgotten first)


class _Times:
    """Bounded per-chat timestamps (the histograms' start points)."""

    def __init__(self) -> None:
        self._items: OrderedDict[tuple[str, str], float] = OrderedDict()

    def put(self, chat_id: str, kind: str, at: float, *, keep: bool = True) -> None:
        key = (chat_id, kind)
        if keep and key in self._items:
            return
        self._items[key] = at
        if len(self._items) > _TRACKED:
            self._items.popitem(last=False)

    def pop(self, chat_id: str, kind: str) -> float | None:
        return self._items.pop((chat_id, kind), None)

    def get(self, chat_id: str, kind: str) -> float | None:
        return self._items.get((chat_id, kind))


class ChatMetrics:
    """OpenTelemetry instruments fed by events (an :class:`~chatmgmt.ports.EventSink`), by the
    dispatcher's attempt hook and by snapshots; a no-op without ``opentelemetry-api``.

    ``meter_provider``: where the instruments come from (default: the global provider). The
    histograms measure between events of one chat seen by this process (a chat queued in one
    process and assigned in another is not measured; at most 100,000 chats are tracked).
    """

    def __init__(self, meter_provider: Any = None) -> None:
        self._lock = threading.Lock()
        self._times = _Times()
        self._snapshot: Snapshot | None = None
        self._source: Callable[[], Snapshot] | None = None
        try:
            from opentelemetry import metrics as otel
        except ImportError:  # the extra is not installed: every method is a no-op
            self.enabled = False
            return
        self.enabled = True
        provider = meter_provider if meter_provider is not None else otel.get_meter_provider()
        meter = provider.get_meter("chatmgmt")
        self._observation = otel.Observation
        made: dict[str, Any] = {}
        for name, (kind, unit, description) in METRICS.items():
            if kind == "counter":
                made[name] = meter.create_counter(name, unit=unit, description=description)
            elif kind == "histogram":
                made[name] = meter.create_histogram(name, unit=unit, description=description)
        meter.create_observable_gauge(
            "chatmgmt.queue.length",
            callbacks=[self._queue_lengths],
            unit=METRICS["chatmgmt.queue.length"][1],
            description=METRICS["chatmgmt.queue.length"][2],
        )
        meter.create_observable_gauge(
            "chatmgmt.agents",
            callbacks=[self._agents],
            unit=METRICS["chatmgmt.agents"][1],
            description=METRICS["chatmgmt.agents"][2],
        )
        self._i = made

    # ----------------------------------------------------------------- inputs

    def emit(self, event: Event) -> None:
        """Take one committed event (the :class:`~chatmgmt.ports.EventSink` method)."""
        if not self.enabled:
            return
        with self._lock:
            self._on_event(event)

    def watch(self, dispatcher: Any) -> None:
        """Count the attempts a webhook dispatcher (sync or async) records, by result, and
        their latency."""
        core = getattr(dispatcher, "_core", dispatcher)
        core.attempt_hooks.append(self._on_attempt)

    def bind(self, source: Callable[[], Snapshot]) -> None:
        """Read the gauges from ``source()`` at each collection (the sync manager binds its
        :meth:`~chatmgmt.ChatManager.monitor` when observed)."""
        self._source = source

    def record_snapshot(self, snapshot: Snapshot) -> None:
        """Keep ``snapshot`` for the gauges (for async hosts, which cannot be called back)."""
        self._snapshot = snapshot

    # ----------------------------------------------------------------- the rules

    def _add(self, name: str, value: float, attributes: Mapping[str, Any]) -> None:
        self._i[name].add(value, dict(attributes))

    def _record(self, name: str, value: float, attributes: Mapping[str, Any]) -> None:
        self._i[name].record(max(0.0, value), dict(attributes))

    def _on_event(self, event: Event) -> None:
        t = event.type
        data = event.data
        chat = event.chat_id or ""
        group = {"skill_group": data.get("skill_group", "")}
        at = event.timestamp
        times = self._times
        if t == "chat.started":
            self._add("chatmgmt.chats.opened", 1, {**group, "channel": data.get("channel", "")})
            times.put(chat, "started", at)
        elif t in ("chat.queued", "chat.unassigned"):
            mode = "queue" if t == "chat.queued" else "pool"
            self._add("chatmgmt.chats.queued", 1, {**group, "mode": mode})
            times.put(chat, "queued", at)
        elif t in ("chat.assigned", "chat.transferred"):
            if data.get("agent_id") is None:
                return  # transferred back to the queue: counted by its chat.queued, if any
            transfer = t == "chat.transferred"
            self._add("chatmgmt.chats.assigned", 1, {**group, "transfer": transfer})
            queued = times.pop(chat, "queued")
            if queued is not None:
                self._record("chatmgmt.queue.wait", at - queued, group)
            times.put(chat, "assigned", at)
        elif t == "chat.ended":
            reason = str(data.get("end_reason", ""))
            self._add("chatmgmt.chats.ended", 1, {**group, "reason": reason})
            assigned = times.pop(chat, "assigned")
            if assigned is not None:
                self._record(
                    "chatmgmt.chat.handle_time", at - assigned, {**group, "reason": reason}
                )
            for kind in ("started", "queued", "replied"):
                times.pop(chat, kind)
        elif t == "chat.abandoned":
            self._add("chatmgmt.chats.ended", 1, {**group, "reason": "abandoned"})
            queued = times.pop(chat, "queued")
            if queued is not None:
                self._record("chatmgmt.queue.wait", at - queued, group)
            times.pop(chat, "started")
        elif t.startswith("message.") or t == "supervisor.whispered":
            role = "whisper" if t == "supervisor.whispered" else str(data.get("role", ""))
            self._add("chatmgmt.messages", 1, {"role": role})
            if t == "message.agent" and times.get(chat, "replied") is None:
                started = times.get(chat, "started")
                times.put(chat, "replied", at)
                if started is not None:
                    self._record("chatmgmt.chat.first_response", at - started, group)
        elif t == "moderation.hit":
            action = str(data.get("action", ""))
            role = str(data.get("role", ""))
            for category in sorted(set(data.get("categories", ())) or {""}):
                attrs_ = {"category": category, "action": action, "role": role}
                self._add("chatmgmt.moderation.hits", 1, attrs_)

    def _on_attempt(self, delivery: Any, attempt: Any, status: Any) -> None:
        if not self.enabled:
            return
        value = getattr(status, "value", str(status))
        result = {"pending": "retry"}.get(value, value)
        attributes = {"endpoint": delivery.endpoint_id, "result": result}
        with self._lock:
            self._add("chatmgmt.webhook.deliveries", 1, attributes)
            self._record("chatmgmt.webhook.latency", float(attempt.latency_s), attributes)

    # ----------------------------------------------------------------- gauges

    def _current(self) -> Snapshot | None:
        if self._source is not None:
            try:
                self._snapshot = self._source()
            except Exception:
                log.exception("metrics: reading the snapshot failed")
        return self._snapshot

    def _queue_lengths(self, _options: Any) -> Iterable[Any]:
        snapshot = self._current()
        if snapshot is None:
            return []
        return [
            self._observation(view.waiting, {"skill_group": name})
            for name, view in snapshot.groups.items()
        ]

    def _agents(self, _options: Any) -> Iterable[Any]:
        snapshot = self._current()
        if snapshot is None:
            return []
        counts = dict.fromkeys((s.value for s in AgentStatus), 0)
        for load in snapshot.agents:
            counts[load.agent.status.value] += 1
        return [self._observation(n, {"status": s}) for s, n in counts.items()]
