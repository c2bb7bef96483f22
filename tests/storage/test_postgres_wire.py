"""The PostgreSQL drivers' wire (storage/_pg_wire.py): statements prepared once per connection
under names of ours, a host that discards them, errors matched to their statement, the
connection left idle and out of pipeline mode whatever happened, sync and async alike."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from chatmgmt.assignment import LEAST_BUSY
from chatmgmt.errors import PreconditionFailed
from chatmgmt.model import Agent, AgentId, AgentStatus, ChatId
from chatmgmt.ports import Change, RankedClaim
from chatmgmt.testing._contracts._support import event
from storage.postgres_helpers import postgres_url

pytestmark = pytest.mark.postgres


def _ns() -> str:
    return f"pw{uuid.uuid4().hex[:10]}"


def _agent(i: int) -> Agent:
    return Agent(
        AgentId(f"a{i}"),
        skill_groups=frozenset({"g"}),
        reception_limit=1,
        status=AgentStatus.ONLINE,
        account_order=i,
    )


def _claim(cid: str, now: float) -> Change:
    return Change(ChatId(cid), None, now, claim=RankedClaim("g", LEAST_BUSY), events=(event(cid),))


@pytest.fixture
def one_connection() -> Iterator[Any]:
    """A host's pool of exactly one connection (autocommit off, psycopg's defaults)."""
    from psycopg_pool import ConnectionPool

    pool = ConnectionPool(postgres_url(), min_size=1, max_size=1, open=True)
    try:
        yield pool
    finally:
        pool.close()


def _idle(pool: Any) -> tuple[Any, Any]:
    with pool.connection() as conn:
        return conn.pgconn.pipeline_status, conn.pgconn.transaction_status
    raise AssertionError  # pragma: no cover


def _ours(pool: Any) -> list[str]:
    with pool.connection() as conn:
        rows = conn.execute("SELECT name FROM pg_prepared_statements ORDER BY name").fetchall()
        conn.rollback()
    return [r[0] for r in rows if r[0].startswith("_cm_")]


def test_statements_are_prepared_once_per_connection_under_our_names(one_connection: Any) -> None:
    from chatmgmt.storage.postgres import PostgresStorage

    storage = PostgresStorage(one_connection, _ns())
    storage.agents.put(_agent(1), 0.0)
    storage.agents.put(_agent(2), 0.0)
    storage.apply(_claim("c1", 1.0))
    names = _ours(one_connection)
    assert names  # BEGIN, the reads, the write call, COMMIT, the NOTIFY...
    storage.apply(_claim("c2", 2.0))  # the same statements again: nothing new prepared
    storage.apply(Change(ChatId("c1"), None, 3.0, release=AgentId("a1")))
    storage.apply(_claim("c3", 4.0))
    again = _ours(one_connection)
    assert set(names) <= set(again)
    # c2 and c3 ran the very statements of c1: only the release added some
    assert len(again) - len(names) <= 3
    assert storage.chats.get(ChatId("c1")) is None  # slot-only changes
    assert storage.outbox.events() == [event("c1"), event("c2"), event("c3")]
    storage.delete_namespace()


def test_a_host_that_discards_our_statements_costs_a_retry_not_an_error(
    one_connection: Any,
) -> None:
    from chatmgmt.storage.postgres import PostgresStorage

    storage = PostgresStorage(one_connection, _ns())
    storage.agents.put(_agent(1), 0.0)
    storage.agents.put(_agent(2), 0.0)
    storage.apply(_claim("c1", 1.0))
    with one_connection.connection() as conn:  # the host's own use of its connection
        conn.execute("DEALLOCATE ALL")
        conn.commit()
    assert not _ours(one_connection)
    applied = storage.apply(_claim("c2", 2.0))
    assert applied.agent_id == "a2"
    assert storage.agents.get(AgentId("a2")) is not None
    assert _ours(one_connection)  # prepared again
    assert storage.outbox.pending() == 2
    storage.delete_namespace()


def test_a_failed_unit_leaves_the_connection_idle_out_of_pipeline_mode(
    one_connection: Any,
) -> None:
    from psycopg import pq

    from chatmgmt.storage.postgres import PostgresStorage

    storage = PostgresStorage(one_connection, _ns())
    storage.agents.put(_agent(1), 0.0)
    storage.apply(_claim("c1", 1.0))
    # a precondition that fails after the reads (no agent left), a unique violation raised
    # by the write call (the chat exists), and a version that moved
    with pytest.raises(PreconditionFailed) as failed:
        storage.apply(_claim("c2", 2.0))
    assert failed.value.reason == "no_agent"
    assert _idle(one_connection) == (pq.PipelineStatus.OFF, pq.TransactionStatus.IDLE)
    with pytest.raises(PreconditionFailed) as failed:
        storage.apply(Change(ChatId("c9"), 3, 3.0, events=(event(9),)))
    assert failed.value.reason == "missing"
    assert _idle(one_connection) == (pq.PipelineStatus.OFF, pq.TransactionStatus.IDLE)
    assert storage.outbox.pending() == 1  # nothing of the failed units committed
    assert storage.apply(Change(ChatId("c1"), None, 4.0, release=AgentId("a1"))).agent_id is None
    assert storage.apply(_claim("c3", 5.0)).agent_id == "a1"
    storage.delete_namespace()


def test_past_the_cap_statements_travel_unnamed(
    one_connection: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chatmgmt.storage import _pg_wire
    from chatmgmt.storage.postgres import PostgresStorage

    monkeypatch.setattr(_pg_wire, "MAX_PREPARED", 0)
    storage = PostgresStorage(one_connection, _ns())
    storage.agents.put(_agent(1), 0.0)
    assert storage.apply(_claim("c1", 1.0)).agent_id == "a1"
    assert storage.agents.get(AgentId("a1")) is not None
    assert storage.outbox.pending() == 1
    assert not _ours(one_connection)  # nothing prepared under our names
    storage.delete_namespace()


def test_a_host_that_turned_preparing_off_gets_no_prepared_statements() -> None:
    """``prepare_threshold=None`` (a transaction-pooling PgBouncer in front of the server):
    every statement travels unnamed."""
    from psycopg_pool import ConnectionPool

    from chatmgmt.storage.postgres import PostgresStorage

    pool = ConnectionPool(
        postgres_url(), min_size=1, max_size=1, kwargs={"prepare_threshold": None}, open=True
    )
    try:
        storage = PostgresStorage(pool, _ns())
        storage.agents.put(_agent(1), 0.0)
        for i in range(3):
            assert storage.apply(_claim(f"c{i}", 1.0 + i)).agent_id == "a1"
            storage.apply(Change(ChatId(f"c{i}"), None, 1.5 + i, release=AgentId("a1")))
        assert storage.outbox.pending() == 3
        assert not _ours(pool)
        storage.delete_namespace()
    finally:
        pool.close()


def test_the_async_driver_runs_the_same_wire() -> None:
    from psycopg import pq
    from psycopg_pool import AsyncConnectionPool

    from chatmgmt.storage.postgres import AsyncPostgresStorage

    async def main() -> None:
        pool = AsyncConnectionPool(postgres_url(), min_size=1, max_size=1, open=False)
        await pool.open()
        try:
            storage = AsyncPostgresStorage(pool, _ns())
            await storage.agents.put(_agent(1), 0.0)
            assert (await storage.apply(_claim("c1", 1.0))).agent_id == "a1"
            with pytest.raises(PreconditionFailed):
                await storage.apply(_claim("c2", 2.0))
            async with pool.connection() as conn:
                assert conn.pgconn.pipeline_status == pq.PipelineStatus.OFF
                assert conn.pgconn.transaction_status == pq.TransactionStatus.IDLE
                await conn.execute("DEALLOCATE ALL")
                await conn.commit()
            await storage.apply(Change(ChatId("c1"), None, 3.0, release=AgentId("a1")))
            assert (await storage.apply(_claim("c3", 4.0))).agent_id == "a1"
            assert await storage.outbox.pending() == 2
            await storage.delete_namespace()
        finally:
            await pool.close()

    asyncio.run(main())
