"""SQLite schema 10: the outbox without an index on the namespace. Each namespace numbers its
entries in its own range of row numbers (``_sqlite_sql.outbox_range``), so its entries are found
by number alone; two namespaces whose ranges coincide are told apart by the ``ns`` column; a
file of schema 9 migrates with every entry in its namespace's range, in order, its lease kept."""

from __future__ import annotations

import itertools
import sqlite3
import zlib
from pathlib import Path

from chatmgmt.model import Event
from chatmgmt.storage._codec import encode
from chatmgmt.storage._sqlite_sql import OUTBOX_INSERT, OUTBOX_SPAN, outbox_range
from chatmgmt.storage.sqlite import SCHEMA_VERSION, SQLiteStorage
from storage.test_sqlite_schema8 import schema_file


def _event(name: str) -> Event:
    return Event(f"evt_{name}", "chat.test", 1.0, {"n": name})


def _same_range() -> tuple[str, str]:
    """Two namespace names whose outbox ranges coincide (equal low 16 bits of their CRC-32)."""
    seen: dict[int, str] = {}
    for n in itertools.count():
        name = f"ns{n}"
        low = zlib.crc32(name.encode()) & 0xFFFF
        if low in seen:
            return seen[low], name
        seen[low] = name
    raise AssertionError("unreachable")


def test_each_namespace_numbers_its_entries_in_its_own_range(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    left, right = SQLiteStorage(path, namespace="left"), SQLiteStorage(path, namespace="right")
    try:
        assert outbox_range("left") != outbox_range("right")
        for n in range(3):
            left.outbox.append([_event(f"l{n}")])
            right.outbox.append([_event(f"r{n}")])
        for storage, ns, prefix in ((left, "left", "l"), (right, "right", "r")):
            lo, hi = outbox_range(ns)
            entries = storage.outbox.claim("w", 10, 0.0, 30.0)
            assert [e.event.id for e in entries] == [f"evt_{prefix}{n}" for n in range(3)]
            assert [int(e.id.split(":")[0]) for e in entries] == [lo + 1, lo + 2, lo + 3]
            assert hi == lo + OUTBOX_SPAN
            assert storage.outbox.pending() == 3
        with left.database.read() as conn:
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema")}
            plan = conn.execute(
                "EXPLAIN QUERY PLAN " + OUTBOX_INSERT, (*outbox_range("left"), "left", "{}")
            ).fetchall()
        assert "outbox_by_ns" not in names
        assert any("INTEGER PRIMARY KEY (rowid>? AND rowid<?)" in row[-1] for row in plan), plan
    finally:
        left.close()
        right.close()


def test_namespaces_sharing_a_range_keep_their_own_entries(tmp_path: Path) -> None:
    first, second = _same_range()
    assert outbox_range(first) == outbox_range(second)
    path = tmp_path / "o.db"
    a, b = SQLiteStorage(path, namespace=first), SQLiteStorage(path, namespace=second)
    try:
        a.outbox.append([_event("a1"), _event("a2")])
        b.outbox.append([_event("b1")])
        a.outbox.append([_event("a3")])
        assert [e.id for e in a.outbox.events()] == ["evt_a1", "evt_a2", "evt_a3"]
        assert [e.id for e in b.outbox.events()] == ["evt_b1"]
        assert (a.outbox.pending(), b.outbox.pending()) == (3, 1)
        (entry,) = b.outbox.claim("w", 10, 0.0, 30.0)
        assert entry.event.id == "evt_b1"
        a.outbox.ack([entry.id])  # another namespace's entry id: nothing deleted
        assert b.outbox.pending() == 1
        b.outbox.ack([entry.id])
        assert (a.outbox.pending(), b.outbox.pending()) == (3, 0)
        assert [e.event.id for e in a.outbox.claim("w", 10, 0.0, 30.0)] == [
            "evt_a1",
            "evt_a2",
            "evt_a3",
        ]
    finally:
        a.close()
        b.close()


def test_a_schema_9_file_migrates_each_namespace_into_its_range(tmp_path: Path) -> None:
    path = tmp_path / "v9.db"
    conn = schema_file(path, 9)
    rows = [("left", "l1", 0.0, 0), ("right", "r1", 0.0, 0), ("left", "l2", 50.0, 1)]
    rows += [("left", "l3", 0.0, 0), ("right", "r2", 0.0, 0)]
    for ns, name, lease_until, deliveries in rows:
        conn.execute(
            "INSERT INTO outbox (ns, data, lease_until, deliveries) VALUES (?, ?, ?, ?)",
            (ns, encode(_event(name)), lease_until, deliveries),
        )
    assert conn.execute("SELECT name FROM sqlite_schema WHERE name = 'outbox_by_ns'").fetchone()
    conn.commit()
    conn.close()

    left, right = SQLiteStorage(path, namespace="left"), SQLiteStorage(path, namespace="right")
    try:
        assert left.database.schema_version() == SCHEMA_VERSION == 10
        with left.database.read() as db:
            stored = db.execute(
                "SELECT seq, ns, lease_until, deliveries FROM outbox ORDER BY seq"
            ).fetchall()
            gone = db.execute("SELECT name FROM sqlite_schema WHERE name = 'outbox_by_ns'")
            assert gone.fetchone() is None
        lo_left, lo_right = outbox_range("left")[0], outbox_range("right")[0]
        assert sorted(stored) == sorted(
            [
                (lo_left + 1, "left", 0.0, 0),
                (lo_left + 2, "left", 50.0, 1),
                (lo_left + 3, "left", 0.0, 0),
                (lo_right + 1, "right", 0.0, 0),
                (lo_right + 2, "right", 0.0, 0),
            ]
        )
        assert [e.id for e in left.outbox.events()] == ["evt_l1", "evt_l2", "evt_l3"]
        # the leased entry waits for its lease; the others are claimed by their new ids
        entries = left.outbox.claim("w", 10, 10.0, 30.0)
        assert [(e.event.id, e.deliveries) for e in entries] == [("evt_l1", 1), ("evt_l3", 1)]
        left.outbox.ack([e.id for e in entries])
        (again,) = left.outbox.claim("w", 10, 60.0, 30.0)
        assert (again.event.id, again.deliveries) == ("evt_l2", 2)
        left.outbox.append([_event("l4")])
        assert [e.id for e in left.outbox.events()] == ["evt_l2", "evt_l4"]
        assert [e.id for e in right.outbox.events()] == ["evt_r1", "evt_r2"]
    finally:
        left.close()
        right.close()


def test_the_first_and_last_ranges_stay_within_sqlite_row_numbers() -> None:
    assert 0xFFFF * OUTBOX_SPAN + OUTBOX_SPAN - 1 == 2**63 - 1
    with sqlite3.connect(":memory:") as conn:
        conn.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY)")
        conn.execute("INSERT INTO t VALUES (?)", (2**63 - 1,))
