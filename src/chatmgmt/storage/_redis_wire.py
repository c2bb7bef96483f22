"""The sync Redis driver's short path: commands straight over a connection it keeps.

redis-py's ``Redis.execute_command`` spends ~30 µs of client CPU per command on what a storage
call does not use (a pool checkout with a readiness poll, retry wrapping, observability
records, response-callback lookup). For a plain single-server ``redis.Redis`` client with the
default ``ConnectionPool`` and no client-side cache, :class:`Wire` keeps its own idle
connections — made and connected by the pool's own connection class and arguments, so
address, credentials, database, TLS, protocol and timeouts are those of the client — and
writes a command and reads its reply on one of them itself (:func:`pack`, :class:`_Reader`:
RESP2 and RESP3; every bulk string stays ``bytes``, which the adapter reads either way).

What is kept: errors. A Redis error reply (a refused script, a data-version refusal, NOSCRIPT)
is raised as the client would raise it, and the connection stays usable. A connection that
fails (closed by the server, timed out, reset) is dropped and the same command goes through
``execute_command`` instead, which reconnects and retries by the client's own retry policy,
exactly as it would have without this path. Any other client (a cluster, a Sentinel or
blocking pool, a single-connection client, a client-side cache) never takes the short path.

Threads: a connection is taken from the idle list and put back after one command (``list.pop``
and ``append`` are atomic), so concurrent threads never share one. In a forked child every
wire forgets the parent's connections without closing them (``os.register_at_fork``).
"""

from __future__ import annotations

import os
import weakref
from typing import Any

__all__ = ["Wire", "pack", "wire_for"]


_BULK = [b"$%d\r\n" % n for n in range(2048)]
"""The RESP bulk-string header of each length below 2,048."""


def pack(args: tuple[Any, ...]) -> bytes:
    """One command in RESP: text as UTF-8, ints and floats as their decimal text (each
    argument joined as it is, between its header and CRLF: copied once)."""
    out = [b"*%d\r\n" % len(args)]
    extend = out.extend
    for arg in args:
        kind = type(arg)
        if kind is str:
            data = arg.encode("utf-8")
        elif kind is bytes:
            data = arg
        elif kind is int:
            data = b"%d" % arg
        elif isinstance(arg, str):
            data = arg.encode("utf-8")
        elif isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, int) and not isinstance(arg, bool):
            data = b"%d" % arg
        elif isinstance(arg, float):
            data = repr(arg).encode()
        else:
            raise TypeError(f"a Redis command argument must be str, bytes, int or float: {arg!r}")
        n = len(data)
        extend((_BULK[n] if n < 2048 else b"$%d\r\n" % n, data, b"\r\n"))
    return b"".join(out)


class _ErrorReply(Exception):
    """An error reply inside an array (a script's error table), like redis-py returns it."""


class _Reader:
    """Replies read from one socket: RESP2 and RESP3 types; push frames are skipped."""

    def __init__(self, sock: Any, parse_error: Any) -> None:
        self.sock = sock
        self.parse_error = parse_error
        self.buf = b""
        self.pos = 0

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the Redis server closed the connection")
        self.buf = self.buf[self.pos :] + data
        self.pos = 0

    def _line(self) -> bytes:
        while (end := self.buf.find(b"\r\n", self.pos)) < 0:
            self._fill()
        line = self.buf[self.pos : end]
        self.pos = end + 2
        return line

    def _exact(self, n: int) -> bytes:
        while len(self.buf) - self.pos < n + 2:
            self._fill()
        data = self.buf[self.pos : self.pos + n]
        self.pos += n + 2
        return data

    def reply(self) -> Any:
        """The next reply (an error reply at the top is raised as redis-py raises it)."""
        if self.pos >= len(self.buf):  # (received first: the common replies read straight)
            self._fill()
        while True:
            value = self._value()
            if value is not _PUSH:
                break
        if isinstance(value, Exception):
            raise value
        return value

    def _value(self) -> Any:
        # the common replies (bulk strings, arrays of them, integers) straight from the
        # buffer; the other types, and a bulk string not yet received whole, by _other
        buf, pos = self.buf, self.pos
        end = buf.find(b"\r\n", pos)
        if end < 0:
            return self._other()
        kind = buf[pos]
        if kind == 36:  # $
            n = int(buf[pos + 1 : end])
            start = end + 2
            if n < 0:
                self.pos = start
                return None
            if start + n + 2 > len(buf):
                return self._other()
            self.pos = start + n + 2
            return buf[start : start + n]
        if kind == 42:  # *
            n = int(buf[pos + 1 : end])
            self.pos = end + 2
            if n < 0:
                return None
            out: list[Any] = []
            append = out.append
            value = self._value
            for _ in range(n):
                append(value())
            return out
        if kind == 58:  # :
            self.pos = end + 2
            return int(buf[pos + 1 : end])
        return self._other()

    def _other(self) -> Any:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"$" or kind == b"=":
            n = int(rest)
            if n < 0:
                return None
            data = self._exact(n)
            return data[4:] if kind == b"=" else data  # verbatim: drop the "txt:" format
        if kind == b"*" or kind == b"~":
            n = int(rest)
            return None if n < 0 else [self._value() for _ in range(n)]
        if kind == b":":
            return int(rest)
        if kind == b"+":
            return rest
        if kind == b"-" or kind == b"!":
            text = (self._exact(int(rest)) if kind == b"!" else rest).decode("utf-8", "replace")
            return self.parse_error(text)
        if kind == b"_":
            return None
        if kind == b"%":
            return {self._value(): self._value() for _ in range(int(rest))}
        if kind == b"#":
            return rest == b"t"
        if kind == b",":
            return float(rest)
        if kind == b"(":
            return int(rest)
        if kind == b">" or kind == b"|":  # out-of-band push, or attributes before a reply
            for _ in range(int(rest) * (2 if kind == b"|" else 1)):
                self._value()
            return _PUSH if kind == b">" else self._value()
        raise ConnectionError(f"unexpected Redis reply type {line[:20]!r}")


