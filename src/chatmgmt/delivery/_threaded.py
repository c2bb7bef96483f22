"""An async face for a sync transport: each send runs in a worker thread.

The async dispatcher's default when the ``aiohttp`` extra is not installed: the standard
library's :class:`~chatmgmt.delivery.UrllibTransport`, one request per thread at a time, with
the same rules and errors.
"""

from __future__ import annotations

import asyncio

from ..ports import HttpRequest, HttpResponse, Transport

__all__ = ["ThreadedTransport"]


class ThreadedTransport:
    """An :class:`~chatmgmt.ports.AsyncTransport` running ``transport.send`` in threads
    (``asyncio.to_thread``, the loop's default executor)."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def __repr__(self) -> str:
        return f"ThreadedTransport({self.transport!r})"

    async def send(self, request: HttpRequest) -> HttpResponse:
        """POST ``request`` from a worker thread; see the wrapped transport."""
        return await asyncio.to_thread(self.transport.send, request)

    async def aclose(self) -> None:
        """Close the wrapped transport's connections of the calling thread, if it can."""
        close = getattr(self.transport, "close", None)
        if close is not None:
            close()
