"""An async face for a sync transport: each send runs in a worker thread of its own pool.

The async dispatcher's default when the ``aiohttp`` extra is not installed: the standard
library's :class:`~chatmgmt.delivery.UrllibTransport`, one request per thread at a time, with
the same rules and errors. The pool is the transport's own (not the event loop's default
executor), so slow receivers hold only its threads, never the host's other ``to_thread`` work.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf

from ..ports import HttpRequest, HttpResponse, Transport

__all__ = ["ThreadedTransport"]


class ThreadedTransport:
    """An :class:`~chatmgmt.ports.AsyncTransport` running ``transport.send`` in up to
    ``max_workers`` threads (as many requests in flight at once)."""

    def __init__(self, transport: Transport, *, max_workers: int = 64) -> None:
        self.transport = transport
        self.max_workers = max_workers
        self._pool = cf.ThreadPoolExecutor(max_workers, thread_name_prefix="chatmgmt-webhook")

    def __repr__(self) -> str:
        return f"ThreadedTransport({self.transport!r}, max_workers={self.max_workers})"

    async def send(self, request: HttpRequest) -> HttpResponse:
        """POST ``request`` from a worker thread; see the wrapped transport."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.transport.send, request)

    async def aclose(self) -> None:
        """Stop the worker threads once their requests are done (a thread's idle keep-alive
        connections go with it)."""
        await asyncio.to_thread(self._pool.shutdown, True)
