"""Message webhooks: event catalogue, Standard Webhooks signing, durable delivery, URL guard.

See ``docs/webhooks.md``. The in-memory delivery store lives in
:mod:`chatmgmt.storage.memory_delivery` (``MemoryDeliveryStore``).
"""

from ._aio_http import AsyncStdlibTransport
from ._catalogue import CATALOGUE, EventSpec, EventType, make_event
from ._dispatch import AsyncDispatcher, Dispatcher, RunReport
from ._docs import render_catalogue_markdown
from ._guard import CheckedUrl, UrlGuard, check_url
from ._plan import batch_id, serialize
from ._signing import Signer, generate_secret, verify
from ._store import (
    AsyncDeliveryStore,
    Attempt,
    BufferedEvent,
    Delivery,
    DeliveryStatus,
    DeliveryStore,
    EndpointHealth,
)
from ._transport import AsyncHttpxTransport, DeliveryTimeoutError, HttpxTransport, UrllibTransport

__all__ = [
    "CATALOGUE",
    "AsyncDeliveryStore",
    "AsyncDispatcher",
    "AsyncHttpxTransport",
    "AsyncStdlibTransport",
    "Attempt",
    "BufferedEvent",
    "CheckedUrl",
    "Delivery",
    "DeliveryStatus",
    "DeliveryStore",
    "DeliveryTimeoutError",
    "Dispatcher",
    "EndpointHealth",
    "EventSpec",
    "EventType",
    "HttpxTransport",
    "RunReport",
    "Signer",
    "UrlGuard",
    "UrllibTransport",
    "batch_id",
    "check_url",
    "generate_secret",
    "make_event",
    "render_catalogue_markdown",
    "serialize",
    "verify",
]
