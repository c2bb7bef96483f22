"""A raw scripted HTTP server on loopback, in a thread: answers each request with the next
scripted bytes, closes without answering (``None``) or drips an answer byte by byte (:class:`Drip`).
Records the raw requests and counts connections."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import attrs

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@attrs.frozen
class Drip:
    """Send ``data`` one byte every ``every_s`` seconds, then keep dripping ``tail`` forever
    (until the client goes away)."""

    data: bytes
    every_s: float = 0.05
    tail: bytes = b"x"


Answer = bytes | Drip | None


class RawServer:
    """See the module docstring."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.script: list[Answer] = []
        self.default: Answer = OK
        self.requests: list[bytes] = []
        self.connections = 0
        self.lock = threading.Lock()
        self.conns: list[socket.socket] = []
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str = "/h", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

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

    def _read_request(self, conn: socket.socket, buf: bytes) -> tuple[bytes, bytes] | None:
        while b"\r\n\r\n" not in buf:
            data = conn.recv(65536)
            if not data:
                return None
            buf += data
        head, _, rest = buf.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            rest += conn.recv(65536)
        return head + b"\r\n\r\n" + rest[:length], rest[length:]

    def _drip(self, conn: socket.socket, drip: Drip) -> None:
        for i in range(len(drip.data)):
            conn.sendall(drip.data[i : i + 1])
            time.sleep(drip.every_s)
        while not self.closed.is_set():
            conn.sendall(drip.tail)
            time.sleep(drip.every_s)

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        try:
            while True:
                got = self._read_request(conn, buf)
                if got is None:
                    return
                request, buf = got
                with self.lock:
                    self.requests.append(request)
                    answer = self.script.pop(0) if self.script else self.default
                if answer is None:
                    conn.close()
                    return
                if isinstance(answer, Drip):
                    self._drip(conn, answer)
                    return
                conn.sendall(answer)
                if b"connection: close" in answer.lower():
                    conn.close()
                    return
        except OSError:
            return

    def close(self) -> None:
        self.closed.set()
        self.sock.close()
        with self.lock:
            for c in self.conns:
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)
                c.close()
            self.conns.clear()
