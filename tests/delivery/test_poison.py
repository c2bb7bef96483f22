"""One bad event, endpoint or failure never stops delivery (issue: poison-proof dispatcher).

Poison goes to the dead letters at once with the reason, and every good event among it is
delivered; ``run_forever`` logs an error of one pass and goes on.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import attrs
import pytest

from chatmgmt.delivery import Dispatcher, UrlGuard, UrllibTransport
from chatmgmt.errors import SettingsError
from chatmgmt.model import Event
from chatmgmt.ports import DeliveryStatus
from chatmgmt.storage.memory import MemoryStorage
from chatmgmt.storage.memory_delivery import MemoryDeliveryStore
from chatmgmt.testing import ManualClock
from webhook.webhook_helpers import Receiver, endpoint, message_event, settings_for


def _poison(n: int, how: str) -> Event:
    event = message_event(n, chat=f"p_{n}")
    bad: Any = {"lone surrogate": "\ud800", "not JSON": {1, 2}, "nan": float("nan")}[how]
    if how == "nan":  # allowed by json, refused by strict encoders: keep it a good event
        return event
    return attrs.evolve(event, data={**event.data, "text": bad})


def test_poison_events_are_dead_letters_and_every_good_one_is_delivered(
    receiver: Receiver, clock: ManualClock
) -> None:
    settings = settings_for(
        endpoint(receiver, max_concurrency=4),
        endpoint(receiver, "/batch", batch_max=5, batch_interval_s=0.001),
    )
    storage, store = MemoryStorage(), MemoryDeliveryStore()
    good = [message_event(i, chat=f"c_{i % 5}") for i in range(40)]
    poison = [_poison(100, "lone surrogate"), _poison(101, "not JSON")]
    storage.outbox.append(good[:10] + poison[:1] + good[10:30] + poison[1:] + good[30:])
    d = Dispatcher(storage, settings, store, clock=clock, rng=random.Random(1))
    try:
        for _ in range(5):
            d.run_once()
            d.seal(flush=True)
            clock.advance(10.0)
        d.run_once()
    finally:
        d.close()
    want = {e.id for e in good}
    assert set(receiver.accepted_ids("/hook")) == want
    batched = {e["id"] for r in receiver.by_path("/batch") for e in r.json()["data"]["events"]}
    assert batched == want
    for ep in ("hook", "batch"):
        dead = store.dead_letters(ep)
        assert {x.id for x in dead} == {e.id for e in poison}
        assert all(x.dead_reason.startswith("cannot serialize the event") for x in dead)
        assert all(x.attempts == () for x in dead)  # never sent
    assert storage.outbox.claim("webhooks", 100, clock.now(), 60.0) == []  # all acked


@pytest.mark.parametrize(
    "url",
    [
        "https://user:secret@hooks.example.com/h",
        "http://10.1.2.3/h",  # a private literal, not allowed
        "http://2130706433/h",  # an ambiguous literal
        "http://127.0.0.1:99999/h",  # no such port
    ],
)
def test_a_never_deliverable_endpoint_is_dead_lettered_at_once(
    receiver: Receiver, clock: ManualClock, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    bad = attrs.evolve(endpoint(receiver, "/bad"), url=url)
    settings = settings_for(endpoint(receiver), bad)
    storage, store = MemoryStorage(), MemoryDeliveryStore()
    events = [message_event(i) for i in range(5)]
    storage.outbox.append(events)
    d = Dispatcher(storage, settings, store, clock=clock, rng=random.Random(1))
    assert "webhook endpoint bad can never be delivered to" in caplog.text  # said at once
    try:
        report = d.run_once()
    finally:
        d.close()
    assert receiver.accepted_ids() == [e.id for e in events]
    dead = store.dead_letters("bad")
    assert [x.id for x in dead] == [e.id for e in events]
    assert all(x.dead_reason.startswith("endpoint URL refused") for x in dead)
    assert report.attempts == 5  # only the good endpoint's


def test_a_url_the_guard_refuses_at_connect_time_is_a_dead_letter(
    receiver: Receiver, clock: ManualClock
) -> None:
    """A host name that resolves to a private address: known only once resolved."""
    bad = attrs.evolve(endpoint(receiver, "/bad"), url="http://hooks.example.test/h")
    settings = settings_for(endpoint(receiver), bad)
    storage, store = MemoryStorage(), MemoryDeliveryStore()
    storage.outbox.append([message_event(1)])
    names = {"hooks.example.test": "10.0.0.5"}
    guard = UrlGuard.from_settings(settings, resolver=lambda host, port: [names.get(host, host)])
    transport = UrllibTransport(guard)
    d = Dispatcher(storage, settings, store, transport, clock=clock, rng=random.Random(1))
    try:
        d.run_once()
    finally:
        d.close()
    (dead,) = store.dead_letters("bad")
    assert dead.dead_reason.startswith("unsafe URL") and "private" in dead.dead_reason
    assert len(dead.attempts) == 1
    assert receiver.accepted_ids() == ["evt_c_1_0001"]


class _FlakyStore(MemoryDeliveryStore):
    """A delivery store whose ``finish`` fails the first ``fail`` times (a storage outage)."""

    def __init__(self, fail: int) -> None:
        super().__init__()
        self.fail = fail

    def finish(self, *args: Any, **kwargs: Any) -> Any:
        if self.fail > 0:
            self.fail -= 1
            raise RuntimeError("storage unavailable")
        return super().finish(*args, **kwargs)


def test_run_forever_logs_an_error_and_goes_on(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(endpoint(receiver, max_concurrency=2))
    storage, store = MemoryStorage(), _FlakyStore(fail=3)
    good = [message_event(i, chat=f"c_{i}") for i in range(10)]
    storage.outbox.append(good)
    # a short lease: what the failed passes left leased is claimed again soon
    d = Dispatcher(storage, settings, store, rng=random.Random(1), lease_s=1.0)
    thread = threading.Thread(target=d.run_forever, kwargs={"idle_s": 0.05}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            delivered = store.deliveries("hook", DeliveryStatus.DELIVERED)
            if {x.id for x in delivered} == {e.id for e in good}:
                break
            time.sleep(0.05)
    finally:
        d.stop()
        thread.join(10)
        d.close()
    assert {x.id for x in store.deliveries("hook", DeliveryStatus.DELIVERED)} == {
        e.id for e in good
    }
    assert store.fail == 0
    assert "recording delivery" in caplog.text


def test_run_once_still_raises_what_went_wrong(receiver: Receiver, clock: ManualClock) -> None:
    settings = settings_for(endpoint(receiver))
    storage, store = MemoryStorage(), _FlakyStore(fail=1)
    storage.outbox.append([message_event(1)])
    d = Dispatcher(storage, settings, store, clock=clock, rng=random.Random(1))
    try:
        with pytest.raises(RuntimeError, match="storage unavailable"):
            d.run_once()
    finally:
        d.close()


def test_the_lease_must_outlast_an_attempt() -> None:
    settings = settings_for(timeout_s=5.0)
    with pytest.raises(SettingsError, match="lease"):
        Dispatcher(MemoryStorage(), settings, MemoryDeliveryStore(), lease_s=5.0)
