"""Webhook delivery, the I/O part: dispatchers, HTTP transports and the URL guard at connect time.

:class:`Dispatcher` (threads) and :class:`AsyncDispatcher` (asyncio) are two thin drivers over
one core (:mod:`._core`) whose steps are generators of port calls; the decisions are the pure
functions of :mod:`chatmgmt.webhook`. Transports: :class:`UrllibTransport` (standard library,
the sync default), :class:`AiohttpTransport` (extra ``chatmgmt[aiohttp]``, the async default),
:class:`ThreadedTransport` (a sync transport in threads: the async fallback without the extra),
:class:`HttpxTransport` and :class:`AsyncHttpxTransport` (extra ``chatmgmt[httpx]``). The
delivery store is the port :class:`chatmgmt.ports.DeliveryStore`. See ``docs/webhooks.md``.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._async import AsyncDispatcher
from ._core import RunReport
from ._errors import DeliveryTimeoutError
from ._guard import Resolver, UrlGuard, check_url, system_resolver
from ._httpx import AsyncHttpxTransport, HttpxTransport
from ._stdlib import UrllibTransport
from ._sync import Dispatcher
from ._threaded import ThreadedTransport

__all__ = [
    "AiohttpTransport",
    "AsyncDispatcher",
    "AsyncHttpxTransport",
    "DeliveryTimeoutError",
    "Dispatcher",
    "HttpxTransport",
    "Resolver",
    "RunReport",
    "ThreadedTransport",
    "UrlGuard",
    "UrllibTransport",
    "check_url",
    "system_resolver",
]


def __getattr__(name: str) -> Any:
    """``AiohttpTransport`` is imported on first use: it needs the ``aiohttp`` extra."""
    if name == "AiohttpTransport":
        return importlib.import_module("._aiohttp", __name__).AiohttpTransport
    raise AttributeError(f"module 'chatmgmt.delivery' has no attribute {name!r}")
