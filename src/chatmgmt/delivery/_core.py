"""The dispatcher's steps, written once, as generators of port calls.

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

Every step is a generator that yields :class:`Op` values — "call this port method with these
arguments", or one of the driver's own operations below — and receives the results, as the
managers' core does. The decisions are the pure functions of :mod:`chatmgmt.webhook._plan`.
The sync driver (:class:`~chatmgmt.delivery.Dispatcher`, worker threads) and the async driver
(:class:`~chatmgmt.delivery.AsyncDispatcher`, asyncio tasks) only carry the operations out:

* ``outbox.<method>`` and ``store.<method>``: the ports;
* ``send.start`` (delivery, request): start sending in the background;
* ``send.wait`` (timeout or None): wait until at least one send finished (or the timeout
  passed) and return the finished ones as :class:`Sent` values;
* ``send.drain``: wait for every send in flight and return them (a cancelled one is dropped);
* ``stopped``: whether :meth:`stop` was called; ``idle`` (seconds): wait that long or until
  :meth:`stop`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Generator, Sequence
from typing import Any, NamedTuple

import attrs

from .._clock import SystemClock
from ..errors import SettingsError
from ..model import Event
from ..ports import (
    Attempt,
    Clock,
    Delivery,
    DeliveryStatus,
    EndpointHealth,
    HttpRequest,
    HttpResponse,
    OutboxEntry,
)
from ..settings import WebhookEndpoint, WebhookSettings
from ..webhook import Signer, _plan

__all__ = ["DispatchCore", "Op", "RunReport", "Sent"]

log = logging.getLogger("chatmgmt.webhook")


class Op(NamedTuple):
    """One operation for the driver: ``call`` is ``"<port>.<method>"`` or a driver operation."""

    call: str
    args: tuple[Any, ...]


Eff = Generator[Op, Any, Any]


class Sent(NamedTuple):
    """A finished send: the delivery, the response or the transport's exception, the time it
    took in seconds."""

    delivery: Delivery
    result: HttpResponse | BaseException
    latency_s: float


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


class DispatchCore:
    """The dispatcher's state and steps, shared by both drivers; it does no I/O itself."""

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
        if not self.lease_s > settings.timeout_s:
            raise SettingsError(
                "lease_s",
                f"the delivery lease ({self.lease_s:g} s) must be longer than an attempt "
                f"(webhooks.timeout_s, {settings.timeout_s:g} s), or a delivery could go out "
                "twice at once",
            )
        self.retry_4xx = retry_4xx
        # called after each recorded attempt with (delivery, attempt, status): the metrics hook
        # (chatmgmt.monitoring.ChatMetrics.watch); an exception is logged and swallowed
        self.attempt_hooks: list[Callable[[Delivery, Attempt, DeliveryStatus], None]] = []
        self.endpoints: dict[str, WebhookEndpoint] = {ep.id: ep for ep in settings.endpoints}
        self.signers = {ep.id: Signer(ep.secrets) for ep in settings.endpoints}
        self.inflight: dict[str, int] = dict.fromkeys(self.endpoints, 0)
        self.refused = _plan.refused_endpoints(settings)
        for endpoint_id, why in self.refused.items():
            log.warning(
                "webhook endpoint %s can never be delivered to; its events become dead letters: %s",
                endpoint_id,
                why,
            )

    # ------------------------------------------------------------------ pure helpers

    def active(self) -> list[WebhookEndpoint]:
        """The enabled endpoints, in settings order."""
        return [ep for ep in self.settings.endpoints if ep.enabled]

    def in_flight(self) -> int:
        """Sends started and not recorded yet."""
        return sum(self.inflight.values())

    def request(self, delivery: Delivery) -> HttpRequest:
        """The signed request for the next attempt of ``delivery``."""
        ep = self.endpoints[delivery.endpoint_id]
        return _plan.build_request(
            delivery, ep, self.signers[ep.id], self.clock.now(), self.settings.timeout_s
        )

    def _count(self, report: RunReport, status: DeliveryStatus) -> None:
        report.attempts += 1
        if status is DeliveryStatus.DELIVERED:
            report.delivered += 1
        elif status is DeliveryStatus.DEAD:
            report.dead += 1
        else:
            report.retried += 1

    # ------------------------------------------------------------------ steps

    def pump(self) -> Eff:
        """Fan the outbox's pending entries out into the delivery store; returns how many."""
        total = 0
        while True:
            entries: Sequence[OutboxEntry] = yield Op(
                "outbox.claim",
                (self.consumer, self.claim_limit, self.clock.now(), self.outbox_lease_s),
            )
            if not entries:
                return total
            disabled: set[str] = set()
            for ep in self.active():
                health: EndpointHealth = yield Op("store.health", (ep.id,))
                if health.disabled:
                    disabled.add(ep.id)
            plan = _plan.fan_out(entries, self.settings, self.clock.now(), frozenset(disabled))
            yield Op("store.add", (plan.deliveries, plan.buffered))
            yield Op("outbox.ack", ([e.id for e in entries],))
            total += len(entries)
            if len(entries) < self.claim_limit:
                return total

    def seal(self, *, flush: bool = False) -> Eff:
        """Seal batch buffers that are full or old enough (all of them with ``flush``)."""
        n = 0
        for ep in self.active():
            if ep.batch_max <= 1:
                continue
            health: EndpointHealth = yield Op("store.health", (ep.id,))
            if health.disabled:
                continue
            buffered = yield Op("store.buffered", (ep.id,))
            if not buffered:
                continue
            for d in _plan.plan_batches(ep, buffered, self.clock.now(), flush=flush):
                sealed: bool = yield Op("store.seal", (ep.id, d.event_ids, d))
                n += sealed
        return n

    def launch(self) -> Eff:
        """Claim due deliveries into the endpoints' free slots and start sending them;
        returns how many started."""
        launched = 0
        for ep in self.active():
            free = ep.max_concurrency - self.inflight[ep.id]
            if free <= 0:
                continue
            due: list[Delivery] = yield Op(
                "store.claim_due", (ep.id, self.clock.now(), free, self.lease_s)
            )
            for delivery in due:
                self.inflight[ep.id] += 1
                yield Op("send.start", (delivery, self.request(delivery)))
                launched += 1
        return launched

    def record(self, sent: Sent, report: RunReport) -> Eff:
        """Record one finished attempt and what follows from it."""
        delivery = sent.delivery
        self.inflight[delivery.endpoint_id] -= 1
        now = self.clock.now()
        outcome = _plan.classify(
            sent.result, now, self.settings, latency_s=sent.latency_s, retry_4xx=self.retry_4xx
        )
        decision = _plan.decide(delivery, outcome, self.settings, now, self.rng)
        if decision.status is DeliveryStatus.DEAD:
            log.warning(
                "webhook %s to endpoint %s is a dead letter: %s",
                delivery.id,
                delivery.endpoint_id,
                decision.reason,
            )
        health: EndpointHealth = yield Op(
            "store.finish",
            (
                delivery.endpoint_id,
                delivery.id,
                outcome.attempt,
                decision.status,
                decision.next_attempt_at,
                decision.reason,
            ),
        )
        self._count(report, decision.status)
        for hook in self.attempt_hooks:
            try:
                hook(delivery, outcome.attempt, decision.status)
            except Exception:
                log.exception("webhook dispatcher: an attempt hook failed")
        reason = decision.disable
        if not reason and _plan.should_disable(
            health.failing_since, self.clock.now(), self.settings
        ):
            reason = "failing"
        if not reason:
            return
        newly: bool = yield Op("store.disable", (delivery.endpoint_id, reason, self.clock.now()))
        if newly:
            report.disabled += 1
            yield Op(
                "outbox.append", ([self._disabled_event(delivery.endpoint_id, reason, health)],)
            )

    def _disabled_event(self, endpoint_id: str, reason: str, health: EndpointHealth) -> Event:
        log.warning("webhook endpoint %s disabled (%s)", endpoint_id, reason)
        return _plan.disabled_event(
            endpoint_id, reason, health.failing_since, self.clock.now(), self.rng
        )

    def drive(self, report: RunReport, *, forever: bool, idle_s: float) -> Eff:
        """The dispatch loop: pump, seal, launch, record what finished; until nothing is due
        (``forever=False``) or until :meth:`stop`. Sends in flight are recorded before it
        returns, whatever ends it. With ``forever``, an error (of a port, of one delivery) is
        logged and the loop goes on: what it interrupted is taken again when its lease ends."""
        try:
            while not (yield Op("stopped", ())):
                try:
                    launched = yield from self._pass(report)
                    if not self.in_flight():
                        if not forever:
                            return
                        yield Op("idle", (idle_s,))
                        continue
                    timeout = idle_s if forever or not launched else None
                    done: list[Sent] = yield Op("send.wait", (timeout,))
                    for sent in done:
                        yield from self._record_one(sent, report, forever)
                except Exception:
                    if not forever:
                        raise
                    log.exception("webhook dispatcher: a pass failed; going on")
                    yield Op("idle", (idle_s,))
        finally:
            if self.in_flight():
                rest: list[Sent] = yield Op("send.drain", ())
                for sent in rest:
                    yield from self._record_one(sent, report, forever)
                self.inflight = dict.fromkeys(self.endpoints, 0)

    def _pass(self, report: RunReport) -> Eff:
        report.fanned_out += yield from self.pump()
        report.sealed += yield from self.seal()
        return (yield from self.launch())

    def _record_one(self, sent: Sent, report: RunReport, forever: bool) -> Eff:
        try:
            yield from self.record(sent, report)
        except Exception:
            if not forever:
                raise
            log.exception(
                "webhook dispatcher: recording delivery %s to %s failed; it is sent again "
                "when its lease ends",
                sent.delivery.id,
                sent.delivery.endpoint_id,
            )
