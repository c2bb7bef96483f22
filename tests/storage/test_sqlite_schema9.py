"""SQLite schema 9 and the unit's statements: no statement of an open, an end, a queued open
or a transfer builds an ephemeral table (SQLite builds one for an ``IN`` list of more than two
constants and to collect the rows of a multi-row update with triggers: a B-tree opened,
created and closed per run); ``chats_by_state``'s condition is three comparisons, and a file
of schema 8 migrates to it with every open chat indexed; a ranked claim's placeholders are
found before the lock and filled in by a join inside it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import attrs

from chatmgmt import ChatManager
from chatmgmt.model import Agent, AgentId, AgentStatus, ChatId, ChatState, CustomerInfo, EndReason
from chatmgmt.ports import CENSUS_MARKS, Census, Change
from chatmgmt.storage._sqlite_reads import some_queued
from chatmgmt.storage._sqlite_sql import OPEN_CHATS
from chatmgmt.storage._sqlite_unit import _fill, _template
from chatmgmt.storage.sqlite import SCHEMA_VERSION, SQLiteStorage
from chatmgmt.testing import claim_slot
from storage.test_sqlite_apply import NS, _agent
from storage.test_sqlite_db import _summary_and_aggregate
from storage.test_sqlite_schema8 import insert_chats, schema_file


def _explained(conn: sqlite3.Connection, statements: list[str]) -> dict[str, list[str]]:
    """Each distinct data statement traced, with its program's opcodes (EXPLAIN)."""
    ops: dict[str, list[str]] = {}
    for sql in statements:
        if sql in ops or sql.split()[0].upper() in ("BEGIN", "COMMIT", "ROLLBACK", "PRAGMA"):
            continue
        ops[sql] = [row[1] for row in conn.execute("EXPLAIN " + sql)]
    return ops


