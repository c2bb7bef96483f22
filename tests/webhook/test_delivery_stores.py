"""The delivery-store contract against every adapter: memory, SQLite and Redis, sync and async."""

from __future__ import annotations

import os
import tempfile
from typing import Any

import pytest

from chatmgmt.ports import AsyncDeliveryStore, DeliveryStore
from chatmgmt.storage.memory_delivery import MemoryDeliveryStore
from chatmgmt.storage.sqlite import SQLiteDatabase
from chatmgmt.storage.sqlite_delivery import SQLiteDeliveryStore
from chatmgmt.testing._delivery_contract import (
    AsyncDeliveryStoreContract,
    DeliveryStoreContract,
)
from storage.redis_helpers import redis_url

# --------------------------------------------------------------------------- memory


class TestMemoryDeliveryStore(DeliveryStoreContract):
    def setup_method(self, method: Any = None) -> None:
        self.stores: dict[str, MemoryDeliveryStore] = {}
        super().setup_method(method)

    def make_store(self, namespace: str) -> DeliveryStore:
        # one store per namespace: memory stores share nothing, which is isolation
        return self.stores.setdefault(namespace, MemoryDeliveryStore())


class TestAsyncMemoryDeliveryStore(AsyncDeliveryStoreContract):
    def make_async_store(self, namespace: str) -> AsyncDeliveryStore:
        return MemoryDeliveryStore().aio()


# --------------------------------------------------------------------------- SQLite


class _SQLiteFile:
    def setup_method(self, method: Any = None) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="chatmgmt-wh-")
        self.db = SQLiteDatabase(os.path.join(self.tmp.name, "wh.db"))
        super().setup_method(method)  # type: ignore[misc]

    def teardown_method(self, method: Any = None) -> None:
        try:
            super().teardown_method(method)  # type: ignore[misc]
        finally:
            self.db.close()
            self.tmp.cleanup()


class TestSQLiteDeliveryStore(_SQLiteFile, DeliveryStoreContract):
    def make_store(self, namespace: str) -> DeliveryStore:
        return SQLiteDeliveryStore(self.db, namespace)


class TestAsyncSQLiteDeliveryStore(_SQLiteFile, AsyncDeliveryStoreContract):
    def make_async_store(self, namespace: str) -> AsyncDeliveryStore:
        return SQLiteDeliveryStore(self.db, namespace).aio()


def test_sqlite_store_shares_a_file_with_sqlite_storage(tmp_path: Any) -> None:
    from chatmgmt.storage.sqlite import SCHEMA_VERSION, SQLiteStorage
    from chatmgmt.storage.sqlite_delivery import WEBHOOK_SCHEMA_VERSION
    from chatmgmt.testing._delivery_contract import _d

    path = tmp_path / "app.db"
    storage = SQLiteStorage(path, "acme")
    store = SQLiteDeliveryStore(storage.database, "acme")
    store.add([_d(1)])
    assert storage.database.schema_version() == SCHEMA_VERSION
    store.close()  # shared database: stays open
    assert storage.outbox.pending() == 0
    storage.close()
    reopened = SQLiteDeliveryStore(path, "acme")  # owns its database
    assert [d.id for d in reopened.deliveries()] == ["e1"]
    with reopened.database.read() as conn:
        assert conn.execute("SELECT version FROM wh_schema_version").fetchone()[0] == (
            WEBHOOK_SCHEMA_VERSION
        )
    reopened.close()


# --------------------------------------------------------------------------- Redis


@pytest.mark.redis
class TestRedisDeliveryStore(DeliveryStoreContract):
    def setup_method(self, method: Any = None) -> None:
        self.url = redis_url()
        super().setup_method(method)

    def make_store(self, namespace: str) -> DeliveryStore:
        from chatmgmt.storage.redis_delivery import RedisDeliveryStore

        return RedisDeliveryStore(self.url, namespace)

    def close_store(self, store: Any) -> None:
        store.delete_namespace()
        store.close()


@pytest.mark.redis
class TestAsyncRedisDeliveryStore(AsyncDeliveryStoreContract):
    def setup_method(self, method: Any = None) -> None:
        self.url = redis_url()
        super().setup_method(method)

    def make_async_store(self, namespace: str) -> AsyncDeliveryStore:
        from chatmgmt.storage.redis_delivery import AsyncRedisDeliveryStore

        return AsyncRedisDeliveryStore(self.url, namespace)

    async def aclose_async_store(self, store: Any) -> None:
        await store.delete_namespace()
        await store.aclose()


# --------------------------------------------------------------------------- restart


