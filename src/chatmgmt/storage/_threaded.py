"""An async face over a sync storage whose calls block (SQLite): each call runs in a thread.

The calls run on a small dedicated thread pool (not the loop's default executor), so a busy
database never starves the host's other ``to_thread`` work, and the number of connections a
storage opens stays bounded.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["ThreadedAsyncStorage"]

_PORTS = ("customers", "agents", "chats", "queues", "outbox", "timers", "counters")
_METHODS = ("apply",)  # the storage's own methods (the unit of work), wrapped the same way


class ThreadedAsyncStorage:
    """Wraps every port of a blocking sync storage into awaitables run on ``executor``."""

    def __init__(self, sync: Any, executor: ThreadPoolExecutor) -> None:
        self._sync = sync
        self._executor = executor
        self.namespace: str = sync.namespace
        self.reports_census: bool = getattr(sync, "reports_census", False) is True
        for name in _PORTS:
            setattr(self, name, _ThreadedPort(getattr(sync, name), executor))
        for name in _METHODS:
            setattr(self, name, _threaded(getattr(sync, name), executor, name))

    @property
    def sync(self) -> Any:
        """The wrapped sync storage."""
        return self._sync


class _ThreadedPort:
    def __init__(self, port: Any, executor: ThreadPoolExecutor) -> None:
        self._port = port
        self._executor = executor

    def __getattr__(self, name: str) -> Callable[..., Any]:
        call = _threaded(getattr(self._port, name), self._executor, name)
        self.__dict__[name] = call
        return call


def _threaded(
    method: Callable[..., Any], executor: ThreadPoolExecutor, name: str
) -> Callable[..., Any]:
    """An async function running ``method`` on ``executor``."""

    async def call(*args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, functools.partial(method, *args, **kwargs))

    call.__name__ = name
    return call
