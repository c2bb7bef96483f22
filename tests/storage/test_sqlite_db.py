"""SQLite's database below the stores: the census summary (schema 7: ``agent_census`` kept by
triggers on ``agent_ranks`` always equals the aggregate of the rank rows it summarizes, through
random changes and across the migration from a schema 6 file), the WAL checkpoints, and how a
writer waits for the write lock (its turn on the writers' lock file, then SQLite's lock)."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import random
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from chatmgmt.model import AgentId, AgentStatus, ChatId
from chatmgmt.ports import Census, Change
from chatmgmt.storage.sqlite import SCHEMA_VERSION, SQLiteStorage
from chatmgmt.testing import claim_slot
from storage.test_sqlite_apply import (
    NS,
    Reference,
    _agent,
    _run,
    drop_census_summary,
)

_SUMMARY = "SELECT ns, grp, category, n, lim, active FROM agent_census WHERE n > 0 ORDER BY 1, 2, 3"
_AGGREGATE = (
    "SELECT ns, grp, category, COUNT(*), SUM(lim), SUM(active) FROM agent_ranks "
    "GROUP BY ns, grp, category ORDER BY 1, 2, 3"
)


def _summary_and_aggregate(storage: SQLiteStorage) -> tuple[list[object], list[object]]:
    with storage.database.read() as conn:
        empty = conn.execute(
            "SELECT COUNT(*) FROM agent_census WHERE n = 0 AND (lim != 0 OR active != 0)"
        ).fetchone()[0]
        assert empty == 0  # a category nobody is in holds no limits and no chats
        return conn.execute(_SUMMARY).fetchall(), conn.execute(_AGGREGATE).fetchall()


@pytest.mark.parametrize("seed", range(3))
def test_the_summary_equals_the_rank_rows_after_random_changes(seed: int) -> None:
    storage = SQLiteStorage(":memory:", namespace=NS)
    try:
        outcomes = _run(random.Random(seed), Reference(), [storage], 200)
        summary, aggregate = _summary_and_aggregate(storage)
        assert summary == aggregate
        assert len(summary) >= 4  # several groups and categories were reached
        assert outcomes.get("ok", 0) > 50
    finally:
        storage.close()


def test_a_group_change_and_a_removed_status_move_the_agent_between_rows() -> None:
    storage = SQLiteStorage(":memory:", namespace=NS)
    try:
        storage.agents.put(_agent("a", 2), 0.0)
        assert claim_slot(storage, "a", "c1", 1.0)
        assert storage.agents.census("g") == Census(eligible=1, capacity=2, load=1)
        moved = _agent("a", 3, AgentStatus.AWAY, groups=frozenset({"h"}))
        storage.agents.put(moved, 2.0, expected_version=1)
        assert storage.agents.census("g") == Census()
        assert storage.agents.census("h") == Census(away=1)
        assert storage.agents.census("") == Census(away=1)
        storage.agents.put(_agent("a", 1, groups=frozenset({"h"})), 3.0, expected_version=2)
        assert storage.agents.census("h") == Census(full=1, capacity=1, load=1)
        summary, aggregate = _summary_and_aggregate(storage)
        assert summary == aggregate
    finally:
        storage.close()


def test_a_schema_6_file_gets_the_summary_of_its_agents(tmp_path: Path) -> None:
    path = tmp_path / "v6.db"
    storage = SQLiteStorage(path, namespace=NS)
    storage.agents.put(_agent("a", 3), 0.0)
    storage.agents.put(_agent("b", 1), 0.0)
    storage.agents.put(_agent("w", 2, AgentStatus.AWAY), 0.0)
    assert claim_slot(storage, "b", "c1", 1.0)
    storage.close()
    conn = sqlite3.connect(path)
    drop_census_summary(conn)
    conn.execute("UPDATE schema_version SET version = 6")
    conn.commit()
    conn.close()
    storage = SQLiteStorage(path, namespace=NS)
    try:
        assert storage.database.schema_version() == SCHEMA_VERSION == 10
        expected = Census(eligible=1, full=1, away=1, capacity=4, load=1)
        assert storage.agents.census("g") == expected == storage.agents.census("")
        # the triggers keep it from there on
        assert claim_slot(storage, "a", "c2", 2.0)
        assert storage.agents.census("g") == Census(eligible=1, full=1, away=1, capacity=4, load=2)
        load = storage.agents.get(AgentId("a"))
        assert load is not None and load.chats == {"c2"}
        summary, aggregate = _summary_and_aggregate(storage)
        assert summary == aggregate
    finally:
        storage.close()


def test_the_wal_is_checkpointed_every_so_many_commits(tmp_path: Path) -> None:
    """SQLite's automatic checkpoint is off; write() checkpoints every CHECKPOINT_EVERY commits
    of a connection, so one writer's WAL stays at about that many commits' pages instead of
    growing with every commit (the WAL restarts from its start after a full checkpoint)."""
    from chatmgmt.storage._sqlite_db import CHECKPOINT_EVERY

    path = tmp_path / "wal.db"
    storage = SQLiteStorage(path, namespace=NS)
    try:
        conn = storage.database.connection()
        assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        storage.agents.put(_agent("a", 1), 0.0)

        def commits(n: int, start: int) -> None:
            for i in range(start, start + n):  # a claim and its release: two commits
                assert claim_slot(storage, "a", f"c{i}", float(i))
                storage.apply(Change(ChatId(f"c{i}"), None, float(i) + 0.5, release=AgentId("a")))

        commits(CHECKPOINT_EVERY, 0)
        wal = Path(str(path) + "-wal")
        after_some = wal.stat().st_size
        commits(4 * CHECKPOINT_EVERY, CHECKPOINT_EVERY)
        assert 0 < wal.stat().st_size <= 2 * after_some
        assert storage.agents.census("g") == Census(eligible=1, capacity=1)
    finally:
        storage.close()


def test_a_wal_kept_long_by_a_reader_restarts_once_the_reader_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past WAL_RESTART_FRAMES pages, a checkpoint waits (briefly) for the readers so the WAL
    starts over; a reader that stays does not hold writers up beyond that short wait, and
    once it is gone the WAL restarts and stops growing."""
    from chatmgmt.storage import _sqlite_db

    monkeypatch.setattr(_sqlite_db, "CHECKPOINT_EVERY", 4)
    monkeypatch.setattr(_sqlite_db, "WAL_RESTART_FRAMES", 40)
    path = tmp_path / "reader.db"
    storage = SQLiteStorage(path, namespace=NS, timeout=30.0)
    reader = sqlite3.connect(path, isolation_level=None)
    try:
        storage.agents.put(_agent("a", 1), 0.0)
        reader.execute("BEGIN")
        assert reader.execute("SELECT COUNT(*) FROM agents").fetchone() == (1,)

        def pairs(start: int, n: int) -> None:
            for i in range(start, start + n):
                assert claim_slot(storage, "a", f"c{i}", float(i))
                storage.apply(Change(ChatId(f"c{i}"), None, i + 0.5, release=AgentId("a")))

        def wal_frames() -> int:
            row = storage.database.connection().execute("PRAGMA wal_checkpoint(PASSIVE)")
            return int(row.fetchone()[1])

        statements: list[str] = []
        storage.database.connection().set_trace_callback(statements.append)
        pairs(0, 60)  # each RESTART attempt gives up after RESTART_WAIT_MS, not 30 s
        storage.database.connection().set_trace_callback(None)
        held_up = wal_frames()
        assert held_up > 40  # the reader's snapshot kept the WAL from starting over
        passive = statements.count("PRAGMA wal_checkpoint(PASSIVE)")
        restart = statements.count("PRAGMA wal_checkpoint(RESTART)")
        assert passive == 120 // 4
        # a failed RESTART is tried again only after another WAL_RESTART_FRAMES pages
        assert 1 <= restart <= held_up // 40 < passive
        # the reader still sees its snapshot
        assert reader.execute("SELECT COUNT(*) FROM agents").fetchone() == (1,)
        reader.execute("COMMIT")
        pairs(60, 60)
        assert wal_frames() < held_up  # restarted: the WAL began again from its start
        assert storage.agents.census("g") == Census(eligible=1, capacity=1)
    finally:
        reader.close()
        storage.close()


