"""The PostgreSQL schema's migration chain and the shape of a unit of work's statements.

Each test runs in a database of its own (created on the shared server, dropped afterwards), so
it sees only its own rows and its own table statistics.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from attrs import astuple as attrs_astuple
from attrs import evolve as attrs_evolve

from chatmgmt.assignment import LEAST_BUSY
from chatmgmt.model import Agent, AgentId, AgentStatus, ChatId
from chatmgmt.ports import Change, QueuePush, RankedClaim
from storage.postgres_helpers import census_kept, postgres_url

pytestmark = pytest.mark.postgres

AGENTS = 200


@contextlib.contextmanager
def _database() -> Iterator[str]:
    """A new empty database on the test server; its DSN."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    url = postgres_url()
    name = f"chatmgmt_t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield str(make_conninfo(url, dbname=name))
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _agents(storage: object, count: int) -> None:
    from chatmgmt.storage.postgres import PostgresStorage

    assert isinstance(storage, PostgresStorage)
    for i in range(count):
        storage.agents.put(
            Agent(
                AgentId(f"a{i:03d}"),
                skill_groups=frozenset({"g"}),
                reception_limit=3,
                account_order=i,
                status=AgentStatus.ONLINE,
            ),
            now=0.0,
        )


@contextlib.contextmanager
def _previous_release() -> Iterator[None]:
    """Units of work written as the release before wrote them (schema 6): version 6's write
    function, 10 values per agent, no census rows of its own (its census reads aggregated the
    rank rows)."""
    from chatmgmt.storage import _pg_unit

    patch = pytest.MonkeyPatch()
    for name in ("_WRITE", "_WRITE_MARKED"):
        sql = getattr(_pg_unit, name).replace("chatmgmt_write_unit7", "chatmgmt_write_unit6")
        patch.setattr(_pg_unit, name, sql)
    patch.setattr(_pg_unit, "_census_change", lambda *args: ())
    try:
        yield
    finally:
        patch.undo()


def _census_agrees(url: str, ns: str = "t") -> dict[str, tuple[int, ...]]:
    """The census of every group as kept in ``chatmgmt_agent_census`` equals the census the
    stored agent records give; returns it."""
    import psycopg

    with psycopg.connect(url) as conn:
        kept, records = census_kept(conn, ns)
    assert kept == records
    return records


def test_a_schema_4_database_is_migrated_forward_and_keeps_its_rows() -> None:
    from chatmgmt.storage._pg import PostgresDatabase, ddl_op, migrate_op
    from chatmgmt.storage.postgres import _COMPONENT, _MIGRATIONS, SCHEMA_VERSION, PostgresStorage

    assert SCHEMA_VERSION == 7
    with _database() as url:
        # the database as the release before left it: schema 4. Its units wrote the same rows
        # as the releases after it (migrations 5 and 6 change only the write function): to
        # write them with this release's code, the schema-4 database gets version 6's
        # function alone, its version left at 4, called as schema 6's release called it
        db4 = PostgresDatabase(url)
        assert db4.run(migrate_op, _COMPONENT, _MIGRATIONS[:4], 4, "old") == 0
        assert "FOREACH" not in _write_function(url)
        (function,) = _MIGRATIONS[5]
        db4.run(ddl_op, function)
        db4._known.add("migrate:storage")  # this face does not migrate it further
        v4 = PostgresStorage(db4, "t")
        assert v4.schema_version() == 4
        _agents(v4, 3)
        claim = RankedClaim("g", LEAST_BUSY)
        with _previous_release():
            v4.apply(Change(ChatId("c1"), None, 1.0, claim=claim))
            v4.apply(Change(ChatId("c2"), None, 1.0, claim=claim))
        db4.close()
        # the new release opens it: migrated, the rows kept, units of work go on
        new = PostgresStorage(url, "t")
        assert new.schema_version() == SCHEMA_VERSION
        assert "FOREACH" in _write_function(url)  # version 5's, kept for the release before
        assert "a_nums[o + 10]" in _write_function(url, "chatmgmt_write_unit6")
        assert _census_agrees(url)["g"] == (3, 0, 0, 0, 0, 9, 2)  # summed by the migration
        loads = {ld.agent.id: ld for ld in new.agents.list("g")}
        assert {cid for ld in loads.values() for cid in ld.chats} == {"c1", "c2"}
        holder = next(aid for aid, ld in loads.items() if "c1" in ld.chats)
        new.apply(Change(ChatId("c1"), None, 2.0, release=holder))
        got = new.agents.get(holder)
        assert got is not None and "c1" not in got.chats
        assert new.agents.census("g").load == 1
        again = new.apply(Change(ChatId("c3"), None, 3.0, claim=claim))
        assert again.agent_id is not None
        assert new.agents.census("g").load == 2
        _census_agrees(url)
        new.close()


