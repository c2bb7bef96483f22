"""The async transport on aiohttp (the ``aiohttp`` extra): the async dispatcher's default.

:class:`AiohttpTransport` follows the rules of every transport (see :mod:`._stdlib`) with a
client that others fuzz and maintain:

* **pinned to the checked address**: the URL guard resolves the host once (off the event loop)
  and checks every address; the connector's resolver is a pin table that answers only with the
  address the guard checked for that host and port and never resolves by itself, so a second
  DNS answer cannot swap it. The Host header, SNI and the certificate check keep the host name;
* **keep-alive**: connections are pooled per host, port and TLS settings; an idle connection
  is dropped after ``idle_timeout_s``;
* **bounded answers**: a status line or header line longer than ``max_line_size`` or a header
  field longer than ``max_field_size`` is a :class:`~chatmgmt.errors.DeliveryError`; at most the
  first 20 kB of the body is kept (a longer body is not drained: the connection is closed);
  bodies are not decompressed (no ``Accept-Encoding`` is sent);
* **a total deadline per attempt**: connect, TLS handshake, sending, the response head and the
  kept body all fit in ``request.timeout_s``, or the attempt is a
  :class:`~chatmgmt.delivery.DeliveryTimeoutError`;
* redirects are never followed (a 3xx is returned like any other response).

The session belongs to one event loop; used from another loop (a new ``asyncio.run``), the
transport drops the old loop's connections and opens a fresh session.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from ..errors import DeliveryError
from ..ports import RESPONSE_KEEP, HttpRequest, HttpResponse
from ..webhook import CheckedUrl
from ._errors import DeliveryTimeoutError
from ._guard import UrlGuard
from ._stdlib import unchecked
from ._within import within

__all__ = ["AiohttpTransport"]

_GUARD_CACHE_MAX = 1024
_PIN_MAX = 4096


class _PinnedResolver(AbstractResolver):
    """Answers with the address the guard checked for ``(host, port)``, and nothing else."""

    def __init__(self) -> None:
        self.pins: dict[tuple[str, int], str] = {}

    def pin(self, checked: CheckedUrl) -> None:
        if len(self.pins) >= _PIN_MAX:
            self.pins.clear()
        self.pins[(checked.host, checked.port)] = checked.ip

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        ip = self.pins.get((host.lower().rstrip("."), port))
        if ip is None:
            raise OSError(f"{host}:{port} was not checked by the URL guard")
        fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
        return [
            ResolveResult(
                hostname=host,
                host=ip,
                port=port,
                family=fam,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
        ]

    async def close(self) -> None:
        self.pins.clear()


def _abandon(session: aiohttp.ClientSession) -> None:
    """Close a session's sockets without its event loop (which may be closed already)."""
    connector = session.connector
    session.detach()
    close = getattr(connector, "_close", None)  # the synchronous part of connector.close()
    if close is not None:
        with contextlib.suppress(Exception):
            close()


def _url(checked: CheckedUrl) -> str:
    host = f"[{checked.host}]" if ":" in checked.host else checked.host
    return f"{checked.scheme}://{host}:{checked.port}{checked.target}"


class AiohttpTransport:
    """Async transport on ``aiohttp`` (see the module docstring).

    ``guard`` checks every URL (None: no check — only for URLs you control); ``ssl_context``
    verifies https receivers (default: the system's trust store); ``max_connections`` bounds
    the open connections (the dispatcher's per-endpoint ``max_concurrency`` bounds what is in
    flight); ``idle_timeout_s`` drops idle keep-alive connections (below the usual server
    keep-alive timeouts, e.g. 5 s for Node.js); ``max_line_size`` and ``max_field_size`` bound
    the response head.
    """

    def __init__(
        self,
        guard: UrlGuard | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = 256,
        idle_timeout_s: float = 4.0,
        max_line_size: int = 8190,
        max_field_size: int = 8190,
    ) -> None:
        self.guard = guard
        self._ssl = ssl_context
        self.max_connections = max_connections
        self.idle_timeout_s = idle_timeout_s
        self.max_line_size = max_line_size
        self.max_field_size = max_field_size
        self._session: aiohttp.ClientSession | None = None
        self._resolver: _PinnedResolver | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._checked: dict[str, CheckedUrl] = {}

    def __repr__(self) -> str:
        return f"AiohttpTransport(guard={self.guard!r})"

    async def _check(self, url: str) -> CheckedUrl:
        cached = self._checked.get(url)
        if cached is not None:
            return cached
        if self.guard is None:
            checked = unchecked(url)
        else:
            if self.guard.policy.parse(url).literal is None:
                # a host name: resolve (blocking getaddrinfo) off the loop, every time
                return await asyncio.to_thread(self.guard.check, url)
            checked = self.guard.check(url)
        # an IP-literal URL (or any URL without a guard) always checks the same way
        if len(self._checked) >= _GUARD_CACHE_MAX:
            self._checked.clear()
        self._checked[url] = checked
        return checked

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    def _drop_session(self) -> None:
        """Forget a session of another (usually finished) event loop, closing its sockets."""
        session, self._session = self._session, None
        if session is not None:
            _abandon(session)

    def _client(self) -> tuple[aiohttp.ClientSession, _PinnedResolver]:
        loop = asyncio.get_running_loop()
        if self._session is None or self._resolver is None or loop is not self._loop:
            self._drop_session()
            resolver = _PinnedResolver()
            connector = aiohttp.TCPConnector(
                resolver=resolver,
                use_dns_cache=False,
                limit=self.max_connections,
                keepalive_timeout=self.idle_timeout_s,
                ssl=self._ssl_context(),
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,
                skip_auto_headers=("Accept-Encoding",),
                max_line_size=self.max_line_size,
                max_field_size=self.max_field_size,
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
                timeout=aiohttp.ClientTimeout(total=None),  # the deadline is _within's
            )
            self._resolver = resolver
            self._loop = loop
        return self._session, self._resolver

    async def _exchange(self, checked: CheckedUrl, request: HttpRequest) -> HttpResponse:
        session, resolver = self._client()
        if checked.ip != checked.host:
            resolver.pin(checked)
        start = time.perf_counter()
        async with session.post(
            _url(checked),
            data=request.body,
            headers=request.headers,
            allow_redirects=False,
        ) as resp:
            body = b""
            while len(body) < RESPONSE_KEEP:
                chunk = await resp.content.read(RESPONSE_KEEP - len(body))
                if not chunk:
                    break
                body += chunk
            if not resp.content.at_eof():
                resp.close()  # a longer body is not drained: drop the connection
            status, headers = resp.status, {k.lower(): v for k, v in resp.headers.items()}
        return HttpResponse(status, headers, body, time.perf_counter() - start)

    async def send(self, request: HttpRequest) -> HttpResponse:
        """POST ``request``; see the module docstring."""
        checked = await self._check(request.url)
        try:
            return await within(self._exchange(checked, request), request.timeout_s)
        except (asyncio.TimeoutError, TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise DeliveryTimeoutError(f"no response within {request.timeout_s:g} s") from exc
        except aiohttp.ClientResponseError as exc:
            raise DeliveryError(f"invalid HTTP response: {exc.message or exc}") from exc
        except (aiohttp.ClientError, OSError, ssl.SSLError, ValueError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        """Close the connections (call it from the event loop that used the transport)."""
        session, self._session = self._session, None
        self._resolver = None
        if session is None:
            return
        if self._loop is asyncio.get_running_loop():
            await session.close()
        else:
            _abandon(session)
