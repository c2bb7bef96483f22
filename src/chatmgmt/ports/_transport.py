"""The HTTP transport port: one webhook request, its response, the sync and async senders."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import attrs


@attrs.frozen
class HttpRequest:
    """One webhook request: the body is already serialized and signed."""

    url: str
    body: bytes
    headers: Mapping[str, str]
    timeout_s: float = 15.0


@attrs.frozen
class HttpResponse:
    """What a transport got back; ``body`` holds at most the first 20 kB."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    elapsed_s: float


class Transport(Protocol):
    """Sends one HTTP POST; never follows redirects; raises DeliveryError on network failure."""

    def send(self, request: HttpRequest) -> HttpResponse:
        """POST ``request`` and return the response."""
        ...


class AsyncTransport(Protocol):
    """Async face of :class:`Transport`, same contract."""

    async def send(self, request: HttpRequest) -> HttpResponse:
        """POST ``request`` and return the response."""
        ...


RESPONSE_KEEP = 20_000
"""How many bytes of a response body an attempt keeps."""