def test_the_census_is_kept_while_the_previous_release_writes() -> None:
    """Schema 7 keeps each group's census in rows of its own: the migration sums the rank
    rows, this release's write function adds each unit's change, and triggers on the rank
    rows add what any other writer changes -- a process of the previous release still
    running during the upgrade (its write function, its agent writes), this release's own
    agent writes. At every step the kept census is the one the agent records give."""
    from chatmgmt.storage._pg import PostgresDatabase, migrate_op
    from chatmgmt.storage.postgres import _COMPONENT, _MIGRATIONS, PostgresStorage

    with _database() as url:
        db6 = PostgresDatabase(url)
        assert db6.run(migrate_op, _COMPONENT, _MIGRATIONS[:6], 6, "old") == 0
        db6._known.add("migrate:storage")
        old = PostgresStorage(db6, "t")  # the previous release, running on
        _agents(old, 5)
        claim = RankedClaim("g", LEAST_BUSY)
        with _previous_release():
            for i in range(5):
                old.apply(Change(ChatId(f"o{i}"), None, 1.0 + i, claim=claim))
        new = PostgresStorage(url, "t")  # migrates: schema 7
        assert _census_agrees(url)["g"] == (5, 0, 0, 0, 0, 15, 5)
        step = 0

        def both(apply_old: Change, apply_new: Change) -> None:
            nonlocal step
            step += 1
            with _previous_release():
                old.apply(apply_old)
            _census_agrees(url)
            new.apply(apply_new)
            _census_agrees(url)

        for i in range(4):
            both(
                Change(ChatId(f"p{i}"), None, 10.0 + i, claim=claim),
                Change(ChatId(f"n{i}"), None, 10.5 + i, claim=claim),
            )
        holders = {cid: ld.agent.id for ld in new.agents.list("g") for cid in ld.chats}
        both(
            Change(ChatId("p0"), None, 20.0, release=holders[ChatId("p0")]),
            Change(ChatId("n0"), None, 20.5, release=holders[ChatId("n0")]),
        )
        # agent writes by either release: status, limit and skill groups change
        away = Agent(
            AgentId("a000"),
            skill_groups=frozenset({"g", "h"}),
            reception_limit=5,
            account_order=0,
            status=AgentStatus.AWAY,
        )
        current = old.agents.get(AgentId("a000"))
        assert current is not None
        old.agents.put(away, now=30.0, expected_version=current.version)
        census = _census_agrees(url)
        assert census["h"] == (0, 0, 0, 1, 0, 0, 0)
        current = new.agents.get(AgentId("a001"))
        assert current is not None
        offline = attrs_evolve(current.agent, status=AgentStatus.OFFLINE, skill_groups=frozenset())
        new.agents.put(offline, now=31.0, expected_version=current.version)
        census = _census_agrees(url)
        assert census["g"][4] == 0 and census[""][4] == 1
        assert tuple(attrs_astuple(new.agents.census("g"))) == census["g"]
        new.close()
        db6.close()


