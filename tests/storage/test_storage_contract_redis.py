"""The port contract suites against the Redis adapter, sync and asyncio faces."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from chatmgmt.ports import AsyncStorage, Storage
from chatmgmt.storage.redis import AsyncRedisStorage, RedisStorage
from chatmgmt.testing import (
    AsyncStorageContract,
    ProcessStorageContract,
    StorageContract,
)
from storage.redis_helpers import redis_url

pytestmark = pytest.mark.redis


class TestRedisContract(ProcessStorageContract, StorageContract):
    def setup_method(self, method: Any = None) -> None:
        self.url = redis_url()
        super().setup_method(method)

    def make_storage(self, namespace: str) -> Storage:
        return RedisStorage(self.url, namespace)

    def storage_factory(self, namespace: str) -> Any:
        return functools.partial(RedisStorage, self.url, namespace)


class TestAsyncRedisContract(AsyncStorageContract):
    def setup_method(self, method: Any = None) -> None:
        self.url = redis_url()
        super().setup_method(method)

    def make_async_storage(self, namespace: str) -> AsyncStorage:
        return AsyncRedisStorage(self.url, namespace)