def test_a_writer_waits_for_the_lock_and_gets_it_once_released(tmp_path: Path) -> None:
    """Another connection holds the write lock; a unit of work waits (short sleeps, not
    SQLite's handler) and commits once the lock is released; the connection's busy timeout
    is SQLite's again afterwards (for its reads)."""
    import threading

    path = tmp_path / "lock.db"
    storage = SQLiteStorage(path, namespace=NS, timeout=30.0)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        storage.agents.put(_agent("a", 1), 0.0)
        other.execute("BEGIN IMMEDIATE")
        timer = threading.Timer(0.2, lambda: other.execute("COMMIT"))
        timer.start()
        assert claim_slot(storage, "a", "c1", 1.0)  # waited for the other writer
        timer.join()
        conn = storage.database.connection()
        assert conn.execute("PRAGMA busy_timeout").fetchone() == (30000,)
        load = storage.agents.get(AgentId("a"))
        assert load is not None and load.chats == {"c1"}
    finally:
        other.close()
        storage.close()


def test_a_writer_gives_up_after_its_timeout_and_commits_nothing(tmp_path: Path) -> None:
    path = tmp_path / "stuck.db"
    storage = SQLiteStorage(path, namespace=NS, timeout=0.1)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        storage.agents.put(_agent("a", 1), 0.0)
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            claim_slot(storage, "a", "c1", 1.0)
        other.execute("ROLLBACK")
        conn = storage.database.connection()
        assert conn.execute("PRAGMA busy_timeout").fetchone() == (100,)
        assert not conn.in_transaction
        load = storage.agents.get(AgentId("a"))
        assert load is not None and load.chats == frozenset()
        assert claim_slot(storage, "a", "c1", 2.0)  # the lock is free again
    finally:
        other.close()
        storage.close()


