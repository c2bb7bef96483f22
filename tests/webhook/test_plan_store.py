"""Pure planning functions."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatmgmt.delivery import DeliveryTimeoutError
from chatmgmt.ports import Attempt, Delivery, DeliveryStatus, HttpResponse, OutboxEntry
from chatmgmt.settings import WebhookEndpoint, WebhookSettings
from chatmgmt.webhook import _plan as plan
from webhook.webhook_helpers import message_event

NOW = 1_764_000_000.0
S = WebhookSettings(min_retry_after_error_s=60.0)


def resp(status: int, **headers: str) -> HttpResponse:
    return HttpResponse(status, headers, b"x", 0.01)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (200, "success"),
        (204, "success"),
        (299, "success"),
        (301, "retry"),
        (302, "retry"),
        (304, "retry"),
        (400, "give_up"),
        (401, "give_up"),
        (404, "give_up"),
        (408, "retry"),
        (410, "gone"),
        (429, "retry"),
        (500, "retry"),
        (503, "retry"),
    ],
)
def test_classify_statuses(status: int, kind: str) -> None:
    assert plan.classify(resp(status), NOW, S).kind.value == kind


def test_classify_retry_4xx_option_and_errors() -> None:
    assert plan.classify(resp(404), NOW, S, retry_4xx=True).kind.value == "retry"
    timeout = plan.classify(DeliveryTimeoutError("slow"), NOW, S)
    assert timeout.not_before_s == 60.0 and timeout.attempt.error.startswith("timeout")
    reset = plan.classify(ConnectionResetError("boom"), NOW, S)
    assert reset.not_before_s == 0.0 and reset.attempt.status is None
    assert plan.classify(resp(429), NOW, S).not_before_s == 60.0
    assert plan.classify(resp(429, **{"Retry-After": "600"}), NOW, S).not_before_s == 600.0
    assert plan.classify(resp(503, **{"retry-after": "30"}), NOW, S).not_before_s == 30.0


def test_retry_after_parsing() -> None:
    assert plan.retry_after({"retry-after": "120"}, NOW) == 120.0
    assert plan.retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 1445412470.0) == 10.0
    assert plan.retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 1445412490.0) == 0.0
    assert plan.retry_after({"retry-after": "soon"}, NOW) is None
    assert plan.retry_after({"retry-after": "-5"}, NOW) is None
    assert plan.retry_after({}, NOW) is None


def _delivery(attempts: int = 0) -> Delivery:
    a = tuple(Attempt(NOW, 500, 0.1) for _ in range(attempts))
    return Delivery("e", "ep", "t", ("e",), (), b"{}", NOW, NOW, attempts=a)


@given(st.integers(0, 9), st.integers(0, 2**32))
def test_schedule_with_jitter_bounds(made: int, seed: int) -> None:
    s = WebhookSettings(jitter=0.1)
    outcome = plan.classify(resp(500), NOW, s)
    d = plan.decide(_delivery(made), outcome, s, NOW, random.Random(seed))
    if made + 1 >= len(s.retry_schedule_s):
        assert d.status is DeliveryStatus.DEAD
    else:
        base = s.retry_schedule_s[made + 1]
        assert d.status is DeliveryStatus.PENDING
        assert base * 0.9 - 1e-6 <= d.next_attempt_at - NOW <= base * 1.1 + 1e-6


def test_standard_schedule_ends_after_ten_attempts_and_caps_retry_after() -> None:
    s = WebhookSettings(jitter=0.0)
    assert s.retry_schedule_s == (0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
    outcome = plan.classify(resp(503, **{"retry-after": str(10**9)}), NOW, s)
    d = plan.decide(_delivery(0), outcome, s, NOW, random.Random(1))
    assert d.next_attempt_at == NOW + 86400  # a huge Retry-After is capped
    d = plan.decide(_delivery(9), plan.classify(resp(500), NOW, s), s, NOW, random.Random(1))
    assert d.status is DeliveryStatus.DEAD and "10 attempts" in d.reason


def test_should_disable() -> None:
    s = WebhookSettings(disable_after_s=100.0)
    assert not plan.should_disable(None, NOW, s)
    assert not plan.should_disable(NOW - 99, NOW, s)
    assert plan.should_disable(NOW - 100, NOW, s)


def test_fan_out_subscriptions() -> None:
    eps = (
        WebhookEndpoint(id="all", url="https://a.example/h"),
        WebhookEndpoint(id="chat", url="https://a.example/h", event_types=("chat.*",)),
        WebhookEndpoint(id="off", url="https://a.example/h", enabled=False),
        WebhookEndpoint(id="batch", url="https://a.example/h", batch_max=5),
    )
    s = WebhookSettings(endpoints=eps)
    entries = [OutboxEntry("1", message_event(1))]
    out = plan.fan_out(entries, s, NOW)
    assert [d.endpoint_id for d in out.deliveries] == ["all"]
    assert [b.endpoint_id for b in out.buffered] == ["batch"]
    out = plan.fan_out(entries, s, NOW, disabled=frozenset({"all", "batch"}))
    assert {d.endpoint_id: d.status for d in out.deliveries} == {
        "all": DeliveryStatus.DEAD,
        "batch": DeliveryStatus.DEAD,
    }
    assert out.deliveries[0].body is out.deliveries[1].body  # serialized once


def test_batch_planning() -> None:
    ep = WebhookEndpoint(id="b", url="https://a.example/h", batch_max=2, batch_interval_s=5)
    from chatmgmt.webhook import BufferedEvent

    buf = [BufferedEvent("b", message_event(i), NOW + i) for i in range(3)]
    got = plan.plan_batches(ep, buf, NOW + 2)
    assert [d.event_ids for d in got] == [("evt_c_1_0000", "evt_c_1_0001")]
    got = plan.plan_batches(ep, buf, NOW + 7)
    assert [len(d.event_ids) for d in got] == [2, 1]
    assert got[0].id == plan.batch_id(got[0].event_ids)
    assert plan.plan_batches(ep, buf[2:], NOW + 3, flush=True)[0].event_ids == ("evt_c_1_0002",)


# The delivery store's contract (formerly tested here against the memory store only) is
# chatmgmt.testing._delivery_contract, run against every adapter in test_delivery_stores.py.