_PUSH = object()

_WIRES: weakref.WeakSet[Wire] = weakref.WeakSet()


def _after_fork() -> None:
    for wire in list(_WIRES):
        wire._forked()


os.register_at_fork(after_in_child=_after_fork)


def wire_for(client: Any) -> Wire | None:
    """A :class:`Wire` for ``client`` when it is a plain single-server sync client, else None."""
    import redis

    if type(client) is not redis.Redis or getattr(client, "connection", None) is not None:
        return None
    pool = getattr(client, "connection_pool", None)
    if type(pool) is not redis.ConnectionPool or getattr(pool, "cache", None) is not None:
        return None
    if pool.connection_class not in (
        redis.Connection,
        redis.UnixDomainSocketConnection,
        redis.SSLConnection,
    ):
        return None
    kwargs = pool.connection_kwargs
    if kwargs.get("encoding", "utf-8").lower().replace("_", "-") not in ("utf-8", "utf8"):
        return None
    if kwargs.get("encoding_errors", "strict") != "strict":
        return None
    return Wire(client)


class Wire:
    """Idle connections of one client and the two calls the driver makes over them."""

    def __init__(self, client: Any) -> None:
        from redis import exceptions

        self.client = client
        self._failed = (exceptions.ConnectionError, exceptions.TimeoutError, OSError)
        self._refused = exceptions.ResponseError
        self._noscript = exceptions.NoScriptError
        self._pool = client.connection_pool
        self._idle: list[tuple[Any, _Reader]] = []
        _WIRES.add(self)

    def _forked(self) -> None:
        self._idle = []  # the parent's sockets: not ours to use or close

    def _take(self) -> tuple[Any, _Reader]:
        try:
            return self._idle.pop()
        except IndexError:
            conn = self._pool.connection_class(**self._pool.connection_kwargs)
            conn.connect()  # the client's handshake: AUTH, HELLO, SELECT, CLIENT SETNAME...
            return conn, _Reader(conn._sock, conn._parser.parse_error)

    def command(self, args: tuple[Any, ...]) -> Any:
        """Send ``args`` and return the raw reply (no response callback); a failed
        connection falls back to ``execute_command`` (its reconnect and retry policy)."""
        try:
            conn, reader = self._take()
        except self._failed:
            return self.client.execute_command(*args)
        try:
            reader.sock.sendall(pack(args))
            reply = reader.reply()
        except self._failed:
            conn.disconnect()
            return self.client.execute_command(*args)
        except BaseException as exc:
            if isinstance(exc, self._refused):  # an error reply: the connection is in step
                self._idle.append((conn, reader))
            else:
                conn.disconnect()
            raise
        self._idle.append((conn, reader))
        return reply

    def script(self, script: Any, keys: list[str], args: tuple[Any, ...]) -> Any:
        """Run a registered ``redis.commands.core.Script`` (EVALSHA; on NOSCRIPT it is
        loaded and run again, as ``Script.__call__`` does)."""
        try:
            return self.command(("EVALSHA", script.sha, len(keys), *keys, *args))
        except self._noscript:
            script.sha = self.client.script_load(script.script)
            return self.command(("EVALSHA", script.sha, len(keys), *keys, *args))

    def load_library(self, library: Any) -> dict[str, str]:
        """``FUNCTION LOAD`` a :class:`~chatmgmt.storage._redis_functions.Library` (one that is
        already there is kept: its name carries its code's digest); its function names, or
        an empty dict when the server has no functions or refuses to load them."""
        try:
            self.command(("FUNCTION", "LOAD", library.code))
        except self._refused as exc:
            if "already exists" not in str(exc):
                return {}
        return dict(library.names)

    def fcall(self, function: str, library: Any, keys: list[str], args: tuple[Any, ...]) -> Any:
        """``FCALL`` a function of ``library``; when the server lost it (``FUNCTION FLUSH``, a
        restart without persistence) the library is loaded again and the call repeated."""
        try:
            return self.command(("FCALL", function, len(keys), *keys, *args))
        except self._refused as exc:
            if "Function not found" not in str(exc):
                raise
        self.load_library(library)
        return self.command(("FCALL", function, len(keys), *keys, *args))

    def close(self) -> None:
        """Close the idle connections (the storage's ``close``)."""
        idle, self._idle = self._idle, []
        for conn, _reader in idle:
            conn.disconnect()
