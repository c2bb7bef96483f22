"""The PostgreSQL adapter's own promises: versioned schema, the host's pool, LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import pytest

from chatmgmt.errors import StorageError
from chatmgmt.testing._contracts._support import event
from storage.postgres_helpers import postgres_url

pytestmark = pytest.mark.postgres


def _ns() -> str:
    return f"pg{uuid.uuid4().hex[:10]}"


def test_schema_is_versioned_and_a_newer_one_is_refused() -> None:
    from chatmgmt.storage._pg import PostgresDatabase
    from chatmgmt.storage.postgres import SCHEMA_VERSION, PostgresStorage

    url = postgres_url()
    storage = PostgresStorage(url, _ns())
    assert storage.schema_version() == SCHEMA_VERSION
    with storage.database.pool.connection() as conn:
        conn.execute(
            "UPDATE chatmgmt_schema_version SET version = %s WHERE component = 'storage'",
            (SCHEMA_VERSION + 1,),
        )
    newer = PostgresDatabase(url)  # the test's own: closed below (its pool's threads)
    try:
        with pytest.raises(StorageError, match="newer"):
            PostgresStorage(newer, _ns())
    finally:
        newer.close()
        with storage.database.pool.connection() as conn:
            conn.execute(
                "UPDATE chatmgmt_schema_version SET version = %s WHERE component = 'storage'",
                (SCHEMA_VERSION,),
            )
        storage.close()


def test_the_hosts_pool_is_borrowed_and_left_as_it_was() -> None:
    from psycopg_pool import ConnectionPool

    from chatmgmt.storage.postgres import PostgresStorage

    pool = ConnectionPool(postgres_url(), min_size=1, max_size=2, open=True)  # autocommit off
    try:
        storage = PostgresStorage(pool, _ns())
        storage.outbox.append([event("e1")])
        assert storage.outbox.pending() == 1
        storage.close()  # a borrowed pool stays open
        with pool.connection() as conn:
            assert conn.autocommit is False
            assert conn.execute("SELECT 1").fetchone() == (1,)
        storage.delete_namespace()
    finally:
        pool.close()


def test_outbox_wait_wakes_when_events_are_appended() -> None:
    from chatmgmt.storage.postgres import PostgresStorage

    ns = _ns()
    listener = PostgresStorage(postgres_url(), ns)
    writer = PostgresStorage(postgres_url(), ns)
    other = PostgresStorage(postgres_url(), ns + "x")
    try:
        assert listener.outbox.wait(0.05) is False  # starts listening; nothing came
        other.outbox.append([event("e0")])  # another tenant's events do not wake it
        assert listener.outbox.wait(0.2) is False
        woke: list[bool] = []
        ready = threading.Event()

        def listen() -> None:
            ready.set()
            woke.append(listener.outbox.wait(30))

        t = threading.Thread(target=listen)
        t.start()
        ready.wait()
        writer.outbox.append([event("e1")])
        t.join(30)
        assert woke == [True]
    finally:
        for s in (listener, writer, other):
            s.delete_namespace()
            s.close()


def test_async_outbox_wait_wakes_when_events_are_appended() -> None:
    from chatmgmt.storage.postgres import AsyncPostgresStorage

    async def main() -> bool:
        ns = _ns()
        listener = AsyncPostgresStorage(postgres_url(), ns)
        writer = AsyncPostgresStorage(postgres_url(), ns)
        try:
            assert await listener.outbox.wait(0.05) is False
            waiting = asyncio.ensure_future(listener.outbox.wait(30))
            await asyncio.sleep(0.05)
            await writer.outbox.append([event("e1")])
            return await waiting
        finally:
            for s in (listener, writer):
                await s.delete_namespace()
                await s.aclose()

    assert asyncio.run(main()) is True


def test_hostile_namespaces_are_data(tmp_path: Any) -> None:
    from chatmgmt.storage.postgres import PostgresStorage
    from chatmgmt.testing._contracts._support import HOSTILE_STRINGS

    db = PostgresStorage(postgres_url(), _ns()).database
    try:
        for i, ns in enumerate(HOSTILE_STRINGS):
            storage = PostgresStorage(db, ns + uuid.uuid4().hex[:6])
            storage.outbox.append([event(f"e{i}")])
            assert storage.outbox.pending() == 1
            assert storage.counters.hit(ns, 1.0, 10.0) == 1
            storage.delete_namespace()
    finally:
        db.close()