def test_an_interrupted_wait_puts_the_busy_timeout_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a writers' lock file (no ``flock``), a writer interrupted while it sleeps
    between two tries for the lock (a signal, a cancelled thread) leaves the connection as it
    found it: SQLite's busy timeout back on for its reads, no transaction open."""
    from chatmgmt.storage import _sqlite_db

    monkeypatch.setattr(_sqlite_db, "fcntl", None)
    path = tmp_path / "interrupted.db"
    storage = SQLiteStorage(path, namespace=NS, timeout=30.0)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        storage.agents.put(_agent("a", 1), 0.0)
        other.execute("BEGIN IMMEDIATE")

        def interrupted(_seconds: float) -> None:
            raise KeyboardInterrupt

        monkeypatch.setattr(_sqlite_db.time, "sleep", interrupted)
        with pytest.raises(KeyboardInterrupt):
            claim_slot(storage, "a", "c1", 1.0)
        monkeypatch.setattr(_sqlite_db.time, "sleep", time.sleep)
        other.execute("ROLLBACK")
        conn = storage.database.connection()
        assert conn.execute("PRAGMA busy_timeout").fetchone() == (30000,)
        assert not conn.in_transaction
        assert claim_slot(storage, "a", "c1", 2.0)
    finally:
        other.close()
        storage.close()