def _write_function(url: str, name: str = "chatmgmt_write_unit") -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT prosrc FROM pg_proc WHERE proname = %s", (name,)).fetchone()
    assert row is not None
    return str(row[0])


def _index_tuples_read(url: str, table: str) -> int:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT COALESCE(t.seq_tup_read, 0) + COALESCE(("
            "SELECT sum(i.idx_tup_read) FROM pg_stat_user_indexes i WHERE i.relid = t.relid), 0) "
            "FROM pg_stat_user_tables t WHERE t.relname = %s",
            (table,),
        ).fetchone()
    return 0 if row is None else int(row[0])


def _analyze(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")


def _settled(url: str, table: str) -> int:
    """The table's tuples read so far, once the closed sessions' statistics have arrived."""
    last = -1
    for _ in range(50):
        now = _index_tuples_read(url, table)
        if now == last:
            return now
        last = now
        time.sleep(0.2)
    return last


def test_a_unit_of_work_reads_its_rows_by_key_not_the_namespace() -> None:
    """A ranked claim and a release read a handful of agent and rank rows, not every agent of
    the namespace (the version-3 write function's joins were planned as namespace scans)."""
    from chatmgmt.storage.postgres import PostgresStorage

    with _database() as url:
        setup = PostgresStorage(url, "t")
        _agents(setup, AGENTS)
        setup.close()
        _analyze(url)  # the statistics autovacuum keeps in any live database
        before = {t: _settled(url, t) for t in ("chatmgmt_agents", "chatmgmt_agent_ranks")}
        storage = PostgresStorage(url, "t")
        claim = RankedClaim("g", LEAST_BUSY)
        units = 40
        for i in range(units // 2):
            applied = storage.apply(Change(ChatId(f"c{i}"), None, 1.0 + i, claim=claim))
            assert applied.agent_id is not None
            storage.apply(Change(ChatId(f"c{i}"), None, 1.5 + i, release=applied.agent_id))
        storage.close()
        for table, start in before.items():
            read = _settled(url, table) - start
            # a few rows per unit (the pick's index walk, the locked and written rows); a scan
            # of the namespace would be >= AGENTS per unit
            assert read < units * 20, (table, read)


def test_typed_arrays_reach_the_server_as_their_values() -> None:
    """The write call's typed lists (dumped in binary without inspecting their elements)
    read back as the same values: every element type, NULLs, empty arrays, any text."""
    import psycopg

    from chatmgmt.storage._pg_arrays import Bools, Bytes, Floats, Ints, Longs, Texts, register

    register()
    values = [
        (Floats([1.5, 2, -3e300, float("inf")]), "float8[]"),
        (Floats([None, 1.0]), "float8[]"),
        (Ints([1, -2, 2**31 - 1]), "integer[]"),
        (Longs([2**62, -1]), "bigint[]"),
        (Bools([True, False, None]), "boolean[]"),
        (Texts(["a", 'é"{},\\ NULL', "", None, "\u2603"]), "text[]"),
        (Bytes([b"\x00\x01", b"", b"\xff"]), "bytea[]"),
        (Texts([]), "text[]"),
        (Floats([]), "float8[]"),
    ]
    with psycopg.connect(postgres_url(), autocommit=True) as conn:
        sql = "SELECT " + ", ".join(f"%b::{kind}, cardinality(%b::{kind})" for _v, kind in values)
        params = [p for v, _kind in values for p in (v, v)]
        row = conn.execute(sql, params).fetchone()
    assert row is not None
    for i, (value, _kind) in enumerate(values):
        assert row[2 * i] == list(value)
        assert row[2 * i + 1] == len(value)


def test_the_notify_is_sent_after_the_commit_and_only_for_a_committed_unit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PostgreSQL serializes every transaction that notifies behind one lock held through its
    commit's flush, so the unit of work commits first and the NOTIFY follows in a transaction
    of its own (same round trip). The unit is an implicit transaction (no BEGIN, no COMMIT:
    the Sync commits it), after which the server runs the NOTIFY even if the unit failed: it
    only notifies if the unit's write call marked the session, which a failed unit takes back.
    A unit whose precondition fails sends none; a unit the server aborts (the chat created by
    another transaction between its reads and its write) sends one that wakes nobody."""
    import psycopg
    from psycopg_pool import ConnectionPool

    from chatmgmt.errors import PreconditionFailed
    from chatmgmt.storage import _pg_unit, _pg_wire
    from chatmgmt.storage._pg import NOTIFY_CHANNEL, channel_tag
    from chatmgmt.storage.postgres import PostgresStorage
    from chatmgmt.testing._contracts._support import chat, event

    sent: list[tuple[str, Any]] = []
    queue = _pg_wire._Batch.add

    def recording(batch: Any, q: Any) -> int:  # every statement queued for the server
        sent.append((q.sql, q.params))
        return queue(batch, q)

    monkeypatch.setattr(_pg_wire._Batch, "add", recording)
    with _database() as url:
        pool = ConnectionPool(url, min_size=1, max_size=1, open=True)
        listener = psycopg.connect(url, autocommit=True)
        try:
            storage = PostgresStorage(pool, "t")
            _agents(storage, 2)
            listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
            claim = RankedClaim("g", LEAST_BUSY)
            storage.apply(Change(ChatId("c0"), None, 0.5, claim=claim))  # the ranking's index
            del sent[:]
            storage.apply(Change(ChatId("c1"), None, 1.0, claim=claim, events=(event(1),)))
            statements = [sql.strip() for sql, _p in sent]
            assert "BEGIN" not in statements and "COMMIT" not in statements
            write = next(i for i, sql in enumerate(statements) if "chatmgmt_write_unit" in sql)
            notify = next(i for i, sql in enumerate(statements) if "pg_notify" in sql)
            assert write < notify
            # the write function notifies nobody itself
            assert "pg_notify" not in _write_function(url, "chatmgmt_write_unit7")
            tag = channel_tag("t")
            assert [n.payload for n in listener.notifies(timeout=5, stop_after=1)] == [tag]
            # a unit whose precondition fails commits nothing and wakes nobody
            del sent[:]
            with pytest.raises(PreconditionFailed):
                storage.apply(Change(ChatId("gone"), 5, 2.0, claim=claim, events=(event(2),)))
            assert not [sql for sql, _p in sent if "pg_notify" in sql]
            assert list(listener.notifies(timeout=0.3)) == []
            # a unit the server aborts: its NOTIFY is sent (after the Sync) but finds the
            # session unmarked; its events are not stored
            write_params = _pg_unit._write_params

            def racing(*args: Any) -> Any:  # another process creates the chat meanwhile
                monkeypatch.setattr(_pg_unit, "_write_params", write_params)
                other = PostgresStorage(url, "t")
                other.apply(Change(ChatId("c2"), None, 3.0, chat=chat("c2")))
                other.close()
                return write_params(*args)

            monkeypatch.setattr(_pg_unit, "_write_params", racing)
            del sent[:]
            with pytest.raises(PreconditionFailed) as failed:
                storage.apply(Change(ChatId("c2"), None, 3.0, chat=chat("c2"), events=(event(3),)))
            assert failed.value.reason == "exists"
            assert [sql for sql, _p in sent if "pg_notify" in sql]
            assert list(listener.notifies(timeout=0.3)) == []
            assert storage.outbox.pending() == 1
            # the next unit on the same connection notifies again
            storage.apply(Change(ChatId("c3"), None, 4.0, claim=claim, events=(event(4),)))
            assert [n.payload for n in listener.notifies(timeout=5, stop_after=1)] == [tag]
            assert storage.outbox.pending() == 2
        finally:
            listener.close()
            pool.close()


def test_a_failed_unit_leaves_no_warning_in_the_servers_log() -> None:
    """A unit that fails after its reads is rolled back with BEGIN + ROLLBACK (a ROLLBACK
    alone would end the implicit transaction with 'there is no transaction in progress',
    logged by the server on every unit that finds no agent): the connection receives no
    notice, and it is idle afterwards."""
    from psycopg import pq
    from psycopg_pool import ConnectionPool

    from chatmgmt.errors import PreconditionFailed
    from chatmgmt.storage.postgres import PostgresStorage

    notices: list[str] = []
    with _database() as url:
        pool = ConnectionPool(
            url,
            min_size=1,
            max_size=1,
            configure=lambda conn: conn.add_notice_handler(
                lambda d: notices.append(f"{d.severity}: {d.message_primary}")
            ),
            open=True,
        )
        try:
            storage = PostgresStorage(pool, "t")
            _agents(storage, 1)
            claim = RankedClaim("g", LEAST_BUSY)
            for i in range(3):  # the one agent's limit
                assert storage.apply(Change(ChatId(f"c{i}"), None, 1.0, claim=claim)).agent_id
            with pytest.raises(PreconditionFailed) as failed:
                storage.apply(Change(ChatId("c9"), None, 2.0, claim=claim))
            assert failed.value.reason == "no_agent"
            with pool.connection() as conn:
                assert conn.pgconn.transaction_status == pq.TransactionStatus.IDLE
                conn.execute("SELECT 1")  # a round trip: any notice pending has arrived
                conn.rollback()
            assert notices == []
            assert storage.agents.get(AgentId("a000")) is not None
            assert len(storage.agents.get(AgentId("a000")).chats) == 3  # type: ignore[union-attr]
        finally:
            pool.close()


def _loops(plan: dict[str, Any], relation: str) -> int:
    """The loops of every node of an ``EXPLAIN (ANALYZE, FORMAT JSON)`` plan that reads
    ``relation``, summed (a node never run counts 0)."""
    loops = int(plan["Actual Loops"]) if plan.get("Relation Name") == relation else 0
    return loops + sum(_loops(child, relation) for child in plan.get("Plans", ()))


def test_the_heads_of_empty_queues_run_no_ordered_lookup() -> None:
    """The heads statement looks for a queue's first and oldest entries (and the oldest
    one's chat) only when the queue is not empty: an end watches ~5 queues, usually empty."""
    import psycopg

    from chatmgmt.storage._pg import b
    from chatmgmt.storage._pg_reads import _heads_q
    from chatmgmt.storage.postgres import PostgresStorage

    with _database() as url:
        storage = PostgresStorage(url, "t")
        storage.apply(Change(ChatId("w1"), None, 1.0, push=QueuePush("busy", 1.0)))
        storage.close()
        queues = ["q1", "q2", "busy", "q3"]
        q = _heads_q(b("t"), queues)
        params = [b("t"), b("t"), [b(name) for name in queues], b("t")]
        with psycopg.connect(url, autocommit=True) as conn:
            cur = psycopg.ClientCursor(conn)
            cur.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + q.sql, params)
            row = cur.fetchone()
            assert row is not None
            plan = row[0][0]["Plan"]
            cur.execute(q.sql, params)
            rows = cur.fetchall()
    # the count of each of the 4 queues, then the first and the oldest entry of the one queue
    # that holds an entry (each lookup once), and that entry's chat (looked for once)
    assert _loops(plan, "chatmgmt_queue_entries") == 4 + 2
    assert _loops(plan, "chatmgmt_chats") == 1
    assert sorted((int(r[0]), int(r[1]), r[2], r[3]) for r in rows) == [
        (1, 0, None, None),
        (2, 0, None, None),
        (3, 1, "w1", "w1"),
        (4, 0, None, None),
    ]
