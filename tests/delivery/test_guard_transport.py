"""The URL guard (no network) and the transports against loopback servers (http and https)."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from chatmgmt.delivery import (
    AiohttpTransport,
    AsyncHttpxTransport,
    DeliveryTimeoutError,
    HttpxTransport,
    UrlGuard,
    UrllibTransport,
    check_url,
)
from chatmgmt.errors import DeliveryError, UnsafeURLError
from chatmgmt.ports import HttpRequest
from chatmgmt.settings import WebhookSettings
from webhook.webhook_helpers import Receiver

PUBLIC = "93.184.215.14"


def resolver_for(mapping: dict[str, Sequence[str]], calls: list[str] | None = None) -> Any:
    def resolve(host: str, port: int) -> Sequence[str]:
        if calls is not None:
            calls.append(host)
        return mapping[host]

    return resolve


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/h",
        "http://10.1.2.3/h",
        "http://172.16.0.1/h",
        "http://192.168.1.1/h",
        "http://169.254.169.254/latest/meta-data",
        "http://169.254.170.2/v2/credentials",
        "http://100.64.0.1/h",
        "http://100.127.255.254/h",
        "http://0.0.0.0/h",
        "http://224.0.0.1/h",
        "http://240.0.0.1/h",
        "http://255.255.255.255/h",
        "http://[::1]/h",
        "http://[::]/h",
        "http://[fc00::1]/h",
        "http://[fd12:3456::1]/h",
        "http://[fe80::1]/h",
        "http://[ff02::1]/h",
        "http://[::ffff:127.0.0.1]/h",
        "http://[::ffff:169.254.169.254]/h",
        "http://[::ffff:10.0.0.1]/h",
        "http://[64:ff9b::a9fe:a9fe]/h",
        "http://[2002:7f00:1::1]/h",
        "http://2130706433/h",
        "http://0x7f000001/h",
        "http://0x7f.0.0.1/h",
        "http://0177.0.0.1/h",
        "http://017700000001/h",
        "http://127.1/h",
        "http://10.1/h",
        "http://1.2.3.0x4/h",
    ],
)
def test_refused_addresses_and_literals(url: str) -> None:
    with pytest.raises(UnsafeURLError):
        check_url(url, allow_http=True)
    with pytest.raises(UnsafeURLError):
        check_url(url.replace("http://", "https://"))


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/h",
        "file:///etc/passwd",
        "gopher://example.com/",
        "https://user:pass@example.com/h",
        "https:///nohost",
        "https://exa mple.com/h",
        "https://example.com:99999/h",
    ],
)
def test_refused_shapes(url: str) -> None:
    with pytest.raises(UnsafeURLError):
        check_url(url, resolver=resolver_for({"example.com": [PUBLIC]}))


def test_https_only_unless_allowed() -> None:
    with pytest.raises(UnsafeURLError, match="http"):
        check_url(f"http://{PUBLIC}/h")
    assert check_url(f"http://{PUBLIC}/h", allow_http=True).ip == PUBLIC
    assert check_url(f"https://{PUBLIC}/h").port == 443


def test_resolves_once_and_pins_the_address() -> None:
    calls: list[str] = []
    guard = UrlGuard(resolver=resolver_for({"hooks.example.com": [PUBLIC]}, calls))
    checked = guard.check("https://Hooks.Example.com:8443/in?x=1")
    assert calls == ["hooks.example.com"]
    assert (checked.host, checked.ip, checked.port, checked.target) == (
        "hooks.example.com",
        PUBLIC,
        8443,
        "/in?x=1",
    )
    assert checked.host_header == "hooks.example.com:8443"
    assert checked.ip_url == f"https://{PUBLIC}:8443/in?x=1"


@pytest.mark.parametrize(
    "answers",
    [
        ["10.0.0.5"],
        ["169.254.169.254"],
        [PUBLIC, "127.0.0.1"],  # any bad answer refuses the host
        ["::ffff:192.168.0.1"],
        ["fd00::1"],
    ],
)
def test_names_resolving_to_private_addresses_are_refused(answers: list[str]) -> None:
    guard = UrlGuard(resolver=resolver_for({"evil.example.com": answers}))
    with pytest.raises(UnsafeURLError, match="resolves to"):
        guard.check("https://evil.example.com/h")


def test_allow_list_by_network_and_by_name() -> None:
    resolve = resolver_for({"crm.internal": ["10.0.0.7"], "other.internal": ["10.9.0.1"]})
    guard = UrlGuard(("10.0.0.0/24", "127.0.0.1", "other.internal"), resolver=resolve)
    assert guard.check("https://crm.internal/h").ip == "10.0.0.7"
    assert guard.check("https://other.internal/h").ip == "10.9.0.1"
    assert guard.check("https://127.0.0.1:8080/h").ip == "127.0.0.1"
    with pytest.raises(UnsafeURLError):
        guard.check("https://127.0.0.2/h")
    with pytest.raises(UnsafeURLError):  # ambiguous literals stay refused
        guard.check("https://2130706433/h")


def test_guard_from_settings() -> None:
    s = WebhookSettings(allow_hosts=("127.0.0.1/32",), allow_http=True)
    guard = UrlGuard.from_settings(s)
    assert guard.check("http://127.0.0.1:1/h").ip == "127.0.0.1"


# --------------------------------------------------------------------------- transports


def _req(url: str, timeout: float = 2.0) -> HttpRequest:
    return HttpRequest(url, b'{"a":1}', {"webhook-id": "msg_1"}, timeout)


def test_urllib_transport_connects_to_the_checked_address(receiver: Receiver) -> None:
    calls: list[str] = []
    guard = UrlGuard(
        ("127.0.0.1/32",),
        allow_http=True,
        resolver=resolver_for({"hooks.example.test": ["127.0.0.1"]}, calls),
    )
    t = UrllibTransport(guard)
    for _ in range(3):
        resp = t.send(_req(f"http://hooks.example.test:{receiver.port}/hook"))
        assert resp.status == 200
    assert calls == ["hooks.example.test"] * 3  # resolved once per request, by the guard
    got = receiver.by_path("/hook")
    assert got[0].headers["host"] == f"hooks.example.test:{receiver.port}"
    assert got[0].body == b'{"a":1}'
    t.close()


def test_transports_refuse_unsafe_urls_before_connecting(receiver: Receiver) -> None:
    guard = UrlGuard(allow_http=True)
    with pytest.raises(UnsafeURLError):
        UrllibTransport(guard).send(_req(receiver.url()))
    with pytest.raises(UnsafeURLError):
        HttpxTransport(guard).send(_req(receiver.url()))
    with pytest.raises(UnsafeURLError):
        asyncio.run(AsyncHttpxTransport(guard).send(_req(receiver.url())))
    with pytest.raises(UnsafeURLError):
        asyncio.run(AiohttpTransport(guard).send(_req(receiver.url())))
    assert receiver.requests == []


def _all_sync(guard: UrlGuard) -> list[Any]:
    return [UrllibTransport(guard), HttpxTransport(guard)]


@pytest.mark.parametrize("kind", ["urllib", "httpx"])
def test_sync_transports_faults(receiver: Receiver, kind: str) -> None:
    guard = UrlGuard(("127.0.0.1",), allow_http=True)
    t = UrllibTransport(guard) if kind == "urllib" else HttpxTransport(guard)
    receiver.script("/hook", ["302", "big", "429:3", "timeout", "reset", "200"])
    r = t.send(_req(receiver.url()))
    assert r.status == 302 and r.headers["location"] == "/redirected"
    r = t.send(_req(receiver.url()))
    assert r.status == 200 and len(r.body) == 20_000
    r = t.send(_req(receiver.url()))
    assert r.status == 429 and r.headers["retry-after"] == "3"
    with pytest.raises(DeliveryTimeoutError):
        t.send(_req(receiver.url(), timeout=0.3))
    with pytest.raises(DeliveryError):
        t.send(_req(receiver.url()))
    assert t.send(_req(receiver.url())).status == 200
    assert receiver.by_path("/redirected") == []


def async_transport(kind: str, guard: UrlGuard | None) -> Any:
    return AsyncHttpxTransport(guard) if kind == "httpx" else AiohttpTransport(guard)


@pytest.mark.parametrize("kind", ["stdlib", "httpx"])
def test_async_transport_faults(receiver: Receiver, kind: str) -> None:
    guard = UrlGuard(("127.0.0.1",), allow_http=True)

    async def main() -> None:
        t = async_transport(kind, guard)
        receiver.script(
            "/hook", ["302", "big", "429:3", "500big", "timeout", "reset", "slow:0.05", "200"]
        )
        r = await t.send(_req(receiver.url()))
        assert r.status == 302 and r.headers["location"] == "/redirected"
        r = await t.send(_req(receiver.url()))
        assert r.status == 200 and r.body == b"x" * 20_000
        r = await t.send(_req(receiver.url()))
        assert r.status == 429 and r.headers["retry-after"] == "3" and r.body == b"slow down"
        r = await t.send(_req(receiver.url()))
        assert r.status == 500 and r.body == b"e" * 20_000
        with pytest.raises(DeliveryTimeoutError):
            await t.send(_req(receiver.url(), timeout=0.3))
        with pytest.raises(DeliveryError):
            await t.send(_req(receiver.url()))
        assert (await t.send(_req(receiver.url()))).status == 200
        assert (await t.send(_req(receiver.url()))).status == 200
        await t.aclose()

    asyncio.run(main())
    assert receiver.by_path("/redirected") == []


def test_connection_refused_is_a_delivery_error() -> None:
    guard = UrlGuard(("127.0.0.1",), allow_http=True)
    with pytest.raises(DeliveryError):
        UrllibTransport(guard).send(_req("http://127.0.0.1:9/h", timeout=1))
    with pytest.raises(DeliveryError):
        asyncio.run(AiohttpTransport(guard).send(_req("http://127.0.0.1:9/h", timeout=1)))


# --------------------------------------------------------------------------- https pinning


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=hooks.example.test", "-addext",
            "subjectAltName=DNS:hooks.example.test",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", "0")))
            body = self.headers.get("host", "").encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    yield server.server_address[1], cert
    server.shutdown()
    server.server_close()


def _tls_guard(name: str) -> UrlGuard:
    return UrlGuard(("127.0.0.1",), resolver=resolver_for({name: ["127.0.0.1"]}))


def test_https_connects_to_ip_and_verifies_the_host_name(tls_server: tuple[int, Path]) -> None:
    port, cert = tls_server
    ctx = ssl.create_default_context(cafile=str(cert))
    url = f"https://hooks.example.test:{port}/h"
    resp = UrllibTransport(_tls_guard("hooks.example.test"), ssl_context=ctx).send(_req(url))
    assert resp.status == 200 and resp.body == f"hooks.example.test:{port}".encode()
    import httpx

    client = httpx.Client(verify=ctx)
    resp = HttpxTransport(_tls_guard("hooks.example.test"), client).send(_req(url))
    assert resp.status == 200 and resp.body == f"hooks.example.test:{port}".encode()

    async def main() -> bytes:
        t = AsyncHttpxTransport(_tls_guard("hooks.example.test"), httpx.AsyncClient(verify=ctx))
        try:
            return (await t.send(_req(url))).body
        finally:
            await t.aclose()

    assert asyncio.run(main()) == f"hooks.example.test:{port}".encode()

    async def stdlib() -> list[bytes]:
        t = AiohttpTransport(_tls_guard("hooks.example.test"), ssl_context=ctx)
        try:
            return [(await t.send(_req(url))).body for _ in range(3)]
        finally:
            await t.aclose()

    assert asyncio.run(stdlib()) == [f"hooks.example.test:{port}".encode()] * 3


def test_https_wrong_host_name_fails_verification(tls_server: tuple[int, Path]) -> None:
    port, cert = tls_server
    ctx = ssl.create_default_context(cafile=str(cert))
    url = f"https://wrong.example.test:{port}/h"
    with pytest.raises(DeliveryError):
        UrllibTransport(_tls_guard("wrong.example.test"), ssl_context=ctx).send(_req(url))
    import httpx

    with pytest.raises(DeliveryError):
        HttpxTransport(_tls_guard("wrong.example.test"), httpx.Client(verify=ctx)).send(_req(url))

    t = AiohttpTransport(_tls_guard("wrong.example.test"), ssl_context=ctx)
    with pytest.raises(DeliveryError, match="certificate"):
        asyncio.run(t.send(_req(url)))
    # and the default context does not trust the self-signed certificate at all
    t = AiohttpTransport(_tls_guard("hooks.example.test"))
    with pytest.raises(DeliveryError):
        asyncio.run(t.send(_req(f"https://hooks.example.test:{port}/h")))
