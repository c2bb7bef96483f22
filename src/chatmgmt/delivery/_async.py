"""The async driver: carries out the core's operations with asyncio tasks."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Generator
from typing import Any, TypeVar

from ..ports import (
    AsyncDeliveryStore,
    AsyncOutbox,
    AsyncStorage,
    AsyncTransport,
    Clock,
    HttpRequest,
)
from ..settings import WebhookSettings
from ._core import DispatchCore, Op, RunReport, Sent
from ._guard import UrlGuard
from ._sync import outbox_of

__all__ = ["AsyncDispatcher", "default_async_transport"]

T = TypeVar("T")


def default_async_transport(guard: UrlGuard, max_in_flight: int = 64) -> AsyncTransport:
    """:class:`~chatmgmt.delivery.AiohttpTransport` when the ``aiohttp`` extra is installed,
    else the standard library's transport in up to ``max_in_flight`` worker threads."""
    try:
        from ._aiohttp import AiohttpTransport
    except ImportError:
        from ._stdlib import UrllibTransport
        from ._threaded import ThreadedTransport

        return ThreadedTransport(UrllibTransport(guard), max_workers=max_in_flight)
    return AiohttpTransport(guard)


class AsyncDispatcher:
    """The async driver: same steps and decisions as :class:`~chatmgmt.delivery.Dispatcher`,
    on asyncio tasks.

    ``outbox``: an :class:`~chatmgmt.ports.AsyncOutbox` or :class:`~chatmgmt.ports.AsyncStorage`
    (e.g. ``MemoryStorage().aio()``); ``store``: an :class:`~chatmgmt.ports.AsyncDeliveryStore`
    (e.g. ``MemoryDeliveryStore().aio()``); ``transport``: an
    :class:`~chatmgmt.ports.AsyncTransport` (default: :class:`~chatmgmt.delivery.AiohttpTransport`
    guarded by ``settings`` with the ``aiohttp`` extra, otherwise
    :class:`~chatmgmt.delivery.UrllibTransport` in threads; :class:`AsyncHttpxTransport` is the
    ``httpx`` extra's alternative).
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
        self._core = DispatchCore(
            settings,
            clock,
            rng,
            consumer=consumer,
            claim_limit=claim_limit,
            lease_s=lease_s,
            retry_4xx=retry_4xx,
        )
        self.outbox: AsyncOutbox = outbox_of(outbox)
        self.store = store
        self._owns_transport = transport is None
        if transport is None:
            in_flight = max(1, min(64, sum(ep.max_concurrency for ep in settings.endpoints)))
            transport = default_async_transport(UrlGuard.from_settings(settings), in_flight)
        self.transport = transport
        self._tasks: set[asyncio.Task[None]] = set()
        self._done: list[Sent] = []
        self._waiter: asyncio.Future[None] | None = None
        self._stop = asyncio.Event()

    def __repr__(self) -> str:
        return f"AsyncDispatcher(endpoints={sorted(self._core.endpoints)!r})"

    # ------------------------------------------------------------------ the driver

    async def _send(self, delivery: Any, request: HttpRequest) -> None:
        start = time.perf_counter()
        result: Any
        try:
            result = await self.transport.send(request)
        except Exception as exc:
            result = exc
        self._done.append(Sent(delivery, result, time.perf_counter() - start))
        self._wake()

    def _wake(self, _: object = None) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _started(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._wake()  # a drain may be waiting for the last task to leave (or a cancelled one)

    async def _finished(self, timeout: float | None) -> list[Sent]:
        """What finished since the last call; waits (up to ``timeout``) for one if none did."""
        if not self._done and self._tasks:
            loop = asyncio.get_running_loop()
            deadline = None if timeout is None else loop.time() + timeout
            while not self._done and self._tasks:
                left = None if deadline is None else deadline - loop.time()
                if left is not None and left <= 0:
                    break
                self._waiter = loop.create_future()
                handle = loop.call_later(left, self._wake) if left is not None else None
                try:
                    await self._waiter
                finally:
                    self._waiter = None
                    if handle is not None:
                        handle.cancel()
        done, self._done = self._done, []
        return done

    async def _drain(self) -> list[Sent]:
        """Wait for every send in flight; a cancelled one is dropped."""
        done: list[Sent] = []
        while self._tasks or self._done:
            done += await self._finished(None)
        return done

    async def _do(self, op: Op) -> Any:
        call, args = op
        port, _, method = call.partition(".")
        if port == "store":
            return await getattr(self.store, method)(*args)
        if port == "outbox":
            return await getattr(self.outbox, method)(*args)
        if call == "send.start":
            self._started(asyncio.ensure_future(self._send(*args)))
            return None
        if call == "send.wait":
            return await self._finished(args[0])
        if call == "send.drain":
            return await self._drain()
        if call == "stopped":
            return self._stop.is_set()
        if call == "idle":
            await self._idle(args[0])
            return None
        raise AssertionError(f"unknown operation {call!r}")

    async def _idle(self, seconds: float) -> None:
        """Wait ``seconds`` or until :meth:`stop`; an outbox with ``wait(timeout)`` (PostgreSQL:
        ``LISTEN``) ends the wait early when events arrive."""
        wait = getattr(self.outbox, "wait", None)
        stopped = asyncio.ensure_future(self._stop.wait())
        try:
            if callable(wait):
                woken = asyncio.ensure_future(wait(seconds))
                done, _ = await asyncio.wait(
                    {stopped, woken}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED
                )
                if woken not in done:
                    woken.cancel()
                with contextlib.suppress(BaseException):
                    await woken
                if woken in done and woken.exception() is not None and not self._stop.is_set():
                    # a wake-up that cannot listen falls back to sleeping
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(asyncio.shield(stopped), seconds)
            else:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(stopped), seconds)
        finally:
            stopped.cancel()

    async def _run(self, gen: Generator[Op, Any, T]) -> T:
        result: Any = None
        exc: BaseException | None = None
        while True:
            try:
                op = gen.throw(exc) if exc is not None else gen.send(result)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            exc = result = None
            try:
                result = await self._do(op)
            except BaseException as e:
                exc = e

    # ------------------------------------------------------------------ public

    async def pump(self) -> int:
        """See :meth:`Dispatcher.pump`."""
        return await self._run(self._core.pump())

    async def seal(self, *, flush: bool = False) -> int:
        """See :meth:`Dispatcher.seal`."""
        return await self._run(self._core.seal(flush=flush))

    async def run_once(self) -> RunReport:
        """See :meth:`Dispatcher.run_once`."""
        report = RunReport()
        self._stop.clear()
        await self._run(self._core.drive(report, forever=False, idle_s=0.05))
        return report

    async def run_forever(self, idle_s: float = 0.5) -> None:
        """See :meth:`Dispatcher.run_forever`."""
        self._stop.clear()
        await self._run(self._core.drive(RunReport(), forever=True, idle_s=idle_s))

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

    async def aclose(self) -> None:
        """Close the default transport's connections (after :meth:`stop` / when no run is
        active); a transport you passed in is yours to close."""
        self._stop.set()
        close = getattr(self.transport, "aclose", None)
        if self._owns_transport and close is not None:
            await close()
