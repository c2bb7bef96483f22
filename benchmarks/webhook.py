"""Webhook benchmarks: signing throughput and delivery throughput to a loopback receiver.

Prints one JSON object per line: {"name", "value", "unit", "baseline", "ratio"}; ``ratio`` > 1
means we beat the baseline, which is measured in the same run on the same data.

* ``webhook.sign.per_s`` — events built with ``make_event``, serialized (compact JSON) and
  signed (Standard Webhooks headers) per second; baseline: the ``standardwebhooks`` package
  signing the same, already serialized bodies.
* ``webhook.deliver.per_s`` — deliveries per second through ``AsyncDispatcher`` with its
  transport without any extra (``ThreadedTransport(UrllibTransport)``: the standard library in
  worker threads, keep-alive, per-endpoint concurrency 16) to a loopback receiver running in
  another process; baseline: a naive loop POSTing each event with ``urllib.request`` (one
  connection per request, one at a time).
* ``webhook.deliver_aiohttp.per_s`` — the same through ``AiohttpTransport`` (the ``aiohttp``
  extra, the async default when installed), same baseline.
* ``webhook.deliver_httpx.per_s`` — the same through ``AsyncHttpxTransport`` (the ``httpx``
  extra), same baseline.
* ``webhook.deliver_ceiling.receiver_per_s`` — diagnostic: what the receiver process answers
  when driven by a bare asyncio client (16 keep-alive connections, pre-built requests, no
  dispatcher, no signing), baseline: the aiohttp dispatcher figure; ratio >> 1 means the receiver is
  not the bottleneck.
* ``webhook.deliver_ceiling.bare_aiohttp_per_s`` — diagnostic: a bare ``aiohttp`` client (one
  session, 16 concurrent POSTs of pre-built signed bodies, no dispatcher, no URL guard) against
  the same receiver; baseline: the aiohttp dispatcher figure. What the client library alone
  reaches here.
* ``webhook.deliver_ceiling.null_transport_per_s`` — diagnostic: the dispatcher and memory
  stores alone, with a transport that answers 204 without I/O; baseline: the aiohttp
  dispatcher figure.

Usage: ``python benchmarks/webhook.py [--quick] [--only sign|deliver]``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import multiprocessing as mp
import random
import statistics
import sys
import time
import urllib.request
from typing import Any

from chatmgmt.delivery import (
    AiohttpTransport,
    AsyncDispatcher,
    AsyncHttpxTransport,
    ThreadedTransport,
    UrlGuard,
    UrllibTransport,
)
from chatmgmt.ports import DeliveryStatus, HttpRequest, HttpResponse
from chatmgmt.settings import WebhookEndpoint, WebhookSettings
from chatmgmt.storage.memory import MemoryStorage
from chatmgmt.storage.memory_delivery import MemoryDeliveryStore
from chatmgmt.webhook import EventType, Signer, make_event, serialize

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
QUICK = "--quick" in sys.argv
ONLY = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else ""


def emit(name: str, value: float, unit: str, baseline: float) -> None:
    """Print one figure as a JSON line."""
    ratio = value / baseline if baseline else float("inf")
    print(
        json.dumps(
            {
                "name": name,
                "value": round(value, 1),
                "unit": unit,
                "baseline": round(baseline, 1),
                "ratio": round(ratio, 3),
            }
        ),
        flush=True,
    )


def _data(i: int) -> dict[str, Any]:
    return {
        "chat_id": f"c_{i % 97}",
        "channel": "web",
        "skill_group": "sales",
        "partner_id": f"u_{i}",
        "message_id": f"m_{i}",
        "role": "customer",
        "sender": f"u_{i}",
        "text": f"Hello, my order {i} is late, could you check?",
        "moderation": "none",
    }


# --------------------------------------------------------------------------- signing


def bench_sign() -> None:
    import standardwebhooks

    n = 5_000 if QUICK else 20_000
    datas = [_data(i) for i in range(n)]
    signer = Signer(SECRET)
    t0 = 1_764_000_000.0

    def ours() -> float:
        start = time.perf_counter()
        for i, data in enumerate(datas):
            event = make_event(
                f"evt_{i}",
                EventType.MESSAGE_CUSTOMER,
                t0 + i,
                data,
                chat_id=data["chat_id"],
                seq=i,
            )
            signer.headers(event.id, serialize(event), 1_764_000_000)
        return n / (time.perf_counter() - start)

    bodies = [
        serialize(
            make_event(f"evt_{i}", EventType.MESSAGE_CUSTOMER, t0 + i, d, chat_id=d["chat_id"])
        ).decode()
        for i, d in enumerate(datas)
    ]
    wh = standardwebhooks.Webhook(SECRET)
    when = dt.datetime.fromtimestamp(1_764_000_000, tz=dt.timezone.utc)

    def theirs() -> float:
        start = time.perf_counter()
        for i, body in enumerate(bodies):
            wh.sign(f"evt_{i}", when, body)
        return n / (time.perf_counter() - start)

    runs = 3 if QUICK else 5
    ours_runs, theirs_runs = [], []
    for _ in range(runs):
        ours_runs.append(ours())
        theirs_runs.append(theirs())
    emit(
        "webhook.sign.per_s",
        statistics.median(ours_runs),
        "events/s",
        statistics.median(theirs_runs),
    )


# --------------------------------------------------------------------------- delivery

_RESPONSE = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"


def _serve(port_q: Any, stop: Any) -> None:
    """A minimal keep-alive HTTP/1.1 receiver on asyncio (runs in its own process)."""

    class Proto(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.t = transport
            self.buf = b""

        def data_received(self, data: bytes) -> None:
            self.buf += data
            while True:
                head_end = self.buf.find(b"\r\n\r\n")
                if head_end < 0:
                    return
                head = self.buf[:head_end].lower()
                length = 0
                for line in head.split(b"\r\n"):
                    if line.startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                total = head_end + 4 + length
                if len(self.buf) < total:
                    return
                self.buf = self.buf[total:]
                self.t.write(_RESPONSE)
                if b"connection: close" in head:
                    self.t.close()
                    return

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Proto, "127.0.0.1", 0, backlog=1024)
        port_q.put(server.sockets[0].getsockname()[1])
        while not stop.is_set():
            await asyncio.sleep(0.05)
        server.close()

    asyncio.run(main())


def _events(n: int) -> list[Any]:
    return [
        make_event(
            f"evt_{i}",
            EventType.MESSAGE_CUSTOMER,
            1_764_000_000.0 + i,
            _data(i),
            chat_id=f"c_{i % 500}",
            seq=i,
        )
        for i in range(n)
    ]


class _NullTransport:
    """Answers 204 at once: measures the dispatcher and stores without any I/O."""

    async def send(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse(204, {}, b"", 0.0)

    async def aclose(self) -> None:
        pass


def _transport(kind: str, settings: WebhookSettings) -> Any:
    guard = UrlGuard.from_settings(settings)
    if kind == "httpx":
        return AsyncHttpxTransport(guard)
    if kind == "null":
        return _NullTransport()
    if kind == "aiohttp":
        return AiohttpTransport(guard)
    return ThreadedTransport(UrllibTransport(guard))


def deliver_ours(port: int, n: int, kind: str = "threaded") -> float:
    ep = WebhookEndpoint(
        id="bench",
        url=f"http://127.0.0.1:{port}/hook",
        secrets=(SECRET,),
        max_concurrency=16,
    )
    settings = WebhookSettings(
        endpoints=(ep,), allow_hosts=("127.0.0.1",), allow_http=True, timeout_s=10.0
    )
    storage = MemoryStorage()
    store = MemoryDeliveryStore()
    storage.outbox.append(_events(n))

    async def run() -> float:
        transport = _transport(kind, settings)
        d = AsyncDispatcher(
            storage.aio(),
            settings,
            store.aio(),
            transport,
            rng=random.Random(1),
            claim_limit=1000,
        )
        start = time.perf_counter()
        await d.run_once()
        elapsed = time.perf_counter() - start
        await transport.aclose()
        return elapsed

    elapsed = asyncio.run(run())
    delivered = len(store.deliveries("bench", DeliveryStatus.DELIVERED))
    assert delivered == n, f"only {delivered} of {n} delivered"
    return n / elapsed


def deliver_naive(port: int, n: int) -> float:
    signer = Signer(SECRET)
    events = _events(n)
    url = f"http://127.0.0.1:{port}/hook"
    start = time.perf_counter()
    for e in events:
        body = serialize(e)
        headers = signer.headers(e.id, body, int(time.time()))
        headers["content-type"] = "application/json"
        req = urllib.request.Request(url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()
    return n / (time.perf_counter() - start)


def receiver_ceiling(port: int, n: int, conns: int = 16) -> float:
    """Requests per second the receiver answers to a bare asyncio client (no dispatcher)."""
    signer = Signer(SECRET)
    reqs = []
    for e in _events(n):
        body = serialize(e)
        headers = signer.headers(e.id, body, 1_764_000_000)
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        reqs.append(
            (
                f"POST /hook HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{head}"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body
        )

    async def run() -> float:
        streams = [await asyncio.open_connection("127.0.0.1", port) for _ in range(conns)]
        it = iter(reqs)

        async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            for data in it:
                writer.write(data)
                await reader.readuntil(b"\r\n\r\n")  # 204, Content-Length: 0

        start = time.perf_counter()
        await asyncio.gather(*(worker(r, w) for r, w in streams))
        elapsed = time.perf_counter() - start
        for _, w in streams:
            w.close()
        return n / elapsed

    return asyncio.run(run())


def bare_aiohttp(port: int, n: int, conns: int = 16) -> float:
    """Requests per second of a bare aiohttp client (no dispatcher) against the receiver."""
    import aiohttp

    signer = Signer(SECRET)
    reqs = []
    for e in _events(n):
        body = serialize(e)
        headers = signer.headers(e.id, body, 1_764_000_000)
        headers["content-type"] = "application/json"
        reqs.append((body, headers))
    url = f"http://127.0.0.1:{port}/hook"

    async def run() -> float:
        connector = aiohttp.TCPConnector(limit=conns)
        async with aiohttp.ClientSession(connector=connector) as session:
            it = iter(reqs)

            async def worker() -> None:
                for body, headers in it:
                    async with session.post(url, data=body, headers=headers) as resp:
                        await resp.read()

            start = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(conns)))
            return n / (time.perf_counter() - start)

    return asyncio.run(run())


def bench_deliver() -> None:
    ctx = mp.get_context("spawn")
    port_q, stop = ctx.Queue(), ctx.Event()
    proc = ctx.Process(target=_serve, args=(port_q, stop), daemon=True)
    proc.start()
    try:
        port = port_q.get(timeout=30)
        n = 1_000 if QUICK else 4_000
        deliver_ours(port, 300)  # warm-up
        deliver_ours(port, 300, "aiohttp")
        deliver_naive(port, 100)
        deliver_ours(port, 300, "httpx")
        runs = 3 if QUICK else 5
        ours, aio, naive, httpx_, ceiling, null, bare = [], [], [], [], [], [], []
        for _ in range(runs):
            ours.append(deliver_ours(port, n // 2))
            aio.append(deliver_ours(port, n, "aiohttp"))
            naive.append(deliver_naive(port, n // 4))
            httpx_.append(deliver_ours(port, n // 4, "httpx"))
            ceiling.append(receiver_ceiling(port, n))
            null.append(deliver_ours(port, n, "null"))
            bare.append(bare_aiohttp(port, n))
        emit(
            "webhook.deliver.per_s",
            statistics.median(ours),
            "deliveries/s",
            statistics.median(naive),
        )
        mine = statistics.median(aio)
        emit("webhook.deliver_aiohttp.per_s", mine, "deliveries/s", statistics.median(naive))
        emit(
            "webhook.deliver_httpx.per_s",
            statistics.median(httpx_),
            "deliveries/s",
            statistics.median(naive),
        )
        emit(
            "webhook.deliver_ceiling.receiver_per_s",
            statistics.median(ceiling),
            "requests/s",
            mine,
        )
        emit(
            "webhook.deliver_ceiling.bare_aiohttp_per_s",
            statistics.median(bare),
            "requests/s",
            mine,
        )
        emit(
            "webhook.deliver_ceiling.null_transport_per_s",
            statistics.median(null),
            "deliveries/s",
            mine,
        )
    finally:
        stop.set()
        proc.join(5)
        if proc.is_alive():
            proc.terminate()


if __name__ == "__main__":
    if ONLY in ("", "sign"):
        bench_sign()
    if ONLY in ("", "deliver"):
        bench_deliver()
