"""The default sync transport: the standard library's ``http.client``.

Every transport of :mod:`chatmgmt.delivery` (this one, :mod:`._httpx`, :mod:`._aiohttp`) POSTs
one :class:`~chatmgmt.ports.HttpRequest`, never follows a redirect (a 3xx comes back as the
response), keeps at most the first 20 kB of the response body and raises
:class:`~chatmgmt.errors.DeliveryError` (:class:`DeliveryTimeoutError` for a timeout) when no
response came. With a :class:`~chatmgmt.delivery.UrlGuard` (the default built from settings by
the dispatchers) each request's URL is checked and resolved once, and the connection goes to the
checked address while the Host header and the TLS server name (SNI and certificate check) stay
the URL's host name.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from typing import Any

from ..errors import DeliveryError
from ..ports import RESPONSE_KEEP, HttpRequest, HttpResponse
from ..webhook import CheckedUrl, split_url
from ._deadline import Deadline, DeadlineSocket, deadline_for
from ._errors import DeliveryTimeoutError
from ._guard import UrlGuard

__all__ = ["UrllibTransport", "unchecked"]


def unchecked(url: str) -> CheckedUrl:
    """``url`` as a :class:`~chatmgmt.webhook.CheckedUrl` without any check (no guard: only
    for URLs you control); the host name is the address to connect to."""
    p = split_url(url)
    return CheckedUrl(url, p.scheme, p.host, p.port, p.host, p.target)


class _HTTPConnection(http.client.HTTPConnection):
    """A plain connection whose socket operations share the attempt's :class:`Deadline`."""

    deadline = Deadline()

    def connect(self) -> None:
        super().connect()
        self.sock = DeadlineSocket(self.sock, self.deadline)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """Connects to a given IP but verifies the certificate for the URL's host name; its socket
    operations share the attempt's :class:`Deadline`."""

    deadline = Deadline()

    def __init__(self, ip: str, port: int, server_hostname: str, **kwargs: Any) -> None:
        super().__init__(ip, port, **kwargs)
        self._server_hostname = server_hostname

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        ctx: ssl.SSLContext = self._context  # type: ignore[attr-defined]
        tls = ctx.wrap_socket(sock, server_hostname=self._server_hostname)
        self.sock = DeadlineSocket(tls, self.deadline)


_Conn = _HTTPConnection | _PinnedHTTPSConnection


def _headers(response_headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in response_headers.items()}


class UrllibTransport:
    """The default transport: the standard library (``http.client``, urllib's engine).

    Keeps one keep-alive connection per thread and target address; a timeout or error drops
    it. ``timeout_s`` is a total deadline for the attempt: every socket operation gets the time
    that is left. ``guard`` checks every URL (None: no check — only for URLs you control).
    """

    def __init__(
        self, guard: UrlGuard | None = None, *, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.guard = guard
        self._ssl = ssl_context or ssl.create_default_context()
        self._local = threading.local()

    def _conns(self) -> dict[tuple[str, str, int, str], _Conn]:
        conns: dict[tuple[str, str, int, str], _Conn] | None = getattr(self._local, "conns", None)
        if conns is None:
            conns = self._local.conns = {}
        return conns

    def send(self, request: HttpRequest) -> HttpResponse:
        """POST ``request``; see the module docstring."""
        checked = self.guard.check(request.url) if self.guard else unchecked(request.url)
        key = (checked.scheme, checked.ip, checked.port, checked.host)
        conns = self._conns()
        conn = conns.pop(key, None)
        deadline = deadline_for(request.timeout_s)
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
                conn = _HTTPConnection(checked.ip, checked.port, timeout=request.timeout_s)
        conn.timeout = request.timeout_s  # connecting: the deadline has all of it left
        conn.deadline = deadline
        if isinstance(conn.sock, DeadlineSocket):
            conn.sock.deadline = deadline
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
        except (OSError, http.client.HTTPException, ValueError) as exc:
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