def test_the_units_statements_build_no_ephemeral_table(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    storage = SQLiteStorage(path, namespace=NS)
    manager = ChatManager(storage=storage)
    try:
        for i, groups in enumerate(({"g"}, {"g", "h"}, {"h"})):
            manager.register_agent(
                Agent(
                    AgentId(f"a{i}"),
                    skill_groups=frozenset(groups),
                    reception_limit=1,
                    status=AgentStatus.ONLINE,
                ),
                now=0.0,
            )
        traced: list[str] = []
        storage.database.connection().set_trace_callback(traced.append)
        customer = CustomerInfo(channel="web")
        first = manager.open_chat(customer, skill_group="g", chat_id="c1")
        second = manager.open_chat(customer, skill_group="g", chat_id="c2")
        queued = manager.open_chat(customer, skill_group="g", chat_id="c3")
        assert first.agent_id is not None and second.agent_id is not None
        assert queued.state is ChatState.QUEUED
        manager.transfer("c1", to_group="h")
        manager.end_chat("c2", reason=EndReason.AGENT)  # frees an agent: c3 is assigned
        manager.end_chat("c1", reason=EndReason.AGENT)
        storage.database.connection().set_trace_callback(None)
        assert manager.get_chat("c3").state is ChatState.ACTIVE
        with storage.database.read() as conn:
            ops = _explained(conn, traced)
        writes = [sql for sql in ops if sql.split()[0].upper() in ("INSERT", "UPDATE")]
        assert any(sql.startswith("UPDATE agent_ranks") for sql in writes)
        assert any(sql.startswith("UPDATE chats") for sql in writes)
        assert any("FROM queue_entries" in sql for sql in ops)
        ephemeral = [sql for sql, codes in ops.items() if "OpenEphemeral" in codes]
        assert ephemeral == []
    finally:
        storage.close()


def test_some_queued_answers_alike_by_lookups_and_by_in(tmp_path: Path) -> None:
    """Up to 8 queues are probed one lookup each, more through ``IN``: the same answers."""
    storage = SQLiteStorage(tmp_path / "s.db", namespace=NS)
    try:
        with storage.database.write() as conn:
            conn.execute(
                "INSERT INTO queue_entries (ns, queue, chat_id, score) VALUES (?, 'q5', 'c', 1)",
                (NS,),
            )
        with storage.database.read() as conn:
            assert some_queued(conn, NS, []) is False
            for n in (1, 2, 5, 6, 8, 9, 20):
                queues = [f"q{i}" for i in range(n)]
                assert some_queued(conn, NS, queues) is (n > 5), n
                assert some_queued(conn, "other", queues) is False
    finally:
        storage.close()


def test_a_schema_8_file_migrates_with_every_open_chat_indexed(tmp_path: Path) -> None:
    path = tmp_path / "v8.db"
    conn = schema_file(path, 8)
    (old_sql,) = conn.execute(
        "SELECT sql FROM sqlite_schema WHERE name = 'chats_by_state'"
    ).fetchone()
    assert "NOT IN" in old_sql
    insert_chats(conn, {"ca": ChatState.ACTIVE, "cq": ChatState.QUEUED, "ce": ChatState.ENDED})
    conn.commit()
    conn.close()

    storage = SQLiteStorage(path, namespace=NS)
    try:
        assert storage.database.schema_version() == SCHEMA_VERSION == 10
        with storage.database.read() as db:
            (index_sql,) = db.execute(
                "SELECT sql FROM sqlite_schema WHERE name = 'chats_by_state'"
            ).fetchone()
            indexed = db.execute(
                "SELECT id FROM chats INDEXED BY chats_by_state "
                f"WHERE ns = ? AND {OPEN_CHATS} ORDER BY id",
                (NS,),
            ).fetchall()
            plan = db.execute(
                "EXPLAIN QUERY PLAN SELECT data FROM chats WHERE ns = ? AND state = ? "
                f"AND {OPEN_CHATS} ORDER BY rowid",
                (NS, "queued"),
            ).fetchall()
        assert "NOT IN" not in index_sql
        assert index_sql.strip().endswith(f"WHERE {OPEN_CHATS}")
        assert indexed == [("ca",), ("cq",)]
        assert any("chats_by_state" in row[-1] for row in plan), plan
        assert [c.id for c in storage.chats.list(ChatState.QUEUED)] == ["cq"]
        assert [c.id for c in storage.chats.list(ChatState.ENDED)] == ["ce"]
        # a chat that ends after the migration leaves the index
        active = storage.chats.get(ChatId("ca"))
        assert active is not None
        ended = attrs.evolve(active, version=2, state=ChatState.ENDED, agent_id=None)
        storage.apply(Change(ChatId("ca"), 1, 3.0, chat=ended))
        assert storage.chats.list(ChatState.ACTIVE) == []
        assert [c.id for c in storage.chats.list(ChatState.ENDED)] == ["ca", "ce"]
        # the census: a claim that fills an agent moves its rank rows to another category
        # (the narrowed trigger), one that does not keeps them (the other trigger)
        storage.agents.put(_agent("a1", 2), 4.0)
        storage.agents.put(_agent("a2", 1, groups=frozenset({"g", "h"})), 4.0)
        for agent, chat in (("a1", "x1"), ("a2", "x2"), ("a1", "x3")):
            assert claim_slot(storage, agent, chat, 5.0)
        summary, aggregate = _summary_and_aggregate(storage)
        assert summary == aggregate
        assert storage.agents.census("g") == Census(full=2, capacity=3, load=3)
    finally:
        storage.close()


def test_placeholders_are_split_before_the_lock_and_filled_in_by_a_join() -> None:
    """A ranked claim's texts hold the picked agent's one-off id and the census marks as JSON
    string literals: split around them before the lock, filled in inside it; a literal with
    no value stays, and a text without any is kept as it is."""
    placeholder = json.dumps("\x00" + "0123456789abcdef")
    eligible, busy = json.dumps(CENSUS_MARKS["eligible"]), json.dumps(CENSUS_MARKS["busy"])
    text = json.dumps(
        {"agent": "\x00" + "0123456789abcdef", "n": CENSUS_MARKS["eligible"], "b": "x"}
    )
    text = text[:-1] + f', "busy": {busy}, "again": {placeholder}}}'
    template = _template(text)
    assert isinstance(template, list) and len(template) == 9
    filled = _fill(template, {placeholder: json.dumps("a7"), eligible: "3"})
    assert json.loads(filled) == {
        "agent": "a7",
        "n": 3,
        "b": "x",
        "busy": CENSUS_MARKS["busy"],
        "again": "a7",
    }
    plain = json.dumps({"a": "b"})
    assert _template(plain) is plain
    assert _fill(plain, {placeholder: "x"}) is plain
