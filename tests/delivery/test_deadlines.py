"""Every shipped transport: ``timeout_s`` is a total deadline per attempt, and every failure is
one of the library's typed errors (never a raw ``ValueError`` or ``OSError``).

The raw loopback server drips its answer a byte at a time: every single read gets a byte in
time, so only a total deadline ends the attempt (a per-read timeout would hang until the test
run's own timeout).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chatmgmt.delivery import (
    AiohttpTransport,
    AsyncHttpxTransport,
    DeliveryTimeoutError,
    HttpxTransport,
    ThreadedTransport,
    UrlGuard,
    UrllibTransport,
)
from chatmgmt.errors import DeliveryError, UnsafeURLError, WebhookError
from chatmgmt.ports import HttpRequest, HttpResponse
from delivery.raw_server import Drip, RawServer

GUARD = UrlGuard(("127.0.0.1",), allow_http=True)

Send = Callable[[HttpRequest], HttpResponse]


def _sync(make: Callable[[UrlGuard | None], Any]) -> Callable[[UrlGuard | None], Send]:
    def build(guard: UrlGuard | None) -> Send:
        transport = make(guard)

        def send(request: HttpRequest) -> HttpResponse:
            try:
                return transport.send(request)  # type: ignore[no-any-return]
            finally:
                transport.close()

        return send

    return build


def _async(make: Callable[[UrlGuard | None], Any]) -> Callable[[UrlGuard | None], Send]:
    def build(guard: UrlGuard | None) -> Send:
        def send(request: HttpRequest) -> HttpResponse:
            async def main() -> HttpResponse:
                transport = make(guard)
                try:
                    return await transport.send(request)  # type: ignore[no-any-return]
                finally:
                    await transport.aclose()

            return asyncio.run(main())

        return send

    return build


TRANSPORTS = {
    "urllib": _sync(UrllibTransport),
    "httpx": _sync(HttpxTransport),
    "threaded-urllib": _async(lambda g: ThreadedTransport(UrllibTransport(g))),
    "httpx-async": _async(AsyncHttpxTransport),
    "aiohttp": _async(AiohttpTransport),
}


@pytest.fixture(params=sorted(TRANSPORTS))
def build(request: pytest.FixtureRequest) -> Callable[[UrlGuard | None], Send]:
    return TRANSPORTS[request.param]


@pytest.fixture
def raw() -> Iterator[RawServer]:
    s = RawServer()
    yield s
    s.close()


def req(url: str, timeout: float = 0.5) -> HttpRequest:
    return HttpRequest(url, b'{"a":1}', {"webhook-id": "msg_1"}, timeout)


@pytest.mark.parametrize(
    "drip",
    [
        Drip(b"HTTP/1.1 200 OK\r\nX-Drip: ", tail=b"z"),  # the head never ends
        Drip(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", tail=b"z"),  # the body
        Drip(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", tail=b"1\r\nz\r\n"),
    ],
    ids=["head", "body", "chunks"],
)
def test_a_dripping_answer_ends_at_the_deadline(
    build: Callable[[UrlGuard | None], Send], raw: RawServer, drip: Drip
) -> None:
    raw.script = [drip]
    with pytest.raises(DeliveryTimeoutError):
        build(GUARD)(req(raw.url()))


def test_an_answer_in_time_passes(build: Callable[[UrlGuard | None], Send], raw: RawServer) -> None:
    response = build(GUARD)(req(raw.url(), timeout=5.0))
    assert (response.status, response.body) == (200, b"ok")


@pytest.mark.parametrize(
    ("url", "guarded", "error"),
    [
        ("http://127.0.0.1:99999/h", True, UnsafeURLError),
        ("http://127.0.0.1:99999/h", False, DeliveryError),
        ("file:///etc/passwd", True, UnsafeURLError),
        ("file:///etc/passwd", False, DeliveryError),
        ("http://127.0.0.1:9/h", True, DeliveryError),  # nothing listens
        ("http://10.0.0.1/h", True, UnsafeURLError),
        ("http://[::1/h", True, UnsafeURLError),
        ("http://[::1/h", False, DeliveryError),
    ],
)
def test_failures_are_typed(
    build: Callable[[UrlGuard | None], Send], url: str, guarded: bool, error: type[Exception]
) -> None:
    with pytest.raises(WebhookError) as info:
        build(GUARD if guarded else None)(req(url, timeout=2.0))
    assert isinstance(info.value, error)
    if error is DeliveryError:
        assert not isinstance(info.value, UnsafeURLError)
