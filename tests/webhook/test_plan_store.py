"""Pure planning functions and the in-memory delivery store's contract."""

from __future__ import annotations

import random
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatmgmt.ports import HttpResponse, OutboxEntry
from chatmgmt.settings import WebhookEndpoint, WebhookSettings
from chatmgmt.storage.memory_delivery import MemoryDeliveryStore
from chatmgmt.webhook import Attempt, DeliveryStatus, DeliveryTimeoutError
from chatmgmt.webhook import _plan as plan
from chatmgmt.webhook._store import Delivery
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


# --------------------------------------------------------------------------- store


def d_(i: int, chat: str | None = "c", at: float = NOW) -> Delivery:
    return Delivery(f"e{i}", "ep", "t", (f"e{i}",), (chat,) if chat else (), b"{}", at, at)


def test_store_add_is_idempotent_and_orders_per_chat() -> None:
    s = MemoryDeliveryStore()
    assert s.add([d_(1), d_(2), d_(3, chat="other"), d_(4, chat=None)]) == 4
    assert s.add([d_(1), d_(2)]) == 0
    got = [x.id for x in s.claim_due("ep", NOW, 10, 30)]
    assert got == ["e1", "e3", "e4"]  # e2 waits for e1 (same chat)
    assert s.claim_due("ep", NOW, 10, 30) == []  # leased
    s.finish("ep", "e1", Attempt(NOW, 200, 0.1), DeliveryStatus.DELIVERED, NOW)
    assert [x.id for x in s.claim_due("ep", NOW, 10, 30)] == ["e2"]
    # an abandoned lease expires
    assert {x.id for x in s.claim_due("ep", NOW + 31, 10, 30)} == {"e2", "e3", "e4"}


def test_store_retry_dead_replay_and_health() -> None:
    s = MemoryDeliveryStore()
    s.add([d_(1), d_(2)])
    [_first] = s.claim_due("ep", NOW, 10, 30)
    h = s.finish("ep", "e1", Attempt(NOW, 500, 0.1), DeliveryStatus.PENDING, NOW + 5)
    assert h.failing_since == NOW
    assert s.claim_due("ep", NOW + 4, 10, 30) == []
    assert [x.id for x in s.claim_due("ep", NOW + 5, 10, 30)] == ["e1"]
    s.finish("ep", "e1", Attempt(NOW + 5, 500, 0.1), DeliveryStatus.DEAD, 0, "gave up")
    assert [x.id for x in s.dead_letters()] == ["e1"]
    assert s.dead_letters(since=NOW + 6) == []
    # e2 is no longer blocked by the dead e1
    assert [x.id for x in s.claim_due("ep", NOW + 5, 10, 30)] == ["e2"]
    h = s.finish("ep", "e2", Attempt(NOW + 6, 200, 0.1), DeliveryStatus.DELIVERED, 0)
    assert h.failing_since is None
    assert s.replay("ep", "e1", NOW + 10)
    assert s.get("ep", "e1").round_start == 2  # type: ignore[union-attr]
    assert [x.id for x in s.claim_due("ep", NOW + 10, 10, 30)] == ["e1"]
    assert s.purge(NOW + 100) == 1  # e2 (delivered)
    assert s.get("ep", "e2") is None


def test_store_disable_dead_letters_pending() -> None:
    s = MemoryDeliveryStore()
    s.add([d_(1), d_(2, chat="x")])
    assert s.disable("ep", "gone", NOW)
    assert not s.disable("ep", "gone", NOW)
    assert s.claim_due("ep", NOW, 10, 30) == []
    assert {x.id for x in s.dead_letters("ep")} == {"e1", "e2"}
    s.enable("ep")
    assert s.replay_since(NOW, NOW + 1) == 2
    assert {x.id for x in s.claim_due("ep", NOW + 1, 10, 30)} == {"e1", "e2"}


def test_store_seal_batches() -> None:
    from chatmgmt.webhook import BufferedEvent

    s = MemoryDeliveryStore()
    events = [message_event(i) for i in range(3)]
    s.add([], [BufferedEvent("ep", e, NOW) for e in events])
    s.add([], [BufferedEvent("ep", events[0], NOW)])  # duplicate fan-out ignored
    assert len(s.buffered("ep")) == 3
    batch = Delivery("b1", "ep", "t", ("evt_c_1_0000", "evt_c_1_0001"), ("c_1",), b"[]", NOW, NOW)
    assert s.seal("ep", batch.event_ids, batch)
    assert not s.seal("ep", batch.event_ids, batch)
    assert [b.event.id for b in s.buffered("ep")] == ["evt_c_1_0002"]
    assert s.add([], [BufferedEvent("ep", events[0], NOW)]) == 0  # sealed ids stay seen


def test_store_concurrent_claims_never_double_lease() -> None:
    s = MemoryDeliveryStore()
    s.add([d_(i, chat=f"c{i}") for i in range(500)])
    got: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        while True:
            batch = s.claim_due("ep", NOW, 7, 1000)
            if not batch:
                return
            with lock:
                got.extend(x.id for x in batch)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == sorted(f"e{i}" for i in range(500))
