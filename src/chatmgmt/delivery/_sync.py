"""The sync driver: carries out the core's operations with worker threads."""

from __future__ import annotations

import concurrent.futures as cf
import queue
import random
import threading
import time
from collections.abc import Generator
from typing import Any, TypeVar

from ..ports import Clock, DeliveryStore, HttpRequest, Outbox, Storage, Transport
from ..settings import WebhookSettings
from ._core import DispatchCore, Op, RunReport, Sent
from ._guard import UrlGuard

__all__ = ["Dispatcher", "outbox_of"]

T = TypeVar("T")


def outbox_of(source: Any) -> Any:
    """The outbox of a Storage bundle, or the outbox itself."""
    if hasattr(source, "claim") and hasattr(source, "ack"):
        return source
    return source.outbox


class Dispatcher:
    """Delivers the outbox's events to the webhook endpoints (sync driver, worker threads).

    ``outbox``: the storage's :class:`~chatmgmt.ports.Outbox` or the whole
    :class:`~chatmgmt.ports.Storage`; ``store``: the :class:`~chatmgmt.ports.DeliveryStore`;
    ``transport`` defaults to :class:`~chatmgmt.delivery.UrllibTransport` guarded by
    ``settings`` (``allow_hosts``, ``allow_http``); ``clock`` and ``rng`` are injected
    (defaults: wall clock, unseeded). ``retry_4xx`` retries 4xx answers too (by default, 4xx
    other than 408/409/425/429 become dead letters at once). Several dispatchers may share the
    stores: leases keep them apart.
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
        self._core = DispatchCore(
            settings,
            clock,
            rng,
            consumer=consumer,
            claim_limit=claim_limit,
            lease_s=lease_s,
            retry_4xx=retry_4xx,
        )
        self.outbox: Outbox = outbox_of(outbox)
        self.store = store
        if transport is None:
            from ._stdlib import UrllibTransport

            transport = UrllibTransport(UrlGuard.from_settings(settings))
        self.transport = transport
        workers = max(1, min(64, sum(ep.max_concurrency for ep in settings.endpoints)))
        self._pool = cf.ThreadPoolExecutor(workers, thread_name_prefix="chatmgmt-webhook")
        self._done: queue.SimpleQueue[Sent] = queue.SimpleQueue()
        self._running = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Dispatcher(endpoints={sorted(self._core.endpoints)!r})"

    # ------------------------------------------------------------------ the driver

    def _send(self, delivery: Any, request: HttpRequest) -> None:
        start = time.perf_counter()
        result: Any
        try:
            result = self.transport.send(request)
        except BaseException as exc:  # a worker thread: whatever happens is the attempt's result
            result = exc
        self._done.put(Sent(delivery, result, time.perf_counter() - start))

    def _finished(self, timeout: float | None) -> list[Sent]:
        """What finished since the last call; waits (up to ``timeout``) for one if none did."""
        done: list[Sent] = []
        if self._running:
            try:
                done.append(self._done.get(timeout=timeout))
            except queue.Empty:
                return done
            while True:
                try:
                    done.append(self._done.get_nowait())
                except queue.Empty:
                    break
        self._running -= len(done)
        return done

    def _drain(self) -> list[Sent]:
        done: list[Sent] = []
        while self._running:
            done += self._finished(None)
        return done

    def _do(self, op: Op) -> Any:
        call, args = op
        port, _, method = call.partition(".")
        if port == "store":
            return getattr(self.store, method)(*args)
        if port == "outbox":
            return getattr(self.outbox, method)(*args)
        if call == "send.start":
            self._pool.submit(self._send, *args)
            self._running += 1
            return None
        if call == "send.wait":
            return self._finished(args[0])
        if call == "send.drain":
            return self._drain()
        if call == "stopped":
            return self._stop.is_set()
        if call == "idle":
            self._idle(args[0])
            return None
        raise AssertionError(f"unknown operation {call!r}")

    def _idle(self, seconds: float) -> None:
        """Wait ``seconds`` or until :meth:`stop`; an outbox with ``wait(timeout)`` (PostgreSQL:
        ``LISTEN``) ends the wait early when events arrive."""
        wait = getattr(self.outbox, "wait", None)
        if not callable(wait):
            self._stop.wait(seconds)
            return
        deadline = time.monotonic() + seconds
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                if wait(min(left, 0.25)):  # slices, so stop() is seen within 0.25 s
                    return
            except Exception:  # a wake-up that cannot listen falls back to sleeping
                self._stop.wait(max(0.0, deadline - time.monotonic()))
                return

    def _run(self, gen: Generator[Op, Any, T]) -> T:
        result: Any = None
        exc: BaseException | None = None
        while True:
            try:
                op = gen.throw(exc) if exc is not None else gen.send(result)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            exc = result = None
            try:
                result = self._do(op)
            except BaseException as e:
                exc = e

    # ------------------------------------------------------------------ public

    def pump(self) -> int:
        """Fan the outbox's pending entries out into the delivery store; returns how many."""
        return self._run(self._core.pump())  # type: ignore[no-any-return]

    def seal(self, *, flush: bool = False) -> int:
        """Seal batch buffers that are full or old enough (all of them with ``flush``)."""
        return self._run(self._core.seal(flush=flush))  # type: ignore[no-any-return]

    def run_once(self) -> RunReport:
        """Pump the outbox, seal batches, and send until nothing more is due now."""
        report = RunReport()
        with self._lock:
            self._stop.clear()
            self._run(self._core.drive(report, forever=False, idle_s=0.05))
        return report

    def run_forever(self, idle_s: float = 0.5) -> None:
        """Keep dispatching until :meth:`stop`; polls every ``idle_s`` when idle."""
        with self._lock:
            self._stop.clear()
            self._run(self._core.drive(RunReport(), forever=True, idle_s=idle_s))

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
        """Stop the worker threads (after :meth:`stop` / when no run is active); their idle
        connections go with them. A transport you passed in is yours to close."""
        self._stop.set()
        self._pool.shutdown(wait=True)