def test_dispatcher_restarted_over_sqlite_loses_nothing(tmp_path: Any) -> None:
    """A dispatcher stopped at every stage and a new one over the same SQLite file (outbox and
    delivery state; all objects reopened as a new process would) delivers every event, in
    the per-chat order of the store, with only recognisable duplicates."""
    import random

    from chatmgmt.delivery import Dispatcher, UrllibTransport
    from chatmgmt.ports import DeliveryStatus
    from chatmgmt.storage.sqlite import SQLiteStorage
    from chatmgmt.testing import ManualClock
    from chatmgmt.webhook._plan import fan_out
    from webhook.webhook_helpers import Receiver, endpoint, message_event, settings_for

    receiver = Receiver()
    clock = ManualClock(1_764_000_000.0)
    path = tmp_path / "app.db"
    try:
        settings = settings_for(endpoint(receiver, max_concurrency=2))
        receiver.script("/hook", ["500", "reset"])
        storage = SQLiteStorage(path, "acme")
        store = SQLiteDeliveryStore(storage.database, "acme")
        events = [message_event(i, chat=f"c_{i % 4}") for i in range(30)]
        storage.outbox.append(events)
        # worker 1 stops at every stage: outbox entries claimed and never fanned out...
        storage.outbox.claim("webhooks", 5, clock.now(), 60.0)
        d1 = Dispatcher(storage, settings, store, clock=clock, rng=random.Random(1))
        # ...entries fanned out but not acked...
        entries = storage.outbox.claim("webhooks", 10, clock.now(), 60.0)
        plan = fan_out(entries, settings, clock.now())
        store.add(plan.deliveries, plan.buffered)
        # ...a pass that sends (two failures recorded as retries)...
        d1.run_once()
        # ...deliveries claimed (leased), sent, the answer never recorded
        for dl in store.claim_due("hook", clock.now() + 100, 2, 75.0):
            UrllibTransport().send(d1._core.request(dl))
        d1.close()
        store.close()
        storage.close()

        # worker 2: a fresh process's view of the same file
        storage2 = SQLiteStorage(path, "acme")
        store2 = SQLiteDeliveryStore(path, "acme")
        d2 = Dispatcher(storage2, settings, store2, clock=clock, rng=random.Random(2))
        want = {e.id for e in events}
        for _ in range(60):
            d2.run_once()
            if set(receiver.accepted_ids()) == want:
                break
            clock.advance(40)
        assert set(receiver.accepted_ids()) == want
        assert storage2.outbox.pending() == 0
        got = store2.deliveries("hook")
        assert len(got) == 30  # the re-fan-out created no duplicate deliveries
        assert {d.status for d in got} == {DeliveryStatus.DELIVERED}
        ids = receiver.accepted_ids()
        assert len(ids) - len(set(ids)) <= 2  # the two abandoned sends, same webhook-id
        # per-chat order is the order the deliveries were added (the outbox entries the
        # crashed worker held came back later than their successors: they were added last)
        added: dict[str, list[str]] = {}
        for d in got:
            added.setdefault(d.chat_keys[0], []).append(d.id)
        first: dict[str, list[str]] = {}
        seen: set[str] = set()
        for r in receiver.by_path("/hook"):
            if r.accepted and r.msg_id not in seen:
                seen.add(r.msg_id)
                first.setdefault(r.json()["chat_id"], []).append(r.msg_id)
        assert first == added
        d2.close()
        store2.close()
        storage2.close()
    finally:
        receiver.close()


# --------------------------------------------------------------------------- PostgreSQL


@pytest.mark.postgres
class TestPostgresDeliveryStore(DeliveryStoreContract):
    def setup_method(self, method: Any = None) -> None:
        from chatmgmt.storage.postgres import PostgresDatabase
        from storage.postgres_helpers import postgres_url

        self.db = PostgresDatabase(postgres_url(), max_size=20)
        super().setup_method(method)

    def teardown_method(self, method: Any = None) -> None:
        try:
            super().teardown_method(method)
        finally:
            self.db.close()

    def make_store(self, namespace: str) -> DeliveryStore:
        from chatmgmt.storage.postgres_delivery import PostgresDeliveryStore

        return PostgresDeliveryStore(self.db, namespace)

    def close_store(self, store: Any) -> None:
        store.delete_namespace()


@pytest.mark.postgres
class TestAsyncPostgresDeliveryStore(AsyncDeliveryStoreContract):
    def setup_method(self, method: Any = None) -> None:
        from storage.postgres_helpers import postgres_url

        self.url = postgres_url()
        super().setup_method(method)

    def make_async_store(self, namespace: str) -> AsyncDeliveryStore:
        from chatmgmt.storage.postgres_delivery import AsyncPostgresDeliveryStore

        return AsyncPostgresDeliveryStore(self.url, namespace)

    async def aclose_async_store(self, store: Any) -> None:
        await store.delete_namespace()
        await store.aclose()
