"""End-to-end delivery against a real threaded HTTP receiver on loopback, with faults."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable

import pytest
import standardwebhooks

from chatmgmt.delivery import Dispatcher, UrllibTransport
from chatmgmt.ports import DeliveryStatus
from chatmgmt.settings import WebhookSettings
from chatmgmt.storage.memory import MemoryStorage
from chatmgmt.storage.memory_delivery import MemoryDeliveryStore
from chatmgmt.testing import ManualClock
from chatmgmt.webhook import EventType, batch_id, serialize, verify
from chatmgmt.webhook._plan import fan_out
from webhook.webhook_helpers import (
    SECRET,
    SECRET2,
    Received,
    Receiver,
    endpoint,
    message_event,
    settings_for,
)


def make(
    settings: WebhookSettings,
    clock: ManualClock,
    storage: MemoryStorage | None = None,
    store: MemoryDeliveryStore | None = None,
    seed: int = 1,
) -> tuple[Dispatcher, MemoryStorage, MemoryDeliveryStore]:
    storage = storage if storage is not None else MemoryStorage()
    store = store if store is not None else MemoryDeliveryStore()
    d = Dispatcher(storage, settings, store, clock=clock, rng=random.Random(seed))
    return d, storage, store


def drain(d: Dispatcher, clock: ManualClock, done: Callable[[], bool], step: float = 300.0) -> int:
    for rounds in range(60):
        d.run_once()
        if done():
            return rounds
        clock.advance(step)
    raise AssertionError("not done after 60 rounds")


def first_acceptance_order(receiver: Receiver, path: str = "/hook") -> dict[str, list[int]]:
    seen: set[str] = set()
    order: dict[str, list[int]] = {}
    for r in receiver.by_path(path):
        if r.accepted and r.msg_id not in seen:
            seen.add(r.msg_id)
            env = r.json()
            order.setdefault(env["chat_id"], []).append(env["seq"])
    return order


def test_happy_path_signed_and_acked(receiver: Receiver, clock: ManualClock) -> None:
    d, storage, _store = make(settings_for(endpoint(receiver, secrets=(SECRET, SECRET2))), clock)
    events = [message_event(i, chat=f"c_{i % 3}") for i in range(9)]
    storage.outbox.append(events)
    report = d.run_once()
    assert report.fanned_out == 9 and report.delivered == 9
    assert storage.outbox.pending() == 0
    got = {r.msg_id: r for r in receiver.by_path("/hook")}
    assert set(got) == {e.id for e in events}
    for e in events:
        r = got[e.id]
        assert r.body == serialize(e)
        assert r.headers["content-type"] == "application/json"
        assert int(r.headers["webhook-timestamp"]) == int(clock.now())
        verify(r.body, r.headers, SECRET, now=clock.now())
        verify(r.body, r.headers, SECRET2, now=clock.now())
        env = r.json()
        assert env["id"] == e.id and env["type"] == e.type and env["seq"] == e.seq
        assert set(env) >= {"type", "timestamp", "data", "id", "seq", "schema", "chat_id"}
    d.close()


def test_reference_package_accepts_real_requests(receiver: Receiver) -> None:
    real_clock = ManualClock(time.time())
    d, storage, _ = make(settings_for(endpoint(receiver)), real_clock)
    storage.outbox.append([message_event(1)])
    d.run_once()
    r = receiver.by_path("/hook")[0]
    assert standardwebhooks.Webhook(SECRET).verify(r.body, r.headers)["id"] == "evt_c_1_0001"
    d.close()


def test_retry_keeps_id_and_bytes_with_fresh_timestamp(
    receiver: Receiver, clock: ManualClock
) -> None:
    d, storage, store = make(settings_for(endpoint(receiver)), clock)
    receiver.script("/hook", ["500", "500", "200"])
    storage.outbox.append([message_event(1)])
    drain(d, clock, lambda: len(receiver.accepted_ids()) == 1, step=50)
    reqs = receiver.by_path("/hook")
    assert len(reqs) == 3
    assert len({r.msg_id for r in reqs}) == 1
    assert len({r.body for r in reqs}) == 1
    assert len({r.headers["webhook-timestamp"] for r in reqs}) == 3
    assert len({r.headers["webhook-signature"] for r in reqs}) == 3
    delivery = store.get("hook", "evt_c_1_0001")
    assert delivery is not None and delivery.status is DeliveryStatus.DELIVERED
    assert [a.status for a in delivery.attempts] == [500, 500, 200]
    assert delivery.attempts[0].response == b"answer 500"
    d.close()


def test_faults_none_lost_order_kept(receiver: Receiver, clock: ManualClock) -> None:
    """500s, 429 + Retry-After, timeouts, resets, redirects, slow answers: all delivered."""
    rng = random.Random(42)
    faults = ["500", "503", "429:7", "timeout", "reset", "302", "slow:0.2", "404"]

    def flaky(_r: object) -> str:
        return rng.choice(faults) if rng.random() < 0.3 else "200"

    receiver.default["/hook"] = flaky
    settings = settings_for(
        endpoint(receiver, max_concurrency=4), retry_schedule_s=(0.0,) + (1.0,) * 30
    )
    d, storage, store = make(settings, clock)
    d._core.retry_4xx = True  # a 404 here is a transient fault: keep retrying it
    events = [message_event(i, chat=f"c_{i % 5}") for i in range(40)]
    storage.outbox.append(events)
    drain(d, clock, lambda: set(receiver.accepted_ids()) == {e.id for e in events}, step=30)
    # nothing lost, nothing left, nothing dead
    assert storage.outbox.pending() == 0
    statuses = {dl.status for dl in store.deliveries("hook")}
    assert statuses == {DeliveryStatus.DELIVERED}
    # per-chat order: the first acceptance of each chat's events follows seq
    for chat, seqs in first_acceptance_order(receiver).items():
        assert seqs == sorted(seqs), chat
    # no redirect was followed
    assert receiver.by_path("/redirected") == []
    answers = {r.answer.split(":")[0] for r in receiver.by_path("/hook")}
    assert {"timeout", "reset", "302", "429"} <= answers
    # duplicates (after a receiver timeout) carry the same webhook-id
    ids = [r.msg_id for r in receiver.by_path("/hook")]
    assert set(ids) == {e.id for e in events}
    d.close()


def test_429_retry_after_and_error_floor(receiver: Receiver, clock: ManualClock) -> None:
    settings = settings_for(endpoint(receiver), min_retry_after_error_s=20.0, jitter=0.0)
    d, storage, store = make(settings, clock)
    receiver.script("/hook", ["429:120", "429", "timeout", "503:ignored"])
    storage.outbox.append([message_event(1)])
    t0 = clock.now()
    d.run_once()
    dl = store.get("hook", "evt_c_1_0001")
    assert dl is not None and dl.next_attempt_at == t0 + 120  # Retry-After beats 1 s
    clock.advance(119)
    assert d.run_once().attempts == 0
    clock.advance(1)
    d.run_once()
    dl = store.get("hook", "evt_c_1_0001")
    assert dl is not None and dl.next_attempt_at == clock.now() + 20  # 429: at least the floor
    clock.advance(20)
    d.run_once()  # timeout
    dl = store.get("hook", "evt_c_1_0001")
    assert dl is not None and dl.next_attempt_at == clock.now() + 20
    assert dl.attempts[-1].error.startswith("timeout")
    d.close()


def test_410_disables_endpoint_and_emits_event(receiver: Receiver, clock: ManualClock) -> None:
    other = endpoint(receiver, "/other", event_types=(EventType.ENDPOINT_DISABLED,))
    hook = endpoint(receiver, event_types=("message.*",))
    d, storage, store = make(settings_for(hook, other), clock)
    receiver.script("/hook", ["410"])
    storage.outbox.append([message_event(1), message_event(2)])
    report = d.run_once()
    assert report.disabled == 1
    health = store.health("hook")
    assert health.disabled and health.disabled_reason == "gone"
    dead = store.dead_letters("hook")
    assert [x.id for x in dead] == ["evt_c_1_0001", "evt_c_1_0002"]
    assert dead[0].dead_reason == "410 Gone"
    assert dead[1].dead_reason.startswith("endpoint disabled")
    # the endpoint.disabled event went through the outbox to the subscribed endpoint
    d.run_once()
    got = [r.json() for r in receiver.by_path("/other")]
    assert [g["type"] for g in got] == ["endpoint.disabled"]
    assert got[0]["data"]["endpoint_id"] == "hook" and got[0]["data"]["reason"] == "gone"
    # events for a disabled endpoint become dead letters at once: never silently lost
    storage.outbox.append([message_event(3)])
    d.run_once()
    assert len(store.dead_letters("hook")) == 3
    assert [r.msg_id for r in receiver.by_path("/hook")] == ["evt_c_1_0001"]
    # operator enables it again and replays everything since it died
    d.enable("hook")
    assert d.replay_since(clock.now() - 1, "hook") == 3
    d.run_once()
    assert receiver.accepted_ids() == ["evt_c_1_0001", "evt_c_1_0002", "evt_c_1_0003"]
    assert store.dead_letters() == []
    d.close()


def test_failing_for_too_long_disables(receiver: Receiver, clock: ManualClock) -> None:
    settings = settings_for(
        endpoint(receiver),
        endpoint(receiver, "/watch", event_types=("endpoint.*",)),
        disable_after_s=100.0,
        retry_schedule_s=(0.0,) + (30.0,) * 10,
        jitter=0.0,
    )
    d, storage, store = make(settings, clock)
    receiver.default["/hook"] = "500"
    storage.outbox.append([message_event(1)])
    for _ in range(5):
        d.run_once()
        clock.advance(30)
    health = store.health("hook")
    assert health.disabled and health.disabled_reason == "failing"
    assert health.failing_since == 1_764_000_000.0
    assert len(receiver.by_path("/hook")) == 5  # attempts at 0, 30, 60, 90, 120 s
    d.run_once()
    watch = [r.json() for r in receiver.by_path("/watch")]
    assert len(watch) == 1 and watch[0]["data"]["reason"] == "failing"
    assert watch[0]["data"]["failing_since"] == 1_764_000_000.0
    d.close()


def test_dead_letters_keep_attempts_and_replay_one(receiver: Receiver, clock: ManualClock) -> None:
    settings = settings_for(endpoint(receiver), retry_schedule_s=(0.0, 1.0, 1.0), jitter=0.0)
    d, storage, store = make(settings, clock)
    receiver.default["/hook"] = "500big"
    storage.outbox.append([message_event(1), message_event(2, chat="c_2")])
    drain(d, clock, lambda: len(store.dead_letters()) == 2, step=1)
    dead = store.dead_letters("hook")
    assert all(len(x.attempts) == 3 for x in dead)
    assert all(len(a.response) == 20_000 for x in dead for a in x.attempts)
    assert dead[0].dead_reason == "gave up after 3 attempts"
    receiver.default["/hook"] = "200"
    assert d.replay("hook", "evt_c_2_0002")
    assert not d.replay("hook", "evt_c_2_0002")  # no longer dead
    d.run_once()
    assert receiver.accepted_ids() == ["evt_c_2_0002"]
    done = store.get("hook", "evt_c_2_0002")
    assert done is not None and done.status is DeliveryStatus.DELIVERED
    assert len(done.attempts) == 4 and done.round_start == 3
    d.close()


def test_4xx_is_not_retried_by_default(receiver: Receiver, clock: ManualClock) -> None:
    d, storage, store = make(settings_for(endpoint(receiver)), clock)
    receiver.script("/hook", ["400"])
    storage.outbox.append([message_event(1)])
    d.run_once()
    clock.advance(1000)
    d.run_once()
    assert len(receiver.by_path("/hook")) == 1
    [dead] = store.dead_letters()
    assert dead.dead_reason == "HTTP 400: not retried"
    d.close()


def test_redirect_is_a_failure_and_not_followed(receiver: Receiver, clock: ManualClock) -> None:
    d, storage, store = make(settings_for(endpoint(receiver)), clock)
    receiver.script("/hook", ["302"])
    storage.outbox.append([message_event(1)])
    d.run_once()
    assert receiver.by_path("/redirected") == []
    dl = store.get("hook", "evt_c_1_0001")
    assert dl is not None and dl.status is DeliveryStatus.PENDING
    assert dl.attempts[0].status == 302
    clock.advance(10)
    d.run_once()
    assert receiver.accepted_ids() == ["evt_c_1_0001"]
    d.close()


def test_per_chat_order_waits_for_the_earlier_event(receiver: Receiver, clock: ManualClock) -> None:
    d, storage, _store = make(settings_for(endpoint(receiver, max_concurrency=8)), clock)
    failed: list[str] = []

    def first_of_c1_fails(r: Received) -> str:
        if r.msg_id == "evt_c_1_0001" and not failed:
            failed.append(r.msg_id)
            return "500"
        return "200"

    receiver.default["/hook"] = first_of_c1_fails
    storage.outbox.append([message_event(i, chat="c_1") for i in range(1, 6)])
    storage.outbox.append([message_event(i, chat="c_2") for i in range(1, 4)])
    d.run_once()
    # c_2 went through; c_1 waits behind its failed first event
    assert sorted(receiver.accepted_ids()) == ["evt_c_2_0001", "evt_c_2_0002", "evt_c_2_0003"]
    clock.advance(5)
    d.run_once()
    order = first_acceptance_order(receiver)
    assert order == {"c_1": [1, 2, 3, 4, 5], "c_2": [1, 2, 3]}
    d.close()


def test_slow_endpoint_holds_up_no_other(clock: ManualClock) -> None:
    slow, fast = Receiver(), Receiver()
    try:
        slow.default["/hook"] = "slow:0.4"
        settings = settings_for(
            endpoint(slow, max_concurrency=1, id="slow"),
            endpoint(fast, max_concurrency=2, id="fast"),
            timeout_s=2.0,
        )
        d, storage, _ = make(settings, clock)
        storage.outbox.append([message_event(i, chat=f"c_{i}") for i in range(20)])
        t = threading.Thread(target=d.run_forever, kwargs={"idle_s": 0.02})
        t.start()
        deadline = time.monotonic() + 10
        while len(fast.accepted_ids()) < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        slow_done = len(slow.requests)
        d.stop()
        t.join(5)
        assert len(fast.accepted_ids()) == 20
        assert slow_done <= 3  # one at a time, 0.4 s each
        # stopping left the slow endpoint's work pending, not lost; a new dispatcher finishes it
        slow.default["/hook"] = "200"
        d2, _, _ = make(settings, clock, storage=storage, store=d.store)
        d2.run_once()
        assert set(slow.accepted_ids()) == {f"evt_c_{i}_{i:04d}" for i in range(20)}
        d.close()
        d2.close()
    finally:
        slow.close()
        fast.close()


def test_restart_mid_run_loses_nothing(receiver: Receiver, clock: ManualClock) -> None:
    settings = settings_for(endpoint(receiver, max_concurrency=2))
    storage, store = MemoryStorage(), MemoryDeliveryStore()
    events = [message_event(i, chat=f"c_{i % 4}") for i in range(30)]
    storage.outbox.append(events)
    # worker 1 crashes at every stage: outbox entries claimed and never fanned out...
    storage.outbox.claim("webhooks", 5, clock.now(), 60.0)
    # ...entries fanned out but not acked...
    d1, _, _ = make(settings, clock, storage, store)
    entries = storage.outbox.claim("webhooks", 10, clock.now(), 60.0)
    plan = fan_out(entries, settings, clock.now())
    store.add(plan.deliveries, plan.buffered)
    # ...deliveries claimed (leased) and never finished; some sent, answer never recorded
    for dl in store.claim_due("hook", clock.now(), 2, 75.0):
        UrllibTransport().send(d1._core.request(dl))
    d1.close()
    # worker 2 starts over the same stores; the leases run out and it finishes the job
    d2, _, _ = make(settings, clock, storage, store, seed=2)
    drain(d2, clock, lambda: set(receiver.accepted_ids()) == {e.id for e in events}, step=40)
    assert storage.outbox.pending() == 0
    assert len(store.deliveries("hook")) == 30  # no duplicate deliveries from the re-fan-out
    ids = receiver.accepted_ids()
    assert len(ids) - len(set(ids)) <= 2  # the two abandoned sends: recognisable duplicates
    d2.close()


def test_stop_mid_run_forever_then_restart(receiver: Receiver) -> None:
    clock = ManualClock(time.time())
    receiver.default["/hook"] = "slow:0.05"
    settings = settings_for(endpoint(receiver, max_concurrency=2))
    d1, storage, store = make(settings, clock)
    events = [message_event(i, chat=f"c_{i % 6}") for i in range(40)]
    storage.outbox.append(events)
    t = threading.Thread(target=d1.run_forever, kwargs={"idle_s": 0.01})
    t.start()
    while len(receiver.requests) < 8:
        time.sleep(0.005)
    d1.stop()
    t.join(5)
    d1.close()
    assert len(set(receiver.accepted_ids())) < 40
    d2, _, _ = make(settings, clock, storage, store)
    d2.run_once()
    assert set(receiver.accepted_ids()) == {e.id for e in events}
    d2.close()


def test_batching(receiver: Receiver, clock: ManualClock) -> None:
    ep = endpoint(receiver, batch_max=5, batch_interval_s=1.0)
    d, storage, _store = make(settings_for(ep), clock)
    receiver.script("/hook", ["500"])
    storage.outbox.append([message_event(i, chat=f"c_{i % 2}") for i in range(12)])
    storage.outbox.append([message_event(100, type_=EventType.MESSAGE_AGENT)])
    report = d.run_once()
    assert report.sealed == 2  # two full batches of message.customer; the rest waits
    clock.advance(1.0)
    d.run_once()
    clock.advance(5.0)
    d.run_once()
    reqs = receiver.by_path("/hook")
    accepted = [r.json() for r in reqs if r.accepted]
    sizes = sorted(len(b["data"]["events"]) for b in accepted)
    assert sizes == [1, 2, 5, 5]
    for b in accepted:
        assert b["batch"] is True
        inner = b["data"]["events"]
        assert {e["type"] for e in inner} == {b["type"]}
        assert b["id"] == batch_id([e["id"] for e in inner])
    # the failed batch was retried with the same id and bytes
    first = reqs[0]
    again = [r for r in reqs[1:] if r.msg_id == first.msg_id]
    assert again and again[0].body == first.body
    all_ids = {e["id"] for b in accepted for e in b["data"]["events"]}
    assert len(all_ids) == 13
    d.close()


def test_subscriptions_and_disabled_endpoints(receiver: Receiver, clock: ManualClock) -> None:
    settings = settings_for(
        endpoint(receiver, "/all"),
        endpoint(receiver, "/agent", event_types=(EventType.MESSAGE_AGENT,)),
        endpoint(receiver, "/msgs", event_types=("message.*",)),
        endpoint(receiver, "/off", enabled=False),
    )
    d, storage, _ = make(settings, clock)
    storage.outbox.append(
        [message_event(1), message_event(2, type_=EventType.MESSAGE_AGENT), _chat_ended()]
    )
    d.run_once()
    assert len(receiver.by_path("/all")) == 3
    assert [r.json()["type"] for r in receiver.by_path("/agent")] == ["message.agent"]
    assert len(receiver.by_path("/msgs")) == 2
    assert receiver.by_path("/off") == []
    d.close()


def _chat_ended():  # type: ignore[no-untyped-def]
    from chatmgmt.webhook import CATALOGUE, make_event

    spec = CATALOGUE[EventType.CHAT_ENDED]
    return make_event("evt_end", spec.type, 1.0, spec.example, chat_id="c_9", seq=1)


@pytest.mark.parametrize("answer", ["big"])
def test_response_kept_to_20kb(receiver: Receiver, clock: ManualClock, answer: str) -> None:
    d, storage, store = make(settings_for(endpoint(receiver)), clock)
    receiver.script("/hook", [answer, "200"])
    storage.outbox.append([message_event(1), message_event(2)])
    d.run_once()
    first = store.get("hook", "evt_c_1_0001")
    assert first is not None and len(first.attempts[0].response) == 20_000
    assert receiver.accepted_ids() == ["evt_c_1_0001", "evt_c_1_0002"]
    d.close()


def test_body_is_compact_sorted_json() -> None:
    e = message_event(1)
    body = serialize(e)
    assert (
        body
        == json.dumps(
            e.envelope(), separators=(",", ":"), sort_keys=True, ensure_ascii=False
        ).encode()
    )
    assert b" " not in body.replace(b"message 1", b"")
