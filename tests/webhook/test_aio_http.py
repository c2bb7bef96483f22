"""AsyncStdlibTransport's HTTP/1.1 framing and connection reuse, against a raw scripted server.

The fault-injecting receiver tests (shared with httpx) are in test_guard_transport.py and the
async dispatcher tests; these check what only a hand-written client can get wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest

from chatmgmt.errors import DeliveryError
from chatmgmt.ports import HttpRequest
from chatmgmt.webhook import AsyncStdlibTransport, DeliveryTimeoutError, UrlGuard

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class RawServer:
    """Answers each request with the next scripted raw bytes; ``None`` closes the connection
    without answering. Records the raw requests and counts connections."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.script: list[bytes | None] = []
        self.default = OK
        self.requests: list[bytes] = []
        self.recv_sizes: list[int] = []
        self.connections = 0
        self.lock = threading.Lock()
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str = "/h") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    self.recv_sizes.append(len(data))
                    buf += data
                head, _, rest = buf.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(rest) < length:
                    rest += conn.recv(65536)
                with self.lock:
                    self.requests.append(head + b"\r\n\r\n" + rest[:length])
                    answer = self.script.pop(0) if self.script else self.default
                buf = rest[length:]
                if answer is None:
                    conn.close()
                    return
                conn.sendall(answer)
                if b"connection: close" in answer.lower() or answer.startswith(b"HTTP/1.0"):
                    conn.close()
                    return
        except OSError:
            return

    def drop_connections(self) -> None:
        with self.lock:
            for c in self.conns:
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)
                c.close()
            self.conns.clear()

    def close(self) -> None:
        self.sock.close()
        self.drop_connections()


@pytest.fixture
def raw() -> Iterator[RawServer]:
    s = RawServer()
    yield s
    s.close()


GUARD = UrlGuard(("127.0.0.1",), allow_http=True)


def req(url: str, timeout: float = 2.0, **headers: str) -> HttpRequest:
    return HttpRequest(url, b'{"a":1}', {"webhook-id": "msg_1", **headers}, timeout)


def run(coro_fn):  # type: ignore[no-untyped-def]
    return asyncio.run(coro_fn())


def test_request_is_one_write_with_host_and_length(raw: RawServer) -> None:
    async def main() -> None:
        t = AsyncStdlibTransport(GUARD)
        r = await t.send(req(raw.url("/in?x=1"), **{"Content-Length": "999", "X-Extra": "1"}))
        assert (r.status, r.body, r.headers["content-length"]) == (200, b"ok", "2")
        await t.aclose()

    run(main)
    [got] = raw.requests
    head, _, body = got.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /in?x=1 HTTP/1.1"
    assert f"Host: 127.0.0.1:{raw.port}".encode() in lines
    assert b"Content-Length: 7" in lines and b"Content-Length: 999" not in lines
    assert b"webhook-id: msg_1" in lines and b"X-Extra: 1" in lines
    assert body == b'{"a":1}'
    assert raw.recv_sizes == [len(got)]  # written in one piece


def test_keep_alive_reuses_one_connection_and_pools_concurrent_ones(raw: RawServer) -> None:
    async def main() -> None:
        t = AsyncStdlibTransport(GUARD, max_idle=4)
        for _ in range(20):
            assert (await t.send(req(raw.url()))).status == 200
        assert raw.connections == 1
        rs = await asyncio.gather(*(t.send(req(raw.url())) for _ in range(8)))
        assert {r.status for r in rs} == {200}
        assert raw.connections <= 8
        before = raw.connections
        rs = await asyncio.gather(*(t.send(req(raw.url())) for _ in range(4)))
        assert raw.connections == before  # the pool kept 4 idle connections
        await t.aclose()

    run(main)


def test_chunked_body_with_extensions_and_trailers(raw: RawServer) -> None:
    raw.script = [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
        OK,
    ]

    async def main() -> None:
        t = AsyncStdlibTransport(GUARD)
        r = await t.send(req(raw.url()))
        assert (r.status, r.body) == (200, b"hello world")
        assert (await t.send(req(raw.url()))).body == b"ok"
        assert raw.connections == 1  # the chunked response left the connection reusable
        await t.aclose()

    run(main)