def test_writers_queue_on_the_lock_file_and_each_gets_its_turn(tmp_path: Path) -> None:
    """A writer whose turn another thread holds (inside its unit) sleeps until that unit
    ends, then commits; SQLite's busy timeout is never touched on the way."""
    path = tmp_path / "queue.db"
    storage = SQLiteStorage(path, namespace=NS, timeout=30.0)
    try:
        storage.agents.put(_agent("a", 2), 0.0)
        inside, leave = threading.Event(), threading.Event()

        def hold() -> None:
            with storage.database.write():
                inside.set()
                leave.wait(10)

        holder = threading.Thread(target=hold)
        holder.start()
        assert inside.wait(10)
        done: list[bool] = []
        waiter = threading.Thread(target=lambda: done.append(claim_slot(storage, "a", "c1", 1.0)))
        waiter.start()
        waiter.join(0.3)
        assert waiter.is_alive() and not done  # queued behind the holder's turn
        leave.set()
        holder.join(10)
        waiter.join(10)
        assert done == [True]
        assert Path(str(path) + "-wlock").exists()
        conn = storage.database.connection()
        assert conn.execute("PRAGMA busy_timeout").fetchone() == (30000,)
        load = storage.agents.get(AgentId("a"))
        assert load is not None and load.chats == {"c1"}
    finally:
        storage.close()


def _die_in_turn(path: str, ready: object) -> None:
    storage = SQLiteStorage(path, namespace=NS)
    with storage.database.write():
        ready.set()  # type: ignore[attr-defined]
        time.sleep(60)  # killed here, its turn and SQLite's write lock held


def test_the_lock_file_has_the_database_files_permissions(tmp_path: Path) -> None:
    """Created like SQLite's ``-wal`` and ``-shm``: with the database file's mode, so every
    user who may write the database may queue."""
    path = tmp_path / "mode.db"
    sqlite3.connect(path).close()
    os.chmod(path, 0o660)
    storage = SQLiteStorage(path, namespace=NS)
    try:
        storage.agents.put(_agent("a", 1), 0.0)
        assert Path(str(path) + "-wlock").stat().st_mode & 0o777 == 0o660 & ~_umask()
    finally:
        storage.close()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_process_killed_in_its_turn_releases_it(tmp_path: Path) -> None:
    """kill -9 of a process inside its unit: the kernel releases its turn (and SQLite its
    lock); the next writer commits at once and nothing of the dead unit is there."""
    path = tmp_path / "killed.db"
    storage = SQLiteStorage(path, namespace=NS, timeout=5.0)
    try:
        storage.agents.put(_agent("a", 1), 0.0)
        ctx = multiprocessing.get_context("spawn")
        ready = ctx.Event()
        proc = ctx.Process(target=_die_in_turn, args=(str(path), ready))
        proc.start()
        assert ready.wait(60)
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)
        probe = os.open(str(path) + "-wlock", os.O_RDONLY)
        try:  # the dead process's turn is free: taken at once, without waiting
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(probe, fcntl.LOCK_UN)
        finally:
            os.close(probe)
        started = time.monotonic()
        assert claim_slot(storage, "a", "c1", 1.0)
        assert time.monotonic() - started < 4.0  # not SQLite's timeout: the turn was free
        load = storage.agents.get(AgentId("a"))
        assert load is not None and load.chats == {"c1"}
    finally:
        storage.close()


def test_without_a_lock_file_writers_wait_in_short_sleeps(tmp_path: Path) -> None:
    """Where the lock file can be neither created nor opened (here its name is a link into
    a directory that does not exist), writers fall back to short sleeps between tries: they
    still wait for each other and all commit."""
    path = tmp_path / "nolock.db"
    Path(str(path) + "-wlock").symlink_to(tmp_path / "missing" / "wlock")
    storage = SQLiteStorage(path, namespace=NS, timeout=30.0)
    try:
        storage.agents.put(_agent("a", 40), 0.0)
        threads = [
            threading.Thread(
                target=lambda i=i: [claim_slot(storage, "a", f"c{i}-{n}", 1.0) for n in range(10)]
            )
            for i in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        load = storage.agents.get(AgentId("a"))
        assert load is not None and len(load.chats) == 40
        assert storage.database._fds == []  # no lock file was opened
    finally:
        storage.close()
