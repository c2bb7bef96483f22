"""Transports over httpx (the ``httpx`` extra), sync and async; the rules are those of
:mod:`._stdlib`.

``timeout_s`` is a total deadline for the attempt. The async transport runs the exchange under
an asyncio timeout; the sync one gives its default client a network backend that hands every
socket operation the time left (:mod:`._deadline`). A client you pass in keeps httpx's
per-operation timeouts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import DeliveryError
from ..ports import RESPONSE_KEEP, HttpRequest, HttpResponse
from ..webhook import CheckedUrl
from ._deadline import DeadlineBackend, deadline_for, set_current
from ._errors import DeliveryTimeoutError
from ._guard import UrlGuard
from ._stdlib import unchecked
from ._within import within

if TYPE_CHECKING:
    import httpx

__all__ = ["AsyncHttpxTransport", "HttpxTransport"]


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


def _install_deadline(client: httpx.Client) -> None:
    """Give the client's connection pool a backend that applies the thread's deadline (httpcore
    keeps it as ``_network_backend``; without it, httpx's per-operation timeouts remain)."""
    pool = getattr(getattr(client, "_transport", None), "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if backend is not None and not isinstance(backend, DeadlineBackend):
        pool._network_backend = DeadlineBackend(backend)  # type: ignore[union-attr]


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
        if client is None:
            _install_deadline(self._client)

    def send(self, request: HttpRequest) -> HttpResponse:
        """POST ``request``; see the module docstring."""
        import httpx

        checked = self.guard.check(request.url) if self.guard else unchecked(request.url)
        url, headers, extensions = _httpx_target(checked, request)
        start = time.perf_counter()
        set_current(deadline_for(request.timeout_s))
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
        except (httpx.HTTPError, httpx.InvalidURL, ValueError, OSError) as exc:
            raise _timeout_error(exc, request) from exc
        finally:
            set_current(None)
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
            return unchecked(url)
        if self.guard.policy.parse(url).literal is None:
            # a host name: resolve (blocking getaddrinfo) off the loop
            return await asyncio.to_thread(self.guard.check, url)
        return self.guard.check(url)

    async def send(self, request: HttpRequest) -> HttpResponse:
        """POST ``request``; see the module docstring."""
        import httpx

        checked = await self._check(request.url)
        try:
            return await within(self._exchange(checked, request), request.timeout_s)
        except (asyncio.TimeoutError, TimeoutError) as exc:
            raise DeliveryTimeoutError(f"no response within {request.timeout_s:g} s") from exc
        except (httpx.HTTPError, httpx.InvalidURL, ValueError, OSError) as exc:
            raise _timeout_error(exc, request) from exc

    async def _exchange(self, checked: CheckedUrl, request: HttpRequest) -> HttpResponse:
        url, headers, extensions = _httpx_target(checked, request)
        start = time.perf_counter()
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
        return _response(resp.status_code, resp.headers, body[:RESPONSE_KEEP], start)

    async def aclose(self) -> None:
        """Close the client's connections."""
        await self._client.aclose()