def test_long_chunked_body_is_cut_to_20kb_and_the_connection_dropped(raw: RawServer) -> None:
    chunk = b"y" * 9000
    raw.script = [
        b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"".join(b"2328\r\n" + chunk + b"\r\n" for _ in range(4))
        + b"0\r\n\r\n",
        OK,
    ]

    async def main() -> None:
        t = AsyncStdlibTransport(GUARD)
        r = await t.send(req(raw.url()))
        assert (r.status, r.body) == (500, b"y" * 20_000)
        assert (await t.send(req(raw.url()))).body == b"ok"
        assert raw.connections == 2
        await t.aclose()

    run(main)


def test_interim_responses_close_delimited_and_http10(raw: RawServer) -> None:
    raw.script = [
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n" + OK,
        b"HTTP/1.1 202 Accepted\r\nConnection: close\r\n\r\nuntil the end",
        b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nold",
        b"HTTP/1.1 204 No Content\r\n\r\n",
        OK,
    ]

    async def main() -> None:
        t = AsyncStdlibTransport(GUARD)
        r = await t.send(req(raw.url()))
        assert (r.status, r.body) == (200, b"ok")
        r = await t.send(req(raw.url()))
        assert (r.status, r.body) == (202, b"until the end")
        r = await t.send(req(raw.url()))
        assert (r.status, r.body) == (200, b"old")
        r = await t.send(req(raw.url()))
        assert (r.status, r.body) == (204, b"")
        assert (await t.send(req(raw.url()))).status == 200
        assert raw.connections == 3  # closed after the close-delimited and HTTP/1.0 answers
        await t.aclose()

    run(main)


@pytest.mark.parametrize(
    "answer",
    [
        b"SMTP ready\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\nx",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nbad header line\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n",
        None,
    ],
)
def test_broken_answers_are_delivery_errors(raw: RawServer, answer: bytes | None) -> None:
    raw.script = [answer, OK]

    async def main() -> None:
        t = AsyncStdlibTransport(GUARD)
        with pytest.raises(DeliveryError) as info:
            await t.send(req(raw.url(), timeout=2.0))
        assert not isinstance(info.value, DeliveryTimeoutError)
        assert (await t.send(req(raw.url()))).body == b"ok"  # a fresh connection works
        await t.aclose()

    run(main)


@pytest.mark.parametrize(
    "answer", [b"HTTP/1.1 200 OK\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"]
)
def test_a_partial_answer_then_silence_is_a_timeout(raw: RawServer, answer: bytes) -> None:
    raw.script = [answer, OK]

    async def main() -> None:
        t = AsyncStdlibTransport(GUARD)
        with pytest.raises(DeliveryTimeoutError):
            await t.send(req(raw.url(), timeout=0.3))
        assert (await t.send(req(raw.url()))).body == b"ok"
        assert raw.connections == 2
        await t.aclose()

    run(main)


def test_a_connection_the_server_closed_is_not_reused(raw: RawServer) -> None:
    async def main() -> None:
        t = AsyncStdlibTransport(GUARD)
        assert (await t.send(req(raw.url()))).status == 200
        raw.drop_connections()
        await asyncio.sleep(0.05)  # the loop sees the FIN
        assert (await t.send(req(raw.url()))).status == 200
        assert raw.connections == 2
        await t.aclose()

    run(main)


def test_idle_timeout_and_a_new_event_loop(raw: RawServer) -> None:
    t = AsyncStdlibTransport(GUARD, idle_timeout_s=0.05)

    async def twice() -> None:
        assert (await t.send(req(raw.url()))).status == 200
        await asyncio.sleep(0.1)
        assert (await t.send(req(raw.url()))).status == 200

    asyncio.run(twice())
    assert raw.connections == 2
    asyncio.run(twice())  # the old loop's pool is dropped, not used
    assert raw.connections == 4


def test_bad_headers_and_targets_are_refused_before_sending(raw: RawServer) -> None:
    async def main() -> None:
        t = AsyncStdlibTransport(GUARD)
        with pytest.raises(DeliveryError):
            await t.send(req(raw.url(), **{"X-Evil": "a\r\nInjected: 1"}))
        with pytest.raises(DeliveryError):
            await t.send(req(raw.url(), **{"X-Name": "é\u2603"}))
        with pytest.raises(DeliveryError):
            await t.send(req(raw.url("/a b")))
        await t.aclose()

    run(main)
    assert raw.requests == []


def test_without_guard_and_with_unsafe_url() -> None:
    async def main() -> None:
        with pytest.raises(DeliveryError):
            await AsyncStdlibTransport().send(req("ftp://127.0.0.1/x"))

    run(main)
