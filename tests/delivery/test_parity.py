"""Parity: the sync and the async driver run one core, so one scenario gives the same port calls
in the same order and the same stored outcome through both.

One endpoint with one slot makes the order of completions deterministic (a plain endpoint, then a
batching one); the receiver answers from a script (success, 500, 429 with Retry-After, a
redirect, a 4xx that is not retried, and finally 410, which disables the endpoint and emits
``endpoint.disabled``).
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from chatmgmt.delivery import (
    AsyncDispatcher,
    Dispatcher,
    RunReport,
    ThreadedTransport,
    UrlGuard,
    UrllibTransport,
)
from chatmgmt.delivery._core import Op
from chatmgmt.ports import Delivery
from chatmgmt.settings import WebhookSettings
from chatmgmt.storage.memory import MemoryStorage
from chatmgmt.storage.memory_delivery import MemoryDeliveryStore
from chatmgmt.testing import ManualClock
from webhook.webhook_helpers import Receiver, endpoint, message_event, settings_for

SCRIPT = ["200", "500", "200", "429:30", "302", "200", "404", "200", "500", "200"]
PASSES = 8


class SyncRecorder(Dispatcher):
    """The sync driver, recording the operations the core asks for."""

    trace: list[str]

    def _do(self, op: Op) -> Any:
        self.trace.append(op.call)
        return super()._do(op)


class AsyncRecorder(AsyncDispatcher):
    """The async driver, recording the operations the core asks for."""

    trace: list[str]

    async def _do(self, op: Op) -> Any:
        self.trace.append(op.call)
        return await super()._do(op)


def _settings(receiver: Receiver, path: str) -> WebhookSettings:
    batch: dict[str, Any] = {"batch_max": 3, "batch_interval_s": 60.0} if path == "/batch" else {}
    return settings_for(
        endpoint(receiver, path, max_concurrency=1, **batch), jitter=0.0, timeout_s=5.0
    )


def _outcome(store: MemoryDeliveryStore) -> list[tuple[Any, ...]]:
    def row(d: Delivery) -> tuple[Any, ...]:
        attempts = tuple((a.at, a.status, a.error[:20]) for a in d.attempts)
        return (d.endpoint_id, d.id, d.status, d.next_attempt_at, d.dead_reason, attempts)

    return [row(d) for d in store.deliveries()]


def _scenario(receiver: Receiver, path: str, run: Any) -> tuple[list[RunReport], Any, list[Any]]:
    """Feed events, run ``PASSES`` passes 60 s apart, end with a 410; returns the reports,
        the stored outcome and the events the dispatcher emitted (``endpoint.disabled``, fanned out
    by the next pass to the disabled endpoint's dead letters)."""
    receiver.requests.clear()
    receiver.scripts.clear()
    receiver.script(path, list(SCRIPT))
    clock = ManualClock(1_764_000_000.0)
    storage, store = MemoryStorage(), MemoryDeliveryStore()
    storage.outbox.append([message_event(i, chat=f"c_{i % 3}") for i in range(8)])
    reports = []
    for n in range(PASSES):
        if n == PASSES - 3:
            receiver.scripts.clear()
            receiver.script(path, ["410"] * 10)
            storage.outbox.append([message_event(100 + n)])
        reports.append(run(storage, store, clock))
        clock.advance(60.0)
    appended = [d.event_type for d in store.deliveries() if d.event_type == "endpoint.disabled"]
    return reports, _outcome(store), appended


@pytest.mark.parametrize("path", ["/one", "/batch"])
def test_sync_and_async_drivers_make_the_same_calls_and_outcome(
    receiver: Receiver, path: str
) -> None:
    settings = _settings(receiver, path)
    sync_trace: list[str] = []
    async_trace: list[str] = []

    def run_sync(storage: MemoryStorage, store: MemoryDeliveryStore, clock: ManualClock) -> Any:
        d = SyncRecorder(storage, settings, store, clock=clock, rng=random.Random(5))
        d.trace = sync_trace
        try:
            return d.run_once()
        finally:
            d.close()

    def run_async(storage: MemoryStorage, store: MemoryDeliveryStore, clock: ManualClock) -> Any:
        # the same transport, in threads: only the driver differs
        transport = ThreadedTransport(UrllibTransport(UrlGuard.from_settings(settings)))
        d = AsyncRecorder(
            storage.aio(), settings, store.aio(), transport, clock=clock, rng=random.Random(5)
        )
        d.trace = async_trace

        async def main() -> RunReport:
            try:
                return await d.run_once()
            finally:
                await transport.aclose()

        return asyncio.run(main())

    sync_reports, sync_outcome, sync_appended = _scenario(receiver, path, run_sync)
    async_reports, async_outcome, async_appended = _scenario(receiver, path, run_async)

    assert sync_trace == async_trace
    assert sync_reports == async_reports
    assert sync_outcome == async_outcome
    assert sync_appended == async_appended == ["endpoint.disabled"]
    # the scenario exercised what it meant to
    assert {"send.start", "send.wait", "store.disable", "outbox.append"} <= set(sync_trace)
    assert ("store.seal" in sync_trace) == (path == "/batch")
    assert sum(r.delivered for r in sync_reports) >= 3
    assert sum(r.dead for r in sync_reports) >= 1
