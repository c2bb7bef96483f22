"""The Redis adapter's drivers: the commands an operation yields (a script, a plain call, a
delete by pattern on every primary), and the sync and asyncio drivers that answer them (the sync
one on the short path of ``_redis_wire`` when it can, Redis Functions there, the data version
checked once per storage object), with the connection helpers. Shared with the webhook delivery
store, which brings its own scripts. Split from ``storage/redis.py``."""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any, TypeVar, cast

import attrs

from ..errors import StorageError
from ._redis_keys import _data_version_error, _full_scripts, _library
from ._redis_wire import wire_for

_T = TypeVar("_T")


@attrs.frozen
class _Script:
    name: str
    args: tuple[Any, ...]


@attrs.frozen
class _Call:
    args: tuple[Any, ...]


@attrs.frozen
class _ScanDelete:
    """Delete every key matching ``pattern`` on every primary (every SCAN page)."""

    pattern: str


_Cmd = _Script | _Call | _ScanDelete
_Gen = Generator[_Cmd, Any, _T]


def _connect_sync(client_or_url: Any) -> tuple[Any, bool]:
    if isinstance(client_or_url, str):
        import redis

        return redis.Redis.from_url(client_or_url), True
    return client_or_url, False


def _connect_async(client_or_url: Any) -> tuple[Any, bool]:
    if isinstance(client_or_url, str):
        import redis.asyncio

        return redis.asyncio.Redis.from_url(client_or_url), True
    return client_or_url, False


def _primaries(client: Any) -> list[Any] | None:
    """The primary nodes of a cluster client; None for a single server."""
    get = getattr(client, "get_primaries", None)
    return None if get is None else list(get())


def _scan_reply(reply: Any) -> tuple[int, list[Any]]:
    if isinstance(reply, dict):  # a cluster client answering for one node: {node: reply}
        (reply,) = reply.values()
    cursor, keys = reply
    if isinstance(cursor, dict):  # a cluster client's SCAN callback: ({node: cursor}, keys)
        (cursor,) = cursor.values()
    return int(cursor), list(keys)


_RAW_REPLIES = frozenset({"HGET", "HGETALL", "HMGET", "LRANGE", "ZCARD", "XLEN", "EXISTS"})
"""Commands whose raw reply the operations read as they are (HGETALL: a flat list in RESP2, a
map in RESP3, both read by :func:`_census_of`); only these take the driver's short path."""


class _SyncDriver:
    """Runs generators of Redis commands against a sync client (shared with the webhook
    delivery store, which brings its own scripts)."""

    def __init__(self, client: Any, ops: Any, scripts: Mapping[str, str] | None = None) -> None:
        self.client = client
        self.ops = ops
        source = scripts if scripts is not None else _full_scripts()
        self.scripts = {name: client.register_script(body) for name, body in source.items()}
        self._unchecked = "data_version" in self.scripts
        self._cluster = hasattr(client, "get_primaries")
        self.wire = wire_for(client)  # the short path (a plain single-server client), or None
        # the storage's own scripts as Redis Functions on the short path: their names once
        # loaded (None: not tried yet; empty: the server has no functions or refuses them)
        self.functions: dict[str, str] | None = None if scripts is None else {}

    def _script(self, name: str, keys: list[str], args: tuple[Any, ...]) -> Any:
        wire = self.wire
        if wire is not None:
            functions = self.functions
            if functions is None:
                functions = self.functions = wire.load_library(_library())
            function = functions.get(name)
            if function is not None:
                return wire.fcall(function, _library(), keys, args)
            return wire.script(self.scripts[name], keys, args)
        return self.scripts[name](keys=keys, args=args)

    def _call(self, args: tuple[Any, ...]) -> Any:
        if self.wire is not None and args[0] in _RAW_REPLIES:
            return self.wire.command(args)
        return self.client.execute_command(*args)

    def run(self, gen: Generator[Any, Any, _T]) -> _T:
        """Run ``gen`` to its end, answering each command it yields; return its value."""
        keys = [self.ops.prefix]
        try:
            if self._unchecked:
                self._script("data_version", keys, ())
                self._unchecked = False
            cmd = next(gen)
            while True:
                if isinstance(cmd, _ScanDelete):
                    result: Any = self._scan_delete(cmd.pattern)
                elif (name := getattr(cmd, "name", None)) is not None:  # a script
                    result = self._script(name, keys, cmd.args)
                else:
                    result = self._call(cmd.args)
                cmd = gen.send(result)
        except StopIteration as stop:
            return cast(_T, stop.value)
        except StorageError:
            raise
        except Exception as exc:
            refused = _data_version_error(getattr(self.ops, "namespace", "?"), exc)
            if refused is not None:
                raise refused from exc
            raise

    def _delete(self, keys: list[Any]) -> Any:
        if self._cluster:  # redis-py splits a multi-key DEL by slot
            return self.client.delete(*keys)
        return self.client.execute_command("DEL", *keys)

    def _scan_delete(self, pattern: str) -> int:
        deleted = 0
        for node in (_primaries(self.client) or [None]) if self._cluster else [None]:
            extra = {} if node is None else {"target_nodes": node}
            cursor = 0
            while True:
                reply = self.client.execute_command(
                    "SCAN", cursor, "MATCH", pattern, "COUNT", 1000, **extra
                )
                cursor, keys = _scan_reply(reply)
                if keys:
                    deleted += int(self._delete(keys))
                if cursor == 0:
                    break
        return deleted


class _AsyncDriver:
    """The asyncio twin of :class:`_SyncDriver`."""

    def __init__(self, client: Any, ops: Any, scripts: Mapping[str, str] | None = None) -> None:
        self.client = client
        self.ops = ops
        source = scripts if scripts is not None else _full_scripts()
        self.scripts = {name: client.register_script(body) for name, body in source.items()}
        self._unchecked = "data_version" in self.scripts
        self._cluster = hasattr(client, "get_primaries")

    async def run(self, gen: Generator[Any, Any, _T]) -> _T:
        """Run ``gen`` to its end, answering each command it yields; return its value."""
        keys = [self.ops.prefix]
        try:
            if self._unchecked:
                await self.scripts["data_version"](keys=keys, args=())
                self._unchecked = False
            cmd = next(gen)
            while True:
                if isinstance(cmd, _ScanDelete):
                    result: Any = await self._scan_delete(cmd.pattern)
                elif (name := getattr(cmd, "name", None)) is not None:
                    result = await self.scripts[name](keys=keys, args=cmd.args)
                else:
                    result = await self.client.execute_command(*cmd.args)
                cmd = gen.send(result)
        except StopIteration as stop:
            return cast(_T, stop.value)
        except StorageError:
            raise
        except Exception as exc:
            refused = _data_version_error(getattr(self.ops, "namespace", "?"), exc)
            if refused is not None:
                raise refused from exc
            raise

    async def _delete(self, keys: list[Any]) -> Any:
        if self._cluster:
            return await self.client.delete(*keys)
        return await self.client.execute_command("DEL", *keys)

    async def _scan_delete(self, pattern: str) -> int:
        deleted = 0
        if self._cluster:
            await self.client.initialize()  # learns the nodes (idempotent)
        for node in (_primaries(self.client) or [None]) if self._cluster else [None]:
            extra = {} if node is None else {"target_nodes": node}
            cursor = 0
            while True:
                reply = await self.client.execute_command(
                    "SCAN", cursor, "MATCH", pattern, "COUNT", 1000, **extra
                )
                cursor, keys = _scan_reply(reply)
                if keys:
                    deleted += int(await self._delete(keys))
                if cursor == 0:
                    break
        return deleted
