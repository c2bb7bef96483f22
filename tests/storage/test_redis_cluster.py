"""Redis Cluster: the storage and delivery-store contract suites (sync and async) and
``delete_namespace()`` of both, on a real 3-master cluster (``CHATMGMT_REDIS_CLUSTER_URL``, or
a private one started on loopback; under ``CI=true`` these tests must run, never skip).

Namespaces are hash tags, so tenants land on different masters; one tenant's keys span several
SCAN pages. Deleting one tenant removes every key of it and nothing of the others.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import pytest

from chatmgmt.model import Event
from chatmgmt.ports import (
    AsyncDeliveryStore,
    AsyncStorage,
    Attempt,
    Delivery,
    DeliveryStatus,
    DeliveryStore,
    Storage,
)
from chatmgmt.storage.redis import AsyncRedisStorage, RedisStorage, key_prefix
from chatmgmt.storage.redis_delivery import AsyncRedisDeliveryStore, RedisDeliveryStore
from chatmgmt.testing import AsyncStorageContract, ProcessStorageContract, StorageContract
from chatmgmt.testing._delivery_contract import AsyncDeliveryStoreContract, DeliveryStoreContract
from storage.redis_helpers import redis_cluster_url

pytestmark = pytest.mark.redis

# --------------------------------------------------------------------------- contract suites


class TestRedisClusterContract(ProcessStorageContract, StorageContract):
    def setup_method(self, method: Any = None) -> None:
        self.url = redis_cluster_url()
        super().setup_method(method)

    def make_storage(self, namespace: str) -> Storage:
        return RedisStorage.cluster(self.url, namespace)

    def storage_factory(self, namespace: str) -> Any:
        return functools.partial(RedisStorage.cluster, self.url, namespace)


class TestAsyncRedisClusterContract(AsyncStorageContract):
    def setup_method(self, method: Any = None) -> None:
        self.url = redis_cluster_url()
        super().setup_method(method)

    def make_async_storage(self, namespace: str) -> AsyncStorage:
        return AsyncRedisStorage.cluster(self.url, namespace)


class TestRedisClusterDeliveryStore(DeliveryStoreContract):
    def setup_method(self, method: Any = None) -> None:
        self.url = redis_cluster_url()
        super().setup_method(method)

    def make_store(self, namespace: str) -> DeliveryStore:
        return RedisDeliveryStore(_cluster(), namespace)

    def close_store(self, store: Any) -> None:
        store.delete_namespace()
        store.client.close()


class TestAsyncRedisClusterDeliveryStore(AsyncDeliveryStoreContract):
    def setup_method(self, method: Any = None) -> None:
        self.url = redis_cluster_url()
        super().setup_method(method)

    def make_async_store(self, namespace: str) -> AsyncDeliveryStore:
        from redis.asyncio.cluster import RedisCluster

        return AsyncRedisDeliveryStore(RedisCluster.from_url(self.url), namespace)

    async def aclose_async_store(self, store: Any) -> None:
        await store.delete_namespace()
        await store.client.aclose()


# --------------------------------------------------------------------------- delete_namespace

TENANTS = [f"cluster-del-{i}" for i in range(8)]
PAGE_KEYS = 2500  # more than two SCAN pages (COUNT 1000)


def _cluster() -> Any:
    from redis.cluster import RedisCluster

    return RedisCluster.from_url(redis_cluster_url())


def _keys(client: Any, prefix: str) -> int:
    pattern = prefix.replace("{", "\\{").replace("}", "\\}") + ":*"
    return sum(1 for _ in client.scan_iter(match=pattern, count=1000))


def _delivery(i: int) -> Delivery:
    return Delivery(
        id=f"d{i}",
        endpoint_id="ep",
        event_type="chat.started",
        event_ids=(f"e{i}",),
        chat_keys=(f"c{i}",),
        body=b"{}",
        created_at=1.0,
        next_attempt_at=1.0,
    )


def _fill(storage: RedisStorage, store: RedisDeliveryStore, n: int) -> None:
    for i in range(n):
        storage.counters.hit(f"k{i}", 1.0, 60.0)  # one key per counter
    storage.outbox.append([Event("e1", "chat.started", 1.0, {})])
    store.add([_delivery(1), _delivery(2)])
    store.finish("ep", "d1", Attempt(2.0, 500, 0.1), DeliveryStatus.PENDING, 9.0)


def test_the_tenants_span_several_masters() -> None:
    client = _cluster()
    try:
        masters = {client.get_node_from_key(f"{key_prefix(t)}:x").name for t in TENANTS}
        assert len(masters) >= 2
        assert len(client.get_primaries()) == 3
    finally:
        client.close()


def test_delete_namespace_on_a_cluster_removes_one_tenant_only() -> None:
    stores = [
        (RedisStorage.cluster(redis_cluster_url(), t), RedisDeliveryStore(_cluster(), t))
        for t in TENANTS
    ]
    client = _cluster()
    try:
        for storage, store in stores:
            storage.delete_namespace()
            _fill(storage, store, 3)
        big, big_store = stores[0]
        _fill(big, big_store, PAGE_KEYS)
        before = {s.namespace: _keys(client, s.key_prefix) for s, _ in stores}
        assert before[big.namespace] > PAGE_KEYS
        webhook_keys = sum(
            1
            for _ in client.scan_iter(
                match=big.key_prefix.replace("{", "\\{").replace("}", "\\}") + ":wh:*"
            )
        )
        assert webhook_keys > 0
        assert big_store.delete_namespace() == webhook_keys
        assert big_store.deliveries() == []
        assert big.delete_namespace() == before[big.namespace] - webhook_keys
        assert _keys(client, big.key_prefix) == 0
        assert big.outbox.pending() == 0
        for storage, _ in stores[1:]:
            assert _keys(client, storage.key_prefix) == before[storage.namespace]
    finally:
        for storage, store in stores:
            storage.delete_namespace()
            storage.close()
            store.client.close()
        client.close()


def test_async_delete_namespace_on_a_cluster() -> None:
    tenant, other = TENANTS[1], TENANTS[2]
    sync = RedisStorage.cluster(redis_cluster_url(), tenant)
    sync_other = RedisStorage.cluster(redis_cluster_url(), other)
    sync_store = RedisDeliveryStore(_cluster(), tenant)
    client = _cluster()
    try:
        for s in (sync, sync_other):
            s.delete_namespace()
            _fill(s, sync_store if s is sync else RedisDeliveryStore(_cluster(), other), 1200)
        keep = _keys(client, sync_other.key_prefix)

        async def run() -> tuple[int, int]:
            from redis.asyncio.cluster import RedisCluster

            storage = AsyncRedisStorage.cluster(redis_cluster_url(), tenant)
            store = AsyncRedisDeliveryStore(RedisCluster.from_url(redis_cluster_url()), tenant)
            try:
                return await store.delete_namespace(), await storage.delete_namespace()
            finally:
                await storage.aclose()
                await store.client.aclose()

        webhook, rest = asyncio.run(run())
        assert webhook > 0 and rest > 1200
        assert _keys(client, sync.key_prefix) == 0
        assert _keys(client, sync_other.key_prefix) == keep
    finally:
        sync.delete_namespace()
        sync_other.delete_namespace()
        for s in (sync, sync_other):
            s.close()
        sync_store.client.close()
        client.close()
