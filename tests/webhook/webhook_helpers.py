"""Helpers for the webhook tests: a real, fault-injecting HTTP receiver, settings, events."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs

from chatmgmt.model import Event
from chatmgmt.settings import WebhookEndpoint, WebhookSettings
from chatmgmt.webhook import EventType, make_event

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SECRET2 = "whsec_c2Vjb25kLXNlY3JldC1mb3Itcm90YXRpb24tdGVzdHM="


@attrs.define
class Received:
    """One request the receiver got, and what it answered (``"timeout"``/``"reset"``: none)."""

    path: str
    headers: dict[str, str]
    body: bytes
    answer: str
    at: float

    @property
    def msg_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def accepted(self) -> bool:
        return self.answer.startswith(("2", "slow:")) or self.answer == "big"

    def json(self) -> Any:
        return json.loads(self.body)


Fault = str
"""One behaviour: "200", "500", "410", "302", "429:<retry-after>", "timeout", "reset",
"slow:<seconds>" (then 200), "big" (200 with a 30 kB body)."""


class Receiver:
    """A threaded HTTP server on loopback that records requests and injects scripted faults."""

    def __init__(self, hang_s: float = 1.5) -> None:
        self.requests: list[Received] = []
        self.lock = threading.Lock()
        self.scripts: dict[str, list[Fault]] = {}
        self.default: dict[str, Fault | Callable[[Received], Fault]] = {}
        self.hang_s = hang_s
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                rec = Received(
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    "",
                    time.monotonic(),
                )
                fault = receiver._next_fault(rec)
                rec.answer = fault
                with receiver.lock:
                    receiver.requests.append(rec)
                receiver._act(self, fault)

            def finish(self) -> None:
                with contextlib.suppress(OSError):
                    super().finish()

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            # socketserver's default backlog (5) overflows when several dispatchers send at
            # once on a loaded machine: connections reset before a request is read
            request_queue_size = 128

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, faults: list[Fault]) -> None:
        with self.lock:
            self.scripts.setdefault(path, []).extend(faults)

    def _next_fault(self, rec: Received) -> Fault:
        with self.lock:
            queue = self.scripts.get(rec.path)
            if queue:
                return queue.pop(0)
            default = self.default.get(rec.path, "200")
        return default(rec) if callable(default) else default

    def _act(self, h: BaseHTTPRequestHandler, fault: Fault) -> None:
        def reply(status: int, body: bytes = b"ok", headers: dict[str, str] | None = None) -> None:
            h.send_response(status)
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.send_header("content-length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)

        if fault == "timeout":
            time.sleep(self.hang_s)
            h.close_connection = True
            return
        if fault == "reset":
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.connection.close()
            h.close_connection = True
            return
        if fault.startswith("slow:"):
            time.sleep(float(fault.split(":", 1)[1]))
            reply(200)
            return
        if fault.startswith("429"):
            _, _, after = fault.partition(":")
            reply(429, b"slow down", {"retry-after": after} if after else {})
            return
        if fault == "302":
            reply(302, b"", {"location": "/redirected"})
            return
        if fault == "big":
            reply(200, b"x" * 30_000)
            return
        if fault == "500big":
            reply(500, b"e" * 30_000)
            return
        reply(int(fault), f"answer {fault}".encode())

    def by_path(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def accepted_ids(self, path: str = "/hook") -> list[str]:
        return [r.msg_id for r in self.by_path(path) if r.accepted]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


FAST_SCHEDULE = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0)


def settings_for(*endpoints: WebhookEndpoint, **kw: Any) -> WebhookSettings:
    """Test settings: loopback allowed, plain http allowed, short timeouts and delays."""
    base: dict[str, Any] = {
        "retry_schedule_s": FAST_SCHEDULE,
        "jitter": 0.1,
        "timeout_s": 0.5,
        "min_retry_after_error_s": 5.0,
        "disable_after_s": 10_000.0,
        "allow_hosts": ("127.0.0.1/32",),
        "allow_http": True,
    }
    base.update(kw)
    return WebhookSettings(endpoints=tuple(endpoints), **base)


def endpoint(receiver: Receiver, path: str = "/hook", **kw: Any) -> WebhookEndpoint:
    kw.setdefault("secrets", (SECRET,))
    kw.setdefault("id", path.strip("/") or "root")
    return WebhookEndpoint(url=receiver.url(path), **kw)


_MSG = {
    "chat_id": "c_1",
    "channel": "web",
    "skill_group": "",
    "partner_id": "u_1",
    "message_id": "m_1",
    "role": "customer",
    "sender": "u_1",
    "text": "hello",
    "moderation": "none",
}


def message_event(
    n: int, chat: str = "c_1", seq: int | None = None, type_: str = EventType.MESSAGE_CUSTOMER
) -> Event:
    """A message event number ``n`` of ``chat``."""
    data = {**_MSG, "chat_id": chat, "message_id": f"m_{n}", "text": f"message {n}"}
    return make_event(
        f"evt_{chat}_{n:04d}",
        type_,
        1_764_000_000.0 + n,
        data,
        chat_id=chat,
        seq=n if seq is None else seq,
    )
