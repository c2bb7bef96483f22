"""The dispatchers: thin sync and async drivers over the pure steps in :mod:`._plan`.

One pass (``run_once``) does, in order:

1. **pump** — claim entries from the storage outbox (a lease), fan them out to the subscribed
   endpoints into the delivery store, and only then ack them (at least once: a crash between the
   two leaves the entries to be claimed again, and the store ignores the duplicates);
2. **seal** — turn batch buffers that are full or old enough into batch deliveries;
3. **send** — per endpoint, claim due deliveries up to its ``max_concurrency`` (in flight at
   once), send them, record each attempt and what follows (delivered, retry at a time, dead),
   disable the endpoint after 410 or after failing for ``disable_after_s`` (emitting
   ``endpoint.disabled`` into the outbox). A slot that frees is refilled at once, so a slow
   endpoint holds up only its own deliveries.

Everything that decides something is in :mod:`._plan` and shared by both drivers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextlib
import logging
import random
import threading
import time
from collections.abc import Sequence
from typing import Any

import attrs

from .._clock import SystemClock
from ..model import Event
from ..ports import (
    AsyncOutbox,
    AsyncStorage,
    AsyncTransport,
    Clock,
    HttpRequest,
    HttpResponse,
    Outbox,
    OutboxEntry,
    Storage,
    Transport,
)
from ..settings import WebhookEndpoint, WebhookSettings
from . import _plan
from ._guard import UrlGuard
from ._signing import Signer
from ._store import AsyncDeliveryStore, Delivery, DeliveryStatus, DeliveryStore, EndpointHealth

__all__ = ["AsyncDispatcher", "Dispatcher", "RunReport"]

log = logging.getLogger("chatmgmt.webhook")


@attrs.define
class RunReport:
    """What one ``run_once`` did: outbox entries fanned out, batches sealed, attempts and their
    outcomes, endpoints disabled."""

    fanned_out: int = 0
    sealed: int = 0
    attempts: int = 0
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    disabled: int = 0


@attrs.frozen
class _Settled:
    decision: _plan.Decision
    outcome: _plan.Outcome


class _Core:
    """The state and decisions both drivers share; it does no I/O."""

    def __init__(
        self,
        settings: WebhookSettings,
        clock: Clock | None,
        rng: random.Random | None,
        *,
        consumer: str,
        claim_limit: int,
        lease_s: float | None,
        retry_4xx: bool,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.rng = rng if rng is not None else random.Random()
        self.consumer = consumer
        self.claim_limit = claim_limit
        self.outbox_lease_s = 60.0
        self.lease_s = lease_s if lease_s is not None else settings.timeout_s + 60.0
        self.retry_4xx = retry_4xx
        self.endpoints: dict[str, WebhookEndpoint] = {ep.id: ep for ep in settings.endpoints}
        self.signers = {ep.id: Signer(ep.secrets) for ep in settings.endpoints}
        self.inflight: dict[str, int] = dict.fromkeys(self.endpoints, 0)

    def active(self) -> list[WebhookEndpoint]:
        return [ep for ep in self.settings.endpoints if ep.enabled]

    def free_slots(self, ep: WebhookEndpoint) -> int:
        return max(0, ep.max_concurrency - self.inflight[ep.id])

    def fan_out(self, entries: Sequence[OutboxEntry], disabled: frozenset[str]) -> _plan.FanOut:
        return _plan.fan_out(entries, self.settings, self.clock.now(), disabled)

    def request(self, delivery: Delivery) -> HttpRequest:
        ep = self.endpoints[delivery.endpoint_id]
        return _plan.build_request(
            delivery, ep, self.signers[ep.id], self.clock.now(), self.settings.timeout_s
        )

    def settle(
        self, delivery: Delivery, result: HttpResponse | BaseException, latency_s: float
    ) -> _Settled:
        now = self.clock.now()
        outcome = _plan.classify(
            result, now, self.settings, latency_s=latency_s, retry_4xx=self.retry_4xx
        )
        decision = _plan.decide(delivery, outcome, self.settings, now, self.rng)
        if decision.status is DeliveryStatus.DEAD:
            log.warning(
                "webhook %s to endpoint %s is a dead letter: %s",
                delivery.id,
                delivery.endpoint_id,
                decision.reason,
            )
        return _Settled(decision, outcome)

    def disable_reason(self, settled: _Settled, health: EndpointHealth) -> str:
        if settled.decision.disable:
            return settled.decision.disable
        if _plan.should_disable(health.failing_since, self.clock.now(), self.settings):
            return "failing"
        return ""

    def disabled_event(self, endpoint_id: str, reason: str, health: EndpointHealth) -> Event:
        log.warning("webhook endpoint %s disabled (%s)", endpoint_id, reason)
        return _plan.disabled_event(
            endpoint_id, reason, health.failing_since, self.clock.now(), self.rng
        )

    def count(self, report: RunReport, status: DeliveryStatus) -> None:
        report.attempts += 1
        if status is DeliveryStatus.DELIVERED:
            report.delivered += 1
        elif status is DeliveryStatus.DEAD:
            report.dead += 1
        else:
            report.retried += 1


def _split(source: Any) -> Any:
    """The outbox of a Storage bundle, or the outbox itself."""
    if hasattr(source, "claim") and hasattr(source, "ack"):
        return source
    return source.outbox


class Dispatcher:
    """Delivers the outbox's events to the webhook endpoints (sync driver, worker threads).

    ``outbox``: the storage's :class:`~chatmgmt.ports.Outbox` or the whole
    :class:`~chatmgmt.ports.Storage`; ``store``: the :class:`DeliveryStore`; ``transport``
    defaults to :class:`UrllibTransport` guarded by ``settings`` (``allow_hosts``,
    ``allow_http``); ``clock`` and ``rng`` are injected (defaults: wall clock, unseeded).
    ``retry_4xx`` retries 4xx answers too (by default, 4xx other than 408/409/425/429 become
    dead letters at once). Several dispatchers may share the stores: leases keep them apart.
    """

    def __init__(
        self,
        outbox: Outbox | Storage,
        settings: WebhookSettings,
        store: DeliveryStore,
        transport: Transport | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        *,
        consumer: str = "webhooks",
        claim_limit: int = 100,
        lease_s: float | None = None,
        retry_4xx: bool = False,
    ) -> None:
        self._core = _Core(
            settings,
            clock,
            rng,
            consumer=consumer,
            claim_limit=claim_limit,
            lease_s=lease_s,
            retry_4xx=retry_4xx,
        )
        self.outbox: Outbox = _split(outbox)
        self.store = store
        if transport is None:
            from ._transport import UrllibTransport

            transport = UrllibTransport(UrlGuard.from_settings(settings))
        self.transport = transport
        workers = max(1, min(64, sum(ep.max_concurrency for ep in settings.endpoints)))
        self._pool = cf.ThreadPoolExecutor(workers, thread_name_prefix="chatmgmt-webhook")
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Dispatcher(endpoints={sorted(self._core.endpoints)!r})"

    # ------------------------------------------------------------------ steps

    def pump(self) -> int:
        """Fan the outbox's pending entries out into the delivery store; returns how many."""
        core = self._core
        total = 0
        while True:
            entries = self.outbox.claim(
                core.consumer, core.claim_limit, core.clock.now(), core.outbox_lease_s
            )
            if not entries:
                return total
            disabled = frozenset(ep.id for ep in core.active() if self.store.health(ep.id).disabled)
            plan = core.fan_out(entries, disabled)
            self.store.add(plan.deliveries, plan.buffered)
            self.outbox.ack([e.id for e in entries])
            total += len(entries)
            if len(entries) < core.claim_limit:
                return total

    def seal(self, *, flush: bool = False) -> int:
        """Seal batch buffers that are full or old enough (all of them with ``flush``)."""
        core = self._core
        n = 0
        for ep in core.active():
            if ep.batch_max <= 1 or self.store.health(ep.id).disabled:
                continue
            buffered = self.store.buffered(ep.id)
            if not buffered:
                continue
            for d in _plan.plan_batches(ep, buffered, core.clock.now(), flush=flush):
                n += self.store.seal(ep.id, d.event_ids, d)
        return n

    def _send(self, delivery: Delivery) -> tuple[Delivery, HttpResponse | BaseException, float]:
        start = time.perf_counter()
        result: HttpResponse | BaseException
        try:
            result = self.transport.send(self._core.request(delivery))
        except Exception as exc:
            result = exc
        return delivery, result, time.perf_counter() - start

    def _record(
        self, delivery: Delivery, result: HttpResponse | BaseException, latency: float, r: RunReport
    ) -> None:
        core = self._core
        settled = core.settle(delivery, result, latency)
        d = settled.decision
        health = self.store.finish(
            delivery.endpoint_id,
            delivery.id,
            settled.outcome.attempt,
            d.status,
            d.next_attempt_at,
            d.reason,
        )
        core.count(r, d.status)
        reason = core.disable_reason(settled, health)
        if reason and self.store.disable(delivery.endpoint_id, reason, core.clock.now()):
            r.disabled += 1
            self.outbox.append([core.disabled_event(delivery.endpoint_id, reason, health)])

    def _launch(self, inflight: dict[cf.Future[Any], str]) -> int:
        core = self._core
        launched = 0
        for ep in core.active():
            free = core.free_slots(ep)
            if free <= 0:
                continue
            for delivery in self.store.claim_due(ep.id, core.clock.now(), free, core.lease_s):
                core.inflight[ep.id] += 1
                inflight[self._pool.submit(self._send, delivery)] = ep.id
                launched += 1
        return launched

    def _drive(self, report: RunReport, *, forever: bool, idle_s: float) -> None:
        core = self._core
        inflight: dict[cf.Future[Any], str] = {}
        try:
            while not self._stop.is_set():
                report.fanned_out += self.pump()
                report.sealed += self.seal()
                launched = self._launch(inflight)
                if not inflight:
                    if not forever:
                        return
                    self._stop.wait(idle_s)
                    continue
                done, _ = cf.wait(
                    list(inflight),
                    timeout=idle_s if forever or not launched else None,
                    return_when=cf.FIRST_COMPLETED,
                )
                for fut in done:
                    ep_id = inflight.pop(fut)
                    core.inflight[ep_id] -= 1
                    delivery, result, latency = fut.result()
                    self._record(delivery, result, latency, report)
        finally:
            for fut in list(inflight):
                ep_id = inflight.pop(fut)
                delivery, result, latency = fut.result()
                core.inflight[ep_id] -= 1
                self._record(delivery, result, latency, report)

    # ------------------------------------------------------------------ public

    def run_once(self) -> RunReport:
        """Pump the outbox, seal batches, and send until nothing more is due now."""
        report = RunReport()
        with self._lock:
            self._stop.clear()
            self._drive(report, forever=False, idle_s=0.05)
        return report

    def run_forever(self, idle_s: float = 0.5) -> None:
        """Keep dispatching until :meth:`stop`; polls every ``idle_s`` when idle."""
        with self._lock:
            self._stop.clear()
            self._drive(RunReport(), forever=True, idle_s=idle_s)

    def stop(self) -> None:
        """Make :meth:`run_forever` return after the requests in flight finish."""
        self._stop.set()

    def replay(self, endpoint_id: str, delivery_id: str) -> bool:
        """Send one dead letter again (its retry schedule starts over)."""
        return self.store.replay(endpoint_id, delivery_id, self._core.clock.now())

    def replay_since(self, since: float, endpoint_id: str | None = None) -> int:
        """Send again every dead letter that died at or after ``since``."""
        return self.store.replay_since(since, self._core.clock.now(), endpoint_id)

    def enable(self, endpoint_id: str) -> None:
        """Enable a disabled endpoint again (then replay its dead letters if wanted)."""
        self.store.enable(endpoint_id)

    def close(self) -> None:
        """Stop the worker threads (after :meth:`stop` / when no run is active)."""
        self._stop.set()
        self._pool.shutdown(wait=True)


