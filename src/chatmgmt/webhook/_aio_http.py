"""A small HTTP/1.1 client on asyncio streams: the default async webhook transport.

:class:`AsyncStdlibTransport` needs nothing outside the standard library. It does exactly what a
webhook POST needs and no more:

* one ``writer.write`` per request (request line, headers and body in one buffer);
* persistent keep-alive connections, pooled per ``(scheme, checked IP, port, host name)``; at
  most ``max_idle`` idle connections per target are kept, an idle connection older than
  ``idle_timeout_s`` or that the server has closed is never reused; a connection is reused
  only after a complete, well-framed response that did not ask to close it;
* responses framed by ``Content-Length``, ``Transfer-Encoding: chunked`` (trailers skipped) or
  the end of the connection; ``1xx`` interim responses skipped; at most the first 20 kB of
  the body is kept (a longer body is not drained: the connection is closed instead);
* a timeout over the whole exchange (connect, TLS handshake, write, response) with
  :func:`asyncio.wait_for`, raised as :class:`DeliveryTimeoutError`; any network or protocol
  failure raised as :class:`~chatmgmt.errors.DeliveryError`; the connection is dropped in
  both cases;
* redirects are never followed (a 3xx is returned like any other response);
* with a :class:`~chatmgmt.webhook.UrlGuard`, the connection goes to the address the guard
  checked, while the ``Host`` header and, for https, the TLS server name (SNI and the
  certificate check) stay the URL's host name.

A request whose connection fails is **not** retried by the transport (the dispatcher's retry
schedule does that, with the same ``webhook-id``), so a scripted fault is never masked.

The pool belongs to one event loop; used from another loop (a new ``asyncio.run``) the
transport drops the old loop's connections and starts a fresh pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import ssl
import time

from ..errors import DeliveryError
from ..ports import HttpRequest, HttpResponse
from ._guard import CheckedUrl, UrlGuard
from ._store import RESPONSE_KEEP
from ._transport import DeliveryTimeoutError, _unchecked

__all__ = ["AsyncStdlibTransport"]

_Key = tuple[str, str, int, str]
_SKIP_HEADERS = frozenset({"host", "content-length", "connection", "transfer-encoding"})
_BAD_TARGET = re.compile(r"[\x00-\x20\x7f]")
_BAD_HEADER = re.compile(r"[\r\n\x00]")
_NO_BODY = frozenset({204, 304})
_HEAD_LIMIT = 64 * 1024
_GUARD_CACHE_MAX = 1024


class _ProtocolError(Exception):
    """The server's answer is not valid HTTP/1.x."""


class _Conn:
    __slots__ = ("idle_since", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0

    def usable(self, now: float, idle_timeout_s: float) -> bool:
        reader = self.reader
        return not (
            self.writer.is_closing()
            or reader.at_eof()
            or reader.exception() is not None
            or now - self.idle_since > idle_timeout_s
        )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


def _encode_request(checked: CheckedUrl, request: HttpRequest) -> bytes:
    target = checked.target
    if _BAD_TARGET.search(target):
        raise DeliveryError("the URL's path contains control characters or spaces")
    lines = [f"POST {target} HTTP/1.1", f"Host: {checked.host_header}"]
    for name, value in request.headers.items():
        if name.lower() in _SKIP_HEADERS:
            continue
        if _BAD_HEADER.search(name) or _BAD_HEADER.search(value) or ":" in name:
            raise DeliveryError(f"invalid header {name!r}")
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(request.body)}")
    lines.append("\r\n")
    try:
        head = "\r\n".join(lines).encode("latin-1")
    except UnicodeEncodeError as exc:
        raise DeliveryError(f"a header is not latin-1: {exc}") from None
    return head + request.body


def _parse_head(raw: bytes) -> tuple[int, str, dict[str, str]]:
    """Status, HTTP version and lower-cased headers (repeated headers joined by ", ")."""
    text = raw.decode("latin-1")
    lines = text.split("\r\n")
    status_line = lines[0]
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise _ProtocolError(f"bad status line {status_line[:80]!r}")
    status = int(parts[1])
    if not 100 <= status <= 999:
        raise _ProtocolError(f"bad status {status}")
    headers: dict[str, str] = {}
    last = ""
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t" and last:  # obsolete line folding
            headers[last] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise _ProtocolError(f"bad header line {line[:80]!r}")
        last = name.lower()
        value = value.strip()
        headers[last] = f"{headers[last]}, {value}" if last in headers else value
    return status, parts[0], headers


async def _read_chunked(reader: asyncio.StreamReader) -> tuple[bytes, bool]:
    """The first RESPONSE_KEEP bytes of a chunked body; True if the body was read whole."""
    body = bytearray()
    while True:
        line = await reader.readuntil(b"\r\n")
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise _ProtocolError(f"bad chunk size {size_text[:20]!r}") from None
        if size < 0:
            raise _ProtocolError("negative chunk size")
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return bytes(body), True
        room = RESPONSE_KEEP - len(body)
        if size > room:
            body += await reader.readexactly(room)
            return bytes(body), False
        body += await reader.readexactly(size)
        if await reader.readexactly(2) != b"\r\n":
            raise _ProtocolError("chunk not followed by CRLF")


