"""HTTP transports for webhooks: stdlib (default) and httpx (sync and async, an extra).

The default async transport, :class:`~chatmgmt.webhook.AsyncStdlibTransport`, lives in
:mod:`._aio_http`; the same rules apply to it.

Every transport POSTs one :class:`~chatmgmt.ports.HttpRequest`, never follows a redirect
(a 3xx comes back as the response), keeps at most the first 20 kB of the response body and
raises :class:`~chatmgmt.errors.DeliveryError` (:class:`DeliveryTimeoutError` for a timeout)
when no response came. With a :class:`~chatmgmt.webhook.UrlGuard` (the default built from
settings by the dispatchers) each request's URL is checked and resolved once, and the
connection goes to the checked address while the Host header and the TLS server name (SNI and
certificate check) stay the URL's host name.
"""

from __future__ import annotations

import asyncio
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import DeliveryError
from ..ports import HttpRequest, HttpResponse
from ._guard import CheckedUrl, UrlGuard
from ._store import RESPONSE_KEEP

if TYPE_CHECKING:
    import httpx

__all__ = ["AsyncHttpxTransport", "DeliveryTimeoutError", "HttpxTransport", "UrllibTransport"]


class DeliveryTimeoutError(DeliveryError, TimeoutError):
    """The receiver did not answer within the request's timeout."""