def _split_async(source: Any) -> Any:
    if hasattr(source, "claim") and hasattr(source, "ack"):
        return source
    return source.outbox


class AsyncDispatcher:
    """The async driver: same steps and decisions as :class:`Dispatcher`, on asyncio tasks.

    ``outbox``: an :class:`~chatmgmt.ports.AsyncOutbox` or :class:`~chatmgmt.ports.AsyncStorage`
    (e.g. ``MemoryStorage().aio()``); ``store``: an :class:`AsyncDeliveryStore` (e.g.
    ``MemoryDeliveryStore().aio()``); ``transport``: an :class:`~chatmgmt.ports.AsyncTransport`
    (default :class:`AsyncStdlibTransport` guarded by ``settings``; :class:`AsyncHttpxTransport`
    is the ``httpx`` extra's alternative).
    """

    def __init__(
        self,
        outbox: AsyncOutbox | AsyncStorage,
        settings: WebhookSettings,
        store: AsyncDeliveryStore,
        transport: AsyncTransport | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        *,
        consumer: str = "webhooks",
        claim_limit: int = 100,
        lease_s: float | None = None,
        retry_4xx: bool = False,
    ) -> None:
        self._core = _Core(
            settings,
            clock,
            rng,
            consumer=consumer,
            claim_limit=claim_limit,
            lease_s=lease_s,
            retry_4xx=retry_4xx,
        )
        self.outbox: AsyncOutbox = _split_async(outbox)
        self.store = store
        if transport is None:
            from ._aio_http import AsyncStdlibTransport

            transport = AsyncStdlibTransport(UrlGuard.from_settings(settings))
        self.transport = transport
        self._stop = asyncio.Event()

    def __repr__(self) -> str:
        return f"AsyncDispatcher(endpoints={sorted(self._core.endpoints)!r})"

    async def pump(self) -> int:
        """See :meth:`Dispatcher.pump`."""
        core = self._core
        total = 0
        while True:
            entries = await self.outbox.claim(
                core.consumer, core.claim_limit, core.clock.now(), core.outbox_lease_s
            )
            if not entries:
                return total
            disabled = frozenset(
                [ep.id for ep in core.active() if (await self.store.health(ep.id)).disabled]
            )
            plan = core.fan_out(entries, disabled)
            await self.store.add(plan.deliveries, plan.buffered)
            await self.outbox.ack([e.id for e in entries])
            total += len(entries)
            if len(entries) < core.claim_limit:
                return total

    async def seal(self, *, flush: bool = False) -> int:
        """See :meth:`Dispatcher.seal`."""
        core = self._core
        n = 0
        for ep in core.active():
            if ep.batch_max <= 1 or (await self.store.health(ep.id)).disabled:
                continue
            buffered = await self.store.buffered(ep.id)
            if not buffered:
                continue
            for d in _plan.plan_batches(ep, buffered, core.clock.now(), flush=flush):
                n += await self.store.seal(ep.id, d.event_ids, d)
        return n

    async def _send(
        self, delivery: Delivery
    ) -> tuple[Delivery, HttpResponse | BaseException, float]:
        start = time.perf_counter()
        result: HttpResponse | BaseException
        try:
            result = await self.transport.send(self._core.request(delivery))
        except Exception as exc:
            result = exc
        return delivery, result, time.perf_counter() - start

    async def _record(
        self, delivery: Delivery, result: HttpResponse | BaseException, latency: float, r: RunReport
    ) -> None:
        core = self._core
        settled = core.settle(delivery, result, latency)
        d = settled.decision
        health = await self.store.finish(
            delivery.endpoint_id,
            delivery.id,
            settled.outcome.attempt,
            d.status,
            d.next_attempt_at,
            d.reason,
        )
        core.count(r, d.status)
        reason = core.disable_reason(settled, health)
        if reason and await self.store.disable(delivery.endpoint_id, reason, core.clock.now()):
            r.disabled += 1
            await self.outbox.append([core.disabled_event(delivery.endpoint_id, reason, health)])

    async def _launch(self, inflight: dict[asyncio.Task[Any], str]) -> int:
        core = self._core
        launched = 0
        for ep in core.active():
            free = core.free_slots(ep)
            if free <= 0:
                continue
            for delivery in await self.store.claim_due(ep.id, core.clock.now(), free, core.lease_s):
                core.inflight[ep.id] += 1
                inflight[asyncio.ensure_future(self._send(delivery))] = ep.id
                launched += 1
        return launched

    async def _drive(self, report: RunReport, *, forever: bool, idle_s: float) -> None:
        core = self._core
        inflight: dict[asyncio.Task[Any], str] = {}
        try:
            while not self._stop.is_set():
                report.fanned_out += await self.pump()
                report.sealed += await self.seal()
                launched = await self._launch(inflight)
                if not inflight:
                    if not forever:
                        return
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), idle_s)
                    continue
                done, _ = await asyncio.wait(
                    list(inflight),
                    timeout=idle_s if forever or not launched else None,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for task in done:
                    ep_id = inflight.pop(task)
                    core.inflight[ep_id] -= 1
                    delivery, result, latency = task.result()
                    await self._record(delivery, result, latency, report)
        finally:
            if inflight:
                await asyncio.wait(list(inflight))
            for task in list(inflight):
                ep_id = inflight.pop(task)
                core.inflight[ep_id] -= 1
                if task.cancelled():
                    continue
                delivery, result, latency = task.result()
                await self._record(delivery, result, latency, report)

    async def run_once(self) -> RunReport:
        """See :meth:`Dispatcher.run_once`."""
        report = RunReport()
        self._stop.clear()
        await self._drive(report, forever=False, idle_s=0.05)
        return report

    async def run_forever(self, idle_s: float = 0.5) -> None:
        """See :meth:`Dispatcher.run_forever`."""
        self._stop.clear()
        await self._drive(RunReport(), forever=True, idle_s=idle_s)

    def stop(self) -> None:
        """See :meth:`Dispatcher.stop`."""
        self._stop.set()

    async def replay(self, endpoint_id: str, delivery_id: str) -> bool:
        """See :meth:`Dispatcher.replay`."""
        return await self.store.replay(endpoint_id, delivery_id, self._core.clock.now())

    async def replay_since(self, since: float, endpoint_id: str | None = None) -> int:
        """See :meth:`Dispatcher.replay_since`."""
        return await self.store.replay_since(since, self._core.clock.now(), endpoint_id)

    async def enable(self, endpoint_id: str) -> None:
        """See :meth:`Dispatcher.enable`."""
        await self.store.enable(endpoint_id)
