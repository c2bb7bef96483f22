"""Message webhooks, the pure part: event catalogue, payloads, delivery plan, Standard Webhooks
signing and the URL policy. Nothing here does I/O or reads a clock.

Sending is :mod:`chatmgmt.delivery` (dispatchers, transports, the URL guard that resolves host
names); the delivery store's protocol is :class:`chatmgmt.ports.DeliveryStore`. See
``docs/webhooks.md``.

The names that moved out (``Dispatcher``, ``AsyncDispatcher``, ``RunReport``, the transports,
``DeliveryTimeoutError``, ``UrlGuard``, ``check_url``, ``DeliveryStore`` and its value types) can
still be imported from here; they are no longer listed in ``__all__``.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._catalogue import CATALOGUE, EventSpec, EventType, make_event
from ._docs import render_catalogue_markdown
from ._plan import batch_id, serialize
from ._signing import Signer, generate_secret, verify
from ._url_policy import CheckedUrl, ParsedUrl, UrlPolicy, split_url, unsafe_reason

__all__ = [
    "CATALOGUE",
    "CheckedUrl",
    "EventSpec",
    "EventType",
    "ParsedUrl",
    "Signer",
    "UrlPolicy",
    "batch_id",
    "generate_secret",
    "make_event",
    "render_catalogue_markdown",
    "serialize",
    "split_url",
    "unsafe_reason",
    "verify",
]

_MOVED = {
    "AsyncDispatcher": "chatmgmt.delivery",
    "Dispatcher": "chatmgmt.delivery",
    "RunReport": "chatmgmt.delivery",
    "UrllibTransport": "chatmgmt.delivery",
    "HttpxTransport": "chatmgmt.delivery",
    "AsyncHttpxTransport": "chatmgmt.delivery",
    "DeliveryTimeoutError": "chatmgmt.delivery",
    "UrlGuard": "chatmgmt.delivery",
    "check_url": "chatmgmt.delivery",
    "AsyncDeliveryStore": "chatmgmt.ports",
    "Attempt": "chatmgmt.ports",
    "BufferedEvent": "chatmgmt.ports",
    "Delivery": "chatmgmt.ports",
    "DeliveryStatus": "chatmgmt.ports",
    "DeliveryStore": "chatmgmt.ports",
    "EndpointHealth": "chatmgmt.ports",
}


def __getattr__(name: str) -> Any:
    """Names that moved to :mod:`chatmgmt.delivery` or :mod:`chatmgmt.ports` (PEP 562)."""
    home = _MOVED.get(name)
    if home is None:
        if name == "AsyncStdlibTransport":
            raise AttributeError(
                "chatmgmt.webhook.AsyncStdlibTransport was removed: use "
                "chatmgmt.delivery.AiohttpTransport (extra chatmgmt[aiohttp]) or "
                "chatmgmt.delivery.ThreadedTransport"
            )
        raise AttributeError(f"module 'chatmgmt.webhook' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
