"""The async dispatcher: same behaviour as the sync one, over both async transports (the
aiohttp default, httpx, and the stdlib in threads without the extra) on loopback."""

from __future__ import annotations

import asyncio
import random
import sys
import time
from typing import Any

import pytest

from chatmgmt.delivery import (
    AiohttpTransport,
    AsyncDispatcher,
    AsyncHttpxTransport,
    ThreadedTransport,
    UrlGuard,
    UrllibTransport,
)
from chatmgmt.ports import DeliveryStatus
from chatmgmt.settings import WebhookSettings
from chatmgmt.storage.memory import MemoryStorage
from chatmgmt.storage.memory_delivery import AsyncMemoryDeliveryStore, MemoryDeliveryStore
from chatmgmt.testing import ManualClock
from chatmgmt.webhook import EventType, verify
from webhook.webhook_helpers import SECRET, Receiver, endpoint, message_event, settings_for


@pytest.fixture(params=["aiohttp", "httpx", "threaded"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make(
    settings: WebhookSettings,
    clock: ManualClock,
    kind: str,
    storage: MemoryStorage | None = None,
) -> tuple[AsyncDispatcher, MemoryStorage, MemoryDeliveryStore]:
    storage = storage or MemoryStorage()
    store = MemoryDeliveryStore()
    guard = UrlGuard.from_settings(settings)
    transport: Any = (
        AsyncHttpxTransport(guard)
        if kind == "httpx"
        else ThreadedTransport(UrllibTransport(guard))
        if kind == "threaded"
        else AiohttpTransport(guard)
    )
    d = AsyncDispatcher(
        storage.aio(), settings, store.aio(), transport, clock=clock, rng=random.Random(3)
    )
    return d, storage, store


def test_default_async_transport_is_aiohttp() -> None:
    d = AsyncDispatcher(MemoryStorage().aio(), settings_for(), MemoryDeliveryStore().aio())
    assert isinstance(d.transport, AiohttpTransport)


def test_without_the_aiohttp_extra_the_stdlib_runs_in_threads(
    monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    monkeypatch.setitem(sys.modules, "aiohttp", None)  # what a missing extra looks like
    monkeypatch.delitem(sys.modules, "chatmgmt.delivery._aiohttp", raising=False)
    settings = settings_for(endpoint(receiver))
    storage, store = MemoryStorage(), MemoryDeliveryStore()
    d = AsyncDispatcher(storage.aio(), settings, store.aio())
    assert isinstance(d.transport, ThreadedTransport)
    assert isinstance(d.transport.transport, UrllibTransport)
    assert d.transport.max_workers == 4  # the endpoint's max_concurrency: its own threads
    storage.outbox.append([message_event(1)])

    async def main() -> Any:
        try:
            return await d.run_once()
        finally:
            await d.aclose()

    report = asyncio.run(main())
    assert report.delivered == 1
    assert receiver.accepted_ids() == ["evt_c_1_0001"]


def test_async_faults_recover_in_order(receiver: Receiver, clock: ManualClock, kind: str) -> None:
    rng = random.Random(7)
    receiver.default["/hook"] = lambda _r: (
        rng.choice(["500", "429:2", "reset", "timeout", "302", "410x"])
        if rng.random() < 0.25
        else "200"
    )
    receiver.default["/hook"] = _without_410(receiver.default["/hook"])
    settings = settings_for(
        endpoint(receiver, max_concurrency=4), retry_schedule_s=(0.0,) + (1.0,) * 30
    )
    d, storage, store = make(settings, clock, kind)
    events = [message_event(i, chat=f"c_{i % 4}") for i in range(30)]
    storage.outbox.append(events)

    async def main() -> None:
        try:
            for _ in range(60):
                await d.run_once()
                if set(receiver.accepted_ids()) == {e.id for e in events}:
                    return
                clock.advance(10)
            raise AssertionError("not delivered")
        finally:
            await d.transport.aclose()

    asyncio.run(main())
    assert storage.outbox.pending() == 0
    assert {x.status for x in store.deliveries()} == {DeliveryStatus.DELIVERED}
    firsts: dict[str, list[int]] = {}
    seen: set[str] = set()
    for r in receiver.by_path("/hook"):
        if r.accepted and r.msg_id not in seen:
            seen.add(r.msg_id)
            firsts.setdefault(r.json()["chat_id"], []).append(r.json()["seq"])
    assert all(seqs == sorted(seqs) for seqs in firsts.values())
    r0 = receiver.by_path("/hook")[-1]
    verify(r0.body, r0.headers, SECRET, now=clock.now())


def _without_410(f):  # type: ignore[no-untyped-def]
    return lambda r: "500" if (a := f(r)) == "410x" else a


def test_async_410_and_run_forever_stop(receiver: Receiver, kind: str) -> None:
    clock = ManualClock(time.time())
    settings = settings_for(
        endpoint(receiver, event_types=("message.*",)),
        endpoint(receiver, "/watch", event_types=(EventType.ENDPOINT_DISABLED,)),
    )
    d, storage, store = make(settings, clock, kind)
    receiver.script("/hook", ["410"])
    storage.outbox.append([message_event(1), message_event(2)])

    async def main() -> None:
        task = asyncio.ensure_future(d.run_forever(idle_s=0.01))
        for _ in range(300):
            if receiver.by_path("/watch"):
                break
            await asyncio.sleep(0.01)
        d.stop()
        await asyncio.wait_for(task, 5)
        assert store.health("hook").disabled
        assert [r.json()["data"]["reason"] for r in receiver.by_path("/watch")] == ["gone"]
        assert len(store.dead_letters("hook")) == 2
        # replay in the same event loop (an httpx client is bound to the loop it ran in)
        await d.enable("hook")
        assert await d.replay_since(0.0, "hook") == 2
        await d.run_once()
        await d.transport.aclose()

    asyncio.run(main())
    assert receiver.accepted_ids() == ["evt_c_1_0001", "evt_c_1_0002"]


def test_async_batching_and_store_facade(receiver: Receiver, clock: ManualClock, kind: str) -> None:
    ep = endpoint(receiver, batch_max=3, batch_interval_s=2.0)
    d, storage, _ = make(settings_for(ep), clock, kind)
    storage.outbox.append([message_event(i, chat=f"c_{i}") for i in range(4)])

    async def main() -> None:
        assert (await d.run_once()).sealed == 1
        clock.advance(2.0)
        assert (await d.run_once()).sealed == 1
        await d.transport.aclose()

    asyncio.run(main())
    sizes = [len(r.json()["data"]["events"]) for r in receiver.by_path("/hook")]
    assert sizes == [3, 1]
    assert isinstance(AsyncMemoryDeliveryStore().sync, MemoryDeliveryStore)


def test_stop_while_sends_are_in_flight_records_them(receiver: Receiver, kind: str) -> None:
    """``stop`` during a send: ``run_forever`` waits for what is in flight, records it, and
    returns (the drain)."""
    receiver.default["/hook"] = "slow:0.3"
    settings = settings_for(endpoint(receiver, max_concurrency=4), timeout_s=5.0)
    d, storage, store = make(settings, ManualClock(time.time()), kind)
    events = [message_event(i, chat=f"c_{i}") for i in range(3)]
    storage.outbox.append(events)

    async def main() -> None:
        task = asyncio.ensure_future(d.run_forever(idle_s=0.01))
        while len(receiver.by_path("/hook")) < 3:
            await asyncio.sleep(0.01)
        d.stop()
        await asyncio.wait_for(task, 30)
        await d.transport.aclose()

    asyncio.run(main())
    delivered = store.deliveries("hook", DeliveryStatus.DELIVERED)
    assert {x.id for x in delivered} == {e.id for e in events}
