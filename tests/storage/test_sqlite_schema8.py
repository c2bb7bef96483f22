"""SQLite schema 8 (fewer pages per commit): a file of schema 7 migrates with every row and
every order kept; no table is AUTOINCREMENT any more, so an outbox entry's number can come
back, and its entry id (number and event id) keeps an old acknowledgement off the new entry;
``chats_by_state`` indexes the open chats only and still answers every state."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import attrs

from chatmgmt.model import ChatId, ChatState, Event, Message, MessageRole, Timer
from chatmgmt.ports import Change
from chatmgmt.storage._codec import encode
from chatmgmt.storage._sqlite_schema import _MIGRATIONS
from chatmgmt.storage._sqlite_sql import OPEN_CHATS, outbox_range
from chatmgmt.storage.sqlite import SCHEMA_VERSION, SQLiteStorage, _put_timer
from storage.test_sqlite_apply import _V1_DDL, NS, _chat


def schema_file(path: Path, version: int) -> sqlite3.Connection:
    """A database as the release of schema ``version`` leaves it (its migrations, in order)."""
    conn = sqlite3.connect(path)
    conn.executescript(_V1_DDL)
    for script in _MIGRATIONS[1:version]:
        if callable(script):
            script(conn)
        else:
            conn.executescript(script)
    conn.execute("UPDATE schema_version SET version = ?", (version,))
    return conn


def insert_chats(conn: sqlite3.Connection, states: dict[str, ChatState]) -> None:
    """Chats as an older release stored them, one per id in ``states``, of version 1 (an
    active one held by agent ``a``)."""
    for cid, state in states.items():
        chat = _chat(cid, 1, state, "a" if state is ChatState.ACTIVE else None)
        conn.execute(
            "INSERT INTO chats (ns, id, version, state, agent_id, data) VALUES (?, ?, 1, ?, ?, ?)",
            (NS, cid, state.value, chat.agent_id, encode(chat)),
        )


def _event(n: int) -> Event:
    return Event(f"evt_{n}", "chat.test", float(n), {"n": n})


def _timer(key: str, due_at: float) -> Timer:
    return Timer(key, due_at, "c1", "test")


def _message(n: int) -> Message:
    return Message(f"m{n}", ChatId("c1"), MessageRole.CUSTOMER, "v", f"text {n}", float(n))


def test_a_schema_7_file_migrates_keeping_every_row_and_order(tmp_path: Path) -> None:
    path = tmp_path / "v7.db"
    conn = schema_file(path, 7)
    # two timers due together, set in the other order than their keys
    for key, due in (("t-b", 5.0), ("t-a", 5.0), ("t-c", 3.0)):
        timer = _timer(key, due)
        conn.execute(
            "INSERT INTO timers (ns, key, due_at, data) VALUES (?, ?, ?, ?)",
            (NS, key, due, encode(timer)),
        )
    for n in (1, 2, 3):
        conn.execute("INSERT INTO outbox (ns, data) VALUES (?, ?)", (NS, encode(_event(n))))
        conn.execute(
            "INSERT INTO messages (ns, chat_id, data) VALUES (?, 'c1', ?)",
            (NS, encode(_message(n))),
        )
    for chat in ("q2", "q1"):
        conn.execute(
            "INSERT INTO queue_entries (ns, queue, chat_id, score) VALUES (?, 'g', ?, 1.0)",
            (NS, chat),
        )
    conn.execute("INSERT INTO hits (ns, key, t, expires) VALUES (?, 'k', 5.0, 100.0)", (NS,))
    insert_chats(conn, {"ca": ChatState.ACTIVE, "ce": ChatState.ENDED})
    conn.commit()
    conn.close()

    storage = SQLiteStorage(path, namespace=NS)
    try:
        assert storage.database.schema_version() == SCHEMA_VERSION == 10
        with storage.database.read() as db:
            (index_sql,) = db.execute(
                "SELECT sql FROM sqlite_schema WHERE name = 'chats_by_state'"
            ).fetchone()
            autoincrement = db.execute(
                "SELECT name FROM sqlite_schema WHERE sql LIKE '%AUTOINCREMENT%'"
            ).fetchall()
            plan = db.execute(
                "EXPLAIN QUERY PLAN SELECT data FROM chats WHERE ns = ? AND state = ? "
                f"AND {OPEN_CHATS} ORDER BY rowid",
                (NS, "active"),
            ).fetchall()
        assert autoincrement == []
        assert index_sql.strip().endswith(f"WHERE {OPEN_CHATS}")
        assert any("chats_by_state" in row[-1] for row in plan), plan
        # the timers: due first, then by key (as on Redis), one set after the migration too
        storage.timers.cancel("t-c")
        with storage.database.write() as db:
            _put_timer(db, NS, _timer("t-0", 5.0))
        due = storage.timers.claim_due(10.0, 10, 60.0)
        assert [t.key for t in due] == ["t-0", "t-a", "t-b"]
        assert [storage.timers.get(t.key) for t in due] == [
            attrs.evolve(t, due_at=70.0) for t in due
        ]
        # the messages, in their order, a new one last
        with storage.database.write() as db:
            db.execute(
                "INSERT INTO messages (ns, chat_id, data) VALUES (?, 'c1', ?)",
                (NS, encode(_message(4))),
            )
        assert [m.id for m in storage.chats.messages(ChatId("c1"))] == ["m1", "m2", "m3", "m4"]
        # the queue keeps its order, the counter its hit
        assert [c for c, _ in storage.queues.peek("g", 5)] == ["q2", "q1"]
        assert storage.counters.hit("k", 6.0, 10.0) == 2
        # the chats by state, open (the partial index) and closed (a scan)
        assert [c.id for c in storage.chats.list(ChatState.ACTIVE)] == ["ca"]
        assert [c.id for c in storage.chats.list(ChatState.ENDED)] == ["ce"]
        assert [c.id for c in storage.chats.list()] == ["ca", "ce"]
        # the outbox: the old entries in order, acknowledged by their new entry ids
        entries = storage.outbox.claim("w", 10, 0.0, 30.0)
        assert [e.event.id for e in entries] == ["evt_1", "evt_2", "evt_3"]
        first = outbox_range(NS)[0]  # schema 10: numbered in the namespace's own range
        assert [e.id for e in entries] == [f"{first + n}:evt_{n}" for n in (1, 2, 3)]
        storage.outbox.ack([entries[2].id])
        # the newest entry's number comes back for the next event; the stale id of the
        # acknowledged one (or a bare number) never deletes it
        storage.outbox.append([_event(4)])
        third = str(first + 3)
        storage.outbox.ack([entries[2].id, third, f"{third}:", ":evt_4", "x:y"])
        assert [e.id for e in storage.outbox.events()] == ["evt_1", "evt_2", "evt_4"]
        (fourth,) = storage.outbox.claim("w", 10, 31.0, 30.0)[2:]
        assert fourth.id == f"{third}:evt_4"
        storage.outbox.ack([fourth.id])
        assert storage.outbox.pending() == 2
    finally:
        storage.close()


def test_an_open_chat_moves_out_of_the_state_index_when_it_ends(tmp_path: Path) -> None:
    """The partial ``chats_by_state`` holds the open chats only: after an end the chat is
    found by a scan (``list(ENDED)``), and no longer among the active ones."""
    storage = SQLiteStorage(tmp_path / "s.db", namespace=NS)
    try:
        chat = _chat("c1", 0, ChatState.ACTIVE, None)
        storage.apply(Change(ChatId("c1"), None, 1.0, chat=chat))
        assert [c.id for c in storage.chats.list(ChatState.ACTIVE)] == ["c1"]
        ended = attrs.evolve(chat, version=1, state=ChatState.ENDED, updated_at=2.0)
        storage.apply(Change(ChatId("c1"), 0, 2.0, chat=ended))
        assert storage.chats.list(ChatState.ACTIVE) == []
        assert storage.chats.list(ChatState.ENDED) == [ended]
        with storage.database.read() as db:
            (indexed,) = db.execute(
                "SELECT COUNT(*) FROM chats INDEXED BY chats_by_state "
                f"WHERE ns = ? AND {OPEN_CHATS}",
                (NS,),
            ).fetchone()
        assert indexed == 0
    finally:
        storage.close()
