"""OpenTelemetry metrics from committed events, the dispatcher's attempts and snapshots,
checked with the SDK's in-memory reader."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from chatmgmt import ChatManager, ChatSettings, CustomerInfo
from chatmgmt.model import MessageRole
from chatmgmt.monitoring import METRICS, ChatMetrics
from chatmgmt.ports import Attempt, Delivery, DeliveryStatus
from chatmgmt.storage import MemoryStorage
from chatmgmt.testing import ManualClock, make_agent, sequential_ids

START = 1_700_000_000.0


def _points(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], Any]]]:
    data = reader.get_metrics_data()
    out: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    assert data is not None
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for p in metric.data.data_points:
                    value = getattr(p, "value", None)
                    if value is None:
                        value = (p.count, p.sum)
                    out.setdefault(metric.name, []).append((dict(p.attributes or {}), value))
    return out


def test_counters_histograms_and_gauges() -> None:
    reader = InMemoryMetricReader()
    metrics = ChatMetrics(MeterProvider(metric_readers=[reader]))
    assert metrics.enabled
    clock = ManualClock(START)
    settings = ChatSettings.from_dict(
        {
            "sensitive_words": {
                "customer": [{"word": "badword", "category": "abuse", "action": "mask"}]
            }
        }
    )
    m = ChatManager(MemoryStorage(), settings, clock=clock, ids=sequential_ids())
    m.observe(metrics)
    m.register_agent(make_agent("ann", groups=["sales"], limit=1))
    m.register_agent(make_agent("sup", groups=["vip"], limit=2))
    first = m.open_chat(CustomerInfo(partner_id="u1"), skill_group="sales")
    clock.advance(5)
    second = m.open_chat(CustomerInfo(partner_id="u2"), skill_group="sales")  # queued
    clock.advance(7)
    m.send_message(first.id, "hi badword", sender="u1")
    clock.advance(3)
    m.send_message(first.id, "hello", role=MessageRole.AGENT, sender="ann")
    m.whisper(first.id, "sup", "ok", role="supervisor")
    clock.advance(20)
    m.end_chat(first.id, by="ann")  # ann takes the queued chat: it waited 30 s
    points = _points(reader)
    assert set(points) <= set(METRICS)
    assert points["chatmgmt.chats.opened"] == [({"skill_group": "sales", "channel": "web"}, 2)]
    assert points["chatmgmt.chats.queued"] == [({"skill_group": "sales", "mode": "queue"}, 1)]
    assigned = {tuple(sorted(a.items())): v for a, v in points["chatmgmt.chats.assigned"]}
    assert assigned == {(("skill_group", "sales"), ("transfer", False)): 2}
    assert points["chatmgmt.chats.ended"] == [({"skill_group": "sales", "reason": "agent"}, 1)]
    roles = {a["role"]: v for a, v in points["chatmgmt.messages"]}
    assert roles["customer"] == 1 and roles["agent"] == 1 and roles["whisper"] == 1
    assert points["chatmgmt.moderation.hits"] == [
        ({"category": "abuse", "action": "mask", "role": "customer"}, 1)
    ]
    assert points["chatmgmt.queue.wait"] == [({"skill_group": "sales"}, (1, 30.0))]
    assert points["chatmgmt.chat.first_response"] == [({"skill_group": "sales"}, (1, 15.0))]
    assert points["chatmgmt.chat.handle_time"] == [
        ({"skill_group": "sales", "reason": "agent"}, (1, 35.0))
    ]
    queue = {a["skill_group"]: v for a, v in points["chatmgmt.queue.length"]}
    assert queue == {"sales": 0, "vip": 0}
    agents = {a["status"]: v for a, v in points["chatmgmt.agents"]}
    assert agents["online"] == 2 and agents["offline"] == 0
    assert second.id  # the queued chat was assigned by the drain


def test_delivery_hook_counts_attempts_by_result() -> None:
    reader = InMemoryMetricReader()
    metrics = ChatMetrics(MeterProvider(metric_readers=[reader]))

    class _Core:
        attempt_hooks: list[Any] = []

    core = _Core()
    metrics.watch(core)
    delivery = Delivery("d1", "crm", "chat.ended", ("e1",), ("c1",), b"{}", 0.0, 0.0)
    for status, latency in ((DeliveryStatus.PENDING, 0.5), (DeliveryStatus.DELIVERED, 0.25)):
        for hook in core.attempt_hooks:
            hook(delivery, Attempt(1.0, 200, latency), status)
    points = _points(reader)
    results = {a["result"]: v for a, v in points["chatmgmt.webhook.deliveries"]}
    assert results == {"retry": 1, "delivered": 1}
    latency = {a["result"]: v for a, v in points["chatmgmt.webhook.latency"]}
    assert latency == {"retry": (1, 0.5), "delivered": (1, 0.25)}


def test_without_a_provider_it_uses_the_global_one_and_never_fails() -> None:
    metrics = ChatMetrics()
    m = ChatManager(clock=ManualClock(START))
    m.observe(metrics)
    m.register_agent(make_agent("ann"))
    m.open_chat(CustomerInfo(partner_id="u"))