def _unchecked(url: str) -> CheckedUrl:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryError(f"not an http(s) URL: {url!r}")
    port = parts.port or (443 if scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return CheckedUrl(url, scheme, parts.hostname, port, parts.hostname, target)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """Connects to a given IP but verifies the certificate for the URL's host name."""

    def __init__(self, ip: str, port: int, server_hostname: str, **kwargs: Any) -> None:
        super().__init__(ip, port, **kwargs)
        self._server_hostname = server_hostname

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        ctx: ssl.SSLContext = self._context  # type: ignore[attr-defined]
        self.sock = ctx.wrap_socket(sock, server_hostname=self._server_hostname)


def _headers(response_headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in response_headers.items()}


class UrllibTransport:
    """The default transport: the standard library (``http.client``, urllib's engine).

    Keeps one keep-alive connection per thread and target address; a timeout or error drops
    it. ``guard`` checks every URL (None: no check — only for URLs you control).
    """

    def __init__(
        self, guard: UrlGuard | None = None, *, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.guard = guard
        self._ssl = ssl_context or ssl.create_default_context()
        self._local = threading.local()

    def _conns(self) -> dict[tuple[str, str, int, str], http.client.HTTPConnection]:
        conns: dict[tuple[str, str, int, str], http.client.HTTPConnection] | None = getattr(
            self._local, "conns", None
        )
        if conns is None:
            conns = self._local.conns = {}
        return conns

    def send(self, request: HttpRequest) -> HttpResponse:
        """POST ``request``; see the module docstring."""
        checked = self.guard.check(request.url) if self.guard else _unchecked(request.url)
        key = (checked.scheme, checked.ip, checked.port, checked.host)
        conns = self._conns()
        conn = conns.pop(key, None)
        if conn is None:
            if checked.scheme == "https":
                conn = _PinnedHTTPSConnection(
                    checked.ip,
                    checked.port,
                    checked.host,
                    timeout=request.timeout_s,
                    context=self._ssl,
                )
            else:
                conn = http.client.HTTPConnection(
                    checked.ip, checked.port, timeout=request.timeout_s
                )
        conn.timeout = request.timeout_s
        if conn.sock is not None:
            conn.sock.settimeout(request.timeout_s)
        headers = dict(request.headers)
        headers["Host"] = checked.host_header
        headers["Content-Length"] = str(len(request.body))
        start = time.perf_counter()
        try:
            conn.request("POST", checked.target, body=request.body, headers=headers)
            resp = conn.getresponse()
            body = resp.read(RESPONSE_KEEP)
            rest = resp.length if resp.length is not None else (0 if resp.isclosed() else 1)
            reusable = not resp.will_close and rest == 0
            if not reusable:
                conn.close()
        except TimeoutError as exc:
            conn.close()
            raise DeliveryTimeoutError(f"no response within {request.timeout_s:g} s") from exc
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
        elapsed = time.perf_counter() - start
        if reusable:
            conns[key] = conn
        return HttpResponse(resp.status, _headers(resp.headers), body, elapsed)

    def close(self) -> None:
        """Close this thread's idle connections."""
        for conn in self._conns().values():
            conn.close()
        self._conns().clear()


def _httpx_target(
    checked: CheckedUrl, request: HttpRequest
) -> tuple[str, dict[str, str], dict[str, Any]]:
    headers = dict(request.headers)
    headers["host"] = checked.host_header
    extensions: dict[str, Any] = {}
    if checked.scheme == "https" and checked.ip != checked.host:
        extensions["sni_hostname"] = checked.host
    return checked.ip_url, headers, extensions


def _timeout_error(exc: BaseException, request: HttpRequest) -> DeliveryError:
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return DeliveryTimeoutError(f"no response within {request.timeout_s:g} s")
    return DeliveryError(f"{type(exc).__name__}: {exc}")


def _response(status: int, headers: Mapping[str, str], body: bytes, start: float) -> HttpResponse:
    return HttpResponse(
        status, {k.lower(): v for k, v in headers.items()}, body, time.perf_counter() - start
    )


class HttpxTransport:
    """Sync transport over ``httpx.Client`` (the ``httpx`` extra): pooled keep-alive
    connections, no redirects. Pass your own ``client`` to tune limits or TLS."""

    def __init__(self, guard: UrlGuard | None = None, client: httpx.Client | None = None) -> None:
        import httpx

        self.guard = guard
        self._client = client or httpx.Client(follow_redirects=False)

    def send(self, request: HttpRequest) -> HttpResponse:
        """POST ``request``; see the module docstring."""
        import httpx

        checked = self.guard.check(request.url) if self.guard else _unchecked(request.url)
        url, headers, extensions = _httpx_target(checked, request)
        start = time.perf_counter()
        try:
            req = self._client.build_request(
                "POST",
                url,
                content=request.body,
                headers=headers,
                extensions=extensions,
                timeout=request.timeout_s,
            )
            resp = self._client.send(req, stream=True, follow_redirects=False)
            try:
                body = b""
                for chunk in resp.iter_raw():
                    body += chunk
                    if len(body) >= RESPONSE_KEEP:
                        break
            finally:
                resp.close()
        except httpx.HTTPError as exc:
            raise _timeout_error(exc, request) from exc
        return _response(resp.status_code, resp.headers, body[:RESPONSE_KEEP], start)

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()


class AsyncHttpxTransport:
    """Async transport over ``httpx.AsyncClient`` (the ``httpx`` extra): pooled keep-alive
    connections, no redirects. Host names are resolved off the event loop."""

    def __init__(
        self, guard: UrlGuard | None = None, client: httpx.AsyncClient | None = None
    ) -> None:
        import httpx

        self.guard = guard
        self._client = client or httpx.AsyncClient(
            follow_redirects=False,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=100),
        )

    async def _check(self, url: str) -> CheckedUrl:
        if self.guard is None:
            return _unchecked(url)
        host = _unchecked(url).host
        try:
            import ipaddress

            ipaddress.ip_address(host)
        except ValueError:
            return await asyncio.to_thread(self.guard.check, url)
        return self.guard.check(url)

    async def send(self, request: HttpRequest) -> HttpResponse:
        """POST ``request``; see the module docstring."""
        import httpx

        checked = await self._check(request.url)
        url, headers, extensions = _httpx_target(checked, request)
        start = time.perf_counter()
        try:
            req = self._client.build_request(
                "POST",
                url,
                content=request.body,
                headers=headers,
                extensions=extensions,
                timeout=request.timeout_s,
            )
            resp = await self._client.send(req, stream=True, follow_redirects=False)
            try:
                body = b""
                async for chunk in resp.aiter_raw():
                    body += chunk
                    if len(body) >= RESPONSE_KEEP:
                        break
            finally:
                await resp.aclose()
        except httpx.HTTPError as exc:
            raise _timeout_error(exc, request) from exc
        return _response(resp.status_code, resp.headers, body[:RESPONSE_KEEP], start)

    async def aclose(self) -> None:
        """Close the client's connections."""
        await self._client.aclose()
