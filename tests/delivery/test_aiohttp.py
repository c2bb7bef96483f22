"""AiohttpTransport against a raw scripted server on loopback (a real socket, in a thread).

What the transport adds to aiohttp: the connection pinned to the address the guard checked,
keep-alive, bounded answers (head and body), a total deadline per attempt, typed errors.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from chatmgmt.delivery import AiohttpTransport, DeliveryTimeoutError, UrlGuard
from chatmgmt.errors import DeliveryError, UnsafeURLError
from chatmgmt.ports import HttpRequest
from delivery.raw_server import OK, Drip, RawServer


@pytest.fixture
def raw() -> Iterator[RawServer]:
    s = RawServer()
    yield s
    s.close()


GUARD = UrlGuard(("127.0.0.1",), allow_http=True)


def req(url: str, timeout: float = 2.0) -> HttpRequest:
    return HttpRequest(url, b'{"a":1}', {"webhook-id": "msg_1", "user-agent": "t"}, timeout)


def test_posts_the_body_with_host_and_length(raw: RawServer) -> None:
    async def main() -> None:
        t = AiohttpTransport(GUARD)
        r = await t.send(req(raw.url("/in?x=1")))
        await t.aclose()
        assert (r.status, r.body) == (200, b"ok")

    asyncio.run(main())
    head, _, body = raw.requests[0].partition(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    assert lines[0] == b"post /in?x=1 http/1.1"
    assert f"host: 127.0.0.1:{raw.port}".encode() in lines
    assert b"content-length: 7" in lines
    assert b"webhook-id: msg_1" in lines
    assert not any(line.startswith(b"accept-encoding") for line in lines)
    assert body == b'{"a":1}'


def test_a_host_name_connects_to_the_checked_address_only(raw: RawServer) -> None:
    """The name resolves (by the guard's resolver) to loopback; aiohttp never resolves it."""
    resolved: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        resolved.append(host)
        return ["127.0.0.1"]

    guard = UrlGuard(("127.0.0.1/32",), allow_http=True, resolver=resolver)

    async def main() -> None:
        t = AiohttpTransport(guard)
        for _ in range(2):
            r = await t.send(req(raw.url("/h", host="hooks.example.test")))
            assert r.status == 200
        await t.aclose()

    asyncio.run(main())
    assert resolved == ["hooks.example.test", "hooks.example.test"]  # checked on every send
    assert f"host: hooks.example.test:{raw.port}".encode() in raw.requests[0].lower()
    assert raw.connections == 1  # keep-alive across both


def test_unsafe_addresses_are_refused_before_connecting(raw: RawServer) -> None:
    guard = UrlGuard((), allow_http=True, resolver=lambda h, p: ["127.0.0.1"])

    async def main() -> None:
        t = AiohttpTransport(guard)
        with pytest.raises(UnsafeURLError, match="loopback"):
            await t.send(req(raw.url("/h", host="hooks.example.test")))
        with pytest.raises(UnsafeURLError):
            await t.send(req(raw.url()))
        with pytest.raises(UnsafeURLError):
            await t.send(req("file:///etc/passwd"))
        await t.aclose()

    asyncio.run(main())
    assert raw.connections == 0


def test_keep_alive_reuses_one_connection(raw: RawServer) -> None:
    async def main() -> None:
        t = AiohttpTransport(GUARD)
        for _ in range(5):
            assert (await t.send(req(raw.url()))).status == 200
        await t.aclose()

    asyncio.run(main())
    assert raw.connections == 1


def test_a_long_body_is_cut_to_20kb_and_the_connection_dropped(raw: RawServer) -> None:
    big = b"y" * 4_000_000  # more than any read buffer: the rest stays unread
    raw.script = [b"HTTP/1.1 200 OK\r\nContent-Length: 4000000\r\n\r\n" + big]

    async def main() -> None:
        t = AiohttpTransport(GUARD)
        r = await t.send(req(raw.url()))
        assert r.body == big[:20_000]
        assert (await t.send(req(raw.url()))).body == b"ok"
        await t.aclose()

    asyncio.run(main())
    assert raw.connections == 2


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 20_000 + b"\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 " + b"O" * 20_000 + b"\r\nContent-Length: 0\r\n\r\n",
        b"NOT HTTP AT ALL\r\n\r\n",
        None,  # closed without answering
    ],
    ids=["header-too-long", "status-line-too-long", "garbage", "closed"],
)
def test_bad_answers_are_delivery_errors(raw: RawServer, answer: bytes | None) -> None:
    raw.script = [answer]

    async def main() -> None:
        t = AiohttpTransport(GUARD)
        with pytest.raises(DeliveryError) as info:
            await t.send(req(raw.url()))
        assert not isinstance(info.value, DeliveryTimeoutError)
        await t.aclose()

    asyncio.run(main())


@pytest.mark.parametrize(
    "drip",
    [
        Drip(b"HTTP/1.1 200 OK\r\nX-Drip: ", tail=b"z"),  # the head never ends
        Drip(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", tail=b"z"),  # nor the body
    ],
    ids=["head", "body"],
)
def test_timeout_is_a_total_deadline_for_a_dripping_answer(raw: RawServer, drip: Drip) -> None:
    """Every read gets a byte in time; only a total deadline ends the attempt."""
    raw.script = [drip]

    async def main() -> None:
        t = AiohttpTransport(GUARD)
        with pytest.raises(DeliveryTimeoutError):
            await t.send(req(raw.url(), timeout=0.5))
        await t.aclose()

    asyncio.run(main())


def test_redirects_are_returned_not_followed(raw: RawServer) -> None:
    raw.script = [
        b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/x\r\nContent-Length: 0\r\n\r\n"
    ]

    async def main() -> None:
        t = AiohttpTransport(GUARD)
        r = await t.send(req(raw.url()))
        assert (r.status, r.headers["location"]) == (302, "http://127.0.0.1:1/x")
        await t.aclose()

    asyncio.run(main())
    assert len(raw.requests) == 1


def test_refused_connection_and_bad_port_are_typed_errors() -> None:
    async def main() -> None:
        t = AiohttpTransport(GUARD)
        with pytest.raises(DeliveryError):
            await t.send(req("http://127.0.0.1:9/h", timeout=1))
        t2 = AiohttpTransport(None)
        with pytest.raises(DeliveryError):
            await t2.send(req("http://127.0.0.1:99999/h", timeout=1))
        await t.aclose()
        await t2.aclose()

    asyncio.run(main())


def test_works_from_a_new_event_loop(raw: RawServer) -> None:
    t = AiohttpTransport(GUARD)

    async def once() -> int:
        return (await t.send(req(raw.url()))).status

    assert asyncio.run(once()) == 200
    assert asyncio.run(once()) == 200  # the first loop's session is dropped, a new one opens

    async def close() -> None:
        await t.aclose()

    asyncio.run(close())
    assert raw.requests and raw.default == OK