async def _read_response(
    reader: asyncio.StreamReader,
) -> tuple[int, dict[str, str], bytes, bool]:
    """Status, headers, the first 20 kB of the body, and whether the connection may be
    reused."""
    while True:
        raw = await reader.readuntil(b"\r\n\r\n")
        status, version, headers = _parse_head(raw[:-4])
        if 100 <= status < 200 and status != 101:
            continue  # interim response (100 Continue, 103 Early Hints)
        break
    conn_tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    reusable = "keep-alive" in conn_tokens if version == "HTTP/1.0" else "close" not in conn_tokens
    if status in _NO_BODY or status < 200:
        return status, headers, b"", reusable and status != 101
    te = headers.get("transfer-encoding")
    if te is not None:
        codings = [c.strip().lower() for c in te.split(",")]
        if codings[-1] == "chunked":
            body, whole = await _read_chunked(reader)
            # RFC 9112 6.3: a message with both TE and Content-Length: close afterwards
            return status, headers, body, reusable and whole and "content-length" not in headers
    else:
        cl = headers.get("content-length")
        if cl is not None:
            values = {v.strip() for v in cl.split(",")}
            if len(values) != 1 or not next(iter(values)).isdigit():
                raise _ProtocolError(f"bad Content-Length {cl[:40]!r}")
            length = int(next(iter(values)))
            if length > RESPONSE_KEEP:
                return status, headers, await reader.readexactly(RESPONSE_KEEP), False
            return status, headers, await reader.readexactly(length), reusable
    # delimited by the end of the connection
    rest = bytearray()
    while len(rest) < RESPONSE_KEEP:
        chunk = await reader.read(RESPONSE_KEEP - len(rest))
        if not chunk:
            break
        rest += chunk
    return status, headers, bytes(rest), False


class AsyncStdlibTransport:
    """Async transport on asyncio streams (standard library only); see the module docstring.

    ``guard`` checks every URL (None: no check — only for URLs you control); ``ssl_context``
    verifies https receivers (default: the system's trust store); ``max_idle`` idle
    keep-alive connections are kept per target; an idle connection is not reused after
    ``idle_timeout_s`` (below the usual server keep-alive timeouts, e.g. 5 s for Node.js).
    """

    def __init__(
        self,
        guard: UrlGuard | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_idle: int = 32,
        idle_timeout_s: float = 4.0,
    ) -> None:
        self.guard = guard
        self._ssl = ssl_context
        self.max_idle = max_idle
        self.idle_timeout_s = idle_timeout_s
        self._idle: dict[_Key, list[_Conn]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._checked: dict[str, CheckedUrl] = {}

    def __repr__(self) -> str:
        return f"AsyncStdlibTransport(guard={self.guard!r}, max_idle={self.max_idle})"

    # ------------------------------------------------------------------ helpers

    async def _check(self, url: str) -> CheckedUrl:
        cached = self._checked.get(url)
        if cached is not None:
            return cached
        if self.guard is None:
            checked = _unchecked(url)
        else:
            host = _unchecked(url).host
            try:
                ipaddress.ip_address(host)
            except ValueError:
                # a host name: resolve (blocking getaddrinfo) off the loop, every time
                return await asyncio.to_thread(self.guard.check, url)
            checked = self.guard.check(url)
        # an IP-literal URL always checks the same way: remember the answer
        if len(self._checked) >= _GUARD_CACHE_MAX:
            self._checked.clear()
        self._checked[url] = checked
        return checked

    def _pool(self) -> dict[_Key, list[_Conn]]:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            for conns in self._idle.values():
                for conn in conns:
                    conn.close()
            self._idle = {}
            self._loop = loop
        return self._idle

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    async def _connect(self, key: _Key, checked: CheckedUrl) -> _Conn:
        pool = self._pool()
        idle = pool.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if conn.usable(now, self.idle_timeout_s):
                return conn
            conn.close()
        if checked.scheme == "https":
            reader, writer = await asyncio.open_connection(
                checked.ip,
                checked.port,
                ssl=self._ssl_context(),
                server_hostname=checked.host,
                limit=_HEAD_LIMIT,
            )
        else:
            reader, writer = await asyncio.open_connection(
                checked.ip, checked.port, limit=_HEAD_LIMIT
            )
        return _Conn(reader, writer)

    def _release(self, key: _Key, conn: _Conn) -> None:
        pool = self._pool()
        idle = pool.get(key)
        if idle is None:
            idle = pool[key] = []
        if len(idle) >= self.max_idle:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)

    async def _exchange(self, key: _Key, checked: CheckedUrl, data: bytes) -> HttpResponse:
        start = time.perf_counter()
        conn = await self._connect(key, checked)
        try:
            conn.writer.write(data)
            status, headers, body, reusable = await _read_response(conn.reader)
        except BaseException:
            conn.close()
            raise
        elapsed = time.perf_counter() - start
        if reusable:
            self._release(key, conn)
        else:
            conn.close()
        return HttpResponse(status, headers, body, elapsed)

    # ------------------------------------------------------------------ the port

    async def send(self, request: HttpRequest) -> HttpResponse:
        """POST ``request``; see the module docstring."""
        checked = await self._check(request.url)
        data = _encode_request(checked, request)
        key = (checked.scheme, checked.ip, checked.port, checked.host)
        try:
            return await asyncio.wait_for(self._exchange(key, checked, data), request.timeout_s)
        except asyncio.TimeoutError as exc:
            raise DeliveryTimeoutError(f"no response within {request.timeout_s:g} s") from exc
        except asyncio.IncompleteReadError as exc:
            raise DeliveryError(
                f"connection closed after {len(exc.partial)} bytes of the response"
            ) from exc
        except asyncio.LimitOverrunError as exc:
            raise DeliveryError("response head too long") from exc
        except _ProtocolError as exc:
            raise DeliveryError(f"invalid HTTP response: {exc}") from exc
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        """Close the idle connections (those of the current event loop are awaited)."""
        pool, self._idle = self._idle, {}
        same_loop = self._loop is not None and self._loop is asyncio.get_running_loop()
        for conns in pool.values():
            for conn in conns:
                conn.close()
                if same_loop:
                    with contextlib.suppress(Exception):
                        await conn.writer.wait_closed()
