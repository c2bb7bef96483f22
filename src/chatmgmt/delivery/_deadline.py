"""A total deadline per attempt for the blocking transports.

Socket timeouts bound one read or write; a receiver that drips its answer a byte at a time
never trips them. A :class:`Deadline` is the attempt's end: every blocking socket operation of
the attempt gets the time that is left (and fails at once when none is), so connect, send,
response head and body together fit in the request's ``timeout_s``.

:class:`DeadlineSocket` applies it under ``http.client``; :class:`DeadlineBackend` under
httpcore (httpx's engine), reading the deadline of the calling thread.
"""

from __future__ import annotations

import io
import math
import socket
import threading
import time
from typing import Any

__all__ = [
    "Deadline",
    "DeadlineBackend",
    "DeadlineSocket",
    "current",
    "deadline_for",
    "set_current",
]


class Deadline:
    """The monotonic time an attempt must end by (``inf``: none)."""

    __slots__ = ("at",)

    def __init__(self, at: float = math.inf) -> None:
        self.at = at

    def left(self) -> float | None:
        """Seconds left (None: no deadline); raises :class:`TimeoutError` when none is."""
        if self.at == math.inf:
            return None
        left = self.at - time.monotonic()
        if left <= 0:
            raise TimeoutError("the attempt's deadline passed")
        return left


def deadline_for(timeout_s: float) -> Deadline:
    """A deadline ``timeout_s`` from now."""
    return Deadline(time.monotonic() + timeout_s)


class _Reader(io.RawIOBase):
    def __init__(self, sock: socket.socket, deadline: Deadline) -> None:
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self._sock.settimeout(self._deadline.left())
        return self._sock.recv_into(buffer)


class DeadlineSocket:
    """A socket whose sends and reads (through :meth:`makefile`) share ``deadline``; the rest
    is the wrapped socket's."""

    def __init__(self, sock: socket.socket, deadline: Deadline) -> None:
        self._sock = sock
        self.deadline = deadline

    def sendall(self, data: Any) -> None:
        """Send everything before the deadline."""
        self._sock.settimeout(self.deadline.left())
        self._sock.sendall(data)

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        """A buffered reader whose every read gets the time left."""
        return io.BufferedReader(_Reader(self._sock, self.deadline))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


_local = threading.local()


def current() -> Deadline:
    """The calling thread's deadline (set by the httpx transport around one attempt)."""
    deadline: Deadline | None = getattr(_local, "deadline", None)
    return deadline if deadline is not None else Deadline()


def set_current(deadline: Deadline | None) -> None:
    """Set (or clear, with None) the calling thread's deadline."""
    _local.deadline = deadline


def _clamp(timeout: float | None) -> float | None:
    left = current().left()
    if left is None:
        return timeout
    return left if timeout is None else min(timeout, left)


class _Stream:
    """An httpcore network stream whose operations get the calling thread's time left."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._read(max_bytes, timeout)

    def _read(self, max_bytes: int, timeout: float | None) -> bytes:
        import httpcore

        try:
            data: bytes = self._stream.read(max_bytes, _clamp(timeout))
        except TimeoutError as exc:
            raise httpcore.ReadTimeout(str(exc)) from exc
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        import httpcore

        try:
            self._stream.write(buffer, _clamp(timeout))
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(str(exc)) from exc

    def start_tls(self, *args: Any, **kwargs: Any) -> _Stream:
        return _Stream(self._stream.start_tls(*args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class DeadlineBackend:
    """An httpcore network backend (wrapping ``backend``) that applies :func:`current`."""

    def __init__(self, backend: Any) -> None:
        self._backend = backend

    def connect_tcp(self, *args: Any, **kwargs: Any) -> _Stream:
        import httpcore

        try:
            kwargs["timeout"] = _clamp(kwargs.get("timeout"))
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(str(exc)) from exc
        return _Stream(self._backend.connect_tcp(*args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)
