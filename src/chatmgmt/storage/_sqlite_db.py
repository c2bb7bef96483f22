"""The SQLite adapter's database: the versioned schema, its migrations, and the connections.

:class:`SQLiteDatabase` is one database file shared by any number of namespaces (see
:mod:`chatmgmt.storage.sqlite` for the stores and the unit of work). Opening a database applies
the missing migrations of :data:`_MIGRATIONS` in order and refuses a database written by a newer
release; each thread gets its own connection (``":memory:"`` databases share one under a lock).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import attrs

from ..errors import StorageError
from ..model import AgentLoad, Ranking, RankKey
from . import _sqlite_unit as _unit
from ._codec import decode

__all__ = ["SCHEMA_VERSION", "SQLiteDatabase", "migrate"]

# --------------------------------------------------------------------------- schema


def _capacity_columns(conn: sqlite3.Connection) -> None:
    """Migration 6: ``agents.channels`` and ``agents.recent`` (JSON, NULL while empty: the
    held chats' channels and the assignment times of capacity per channel and the fairness
    cap); nothing is rewritten. Added when missing, since migration 5 already writes loads
    through this release's columns."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(agents)")}
    for name in ("channels", "recent"):
        if name not in have:
            conn.execute(f"ALTER TABLE agents ADD COLUMN {name} TEXT")


def _load_columns(conn: sqlite3.Connection) -> None:
    """Migration 5: split each stored load into its configuration (``data``) and columns."""
    _capacity_columns(conn)
    for name, kind, default in (
        ("chats", "TEXT", "'[]'"),
        ("inactive", "TEXT", "'[]'"),
        ("last_assigned_at", "REAL", "0"),
        ("idle_since", "REAL", "0"),
        ("tiebreak", "REAL", "0"),
    ):
        conn.execute(f"ALTER TABLE agents ADD COLUMN {name} {kind} NOT NULL DEFAULT {default}")
    rows = conn.execute("SELECT ns, version, data FROM agents").fetchall()
    for ns, version, data in rows:
        load = attrs.evolve(decode(data, AgentLoad), version=int(version))
        _unit.write_load(conn, ns, load, None)


_MIGRATIONS: tuple[str | Callable[[sqlite3.Connection], None], ...] = (
    # 1: the initial schema
    """
    CREATE TABLE customers (
        ns TEXT NOT NULL, partner_id TEXT NOT NULL, version INTEGER NOT NULL, data TEXT NOT NULL,
        PRIMARY KEY (ns, partner_id)
    ) WITHOUT ROWID;
    CREATE TABLE agents (
        ns TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL,
        PRIMARY KEY (ns, id)
    ) WITHOUT ROWID;
    CREATE TABLE agent_ranks (
        ns TEXT NOT NULL, grp TEXT NOT NULL, agent_id TEXT NOT NULL,
        eligible INTEGER NOT NULL, status TEXT NOT NULL, lim INTEGER NOT NULL,
        active INTEGER NOT NULL, saturation REAL NOT NULL, free INTEGER NOT NULL,
        last_assigned_at REAL NOT NULL, idle_since REAL NOT NULL, tier INTEGER NOT NULL,
        account_order INTEGER NOT NULL, tiebreak REAL NOT NULL,
        PRIMARY KEY (ns, grp, agent_id)
    ) WITHOUT ROWID;
    CREATE INDEX agent_ranks_by_agent ON agent_ranks (ns, agent_id);
    CREATE TABLE chats (
        ns TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, state TEXT NOT NULL,
        agent_id TEXT, data TEXT NOT NULL,
        UNIQUE (ns, id)
    );
    CREATE INDEX chats_by_state ON chats (ns, state);
    CREATE INDEX chats_by_agent ON chats (ns, agent_id);
    CREATE TABLE messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, ns TEXT NOT NULL, chat_id TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX messages_by_chat ON messages (ns, chat_id, seq);
    CREATE TABLE sticky (
        ns TEXT NOT NULL, partner_id TEXT NOT NULL, data TEXT NOT NULL,
        PRIMARY KEY (ns, partner_id)
    ) WITHOUT ROWID;
    CREATE TABLE queue_entries (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, ns TEXT NOT NULL, queue TEXT NOT NULL,
        chat_id TEXT NOT NULL, score REAL NOT NULL,
        UNIQUE (ns, queue, chat_id)
    );
    CREATE INDEX queue_order ON queue_entries (ns, queue, score, seq);
    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, ns TEXT NOT NULL, data TEXT NOT NULL,
        lease_until REAL NOT NULL DEFAULT 0, deliveries INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX outbox_by_ns ON outbox (ns, seq);
    CREATE TABLE timers (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, ns TEXT NOT NULL, key TEXT NOT NULL,
        due_at REAL NOT NULL, data TEXT NOT NULL,
        UNIQUE (ns, key)
    );
    CREATE INDEX timers_due ON timers (ns, due_at, seq);
    CREATE TABLE hits (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, ns TEXT NOT NULL, key TEXT NOT NULL,
        t REAL NOT NULL
    );
    CREATE INDEX hits_by_key ON hits (ns, key, t);
    """,
    # 2: the agent's configuration version (compare-and-set of AgentStore.put), and each rank
    # row's census category (assignment._load.census_category), backfilled from the columns
    # version 1 kept (status, eligible); loads written by version 1 decode with version 0
    """
    ALTER TABLE agents ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE agent_ranks ADD COLUMN category TEXT NOT NULL DEFAULT '';
    UPDATE agent_ranks SET category = CASE
        WHEN status = 'online' AND eligible = 1 THEN 'eligible'
        WHEN status = 'online' THEN 'full'
        ELSE status END
    """,
    # 3: what the library keeps about a chat moves out of the host's ``attributes`` into
    # typed fields of Chat (releases before it kept them under these attribute keys)
    """
    UPDATE chats SET data = json_remove(
        json_set(
            data,
            '$.queue', json_extract(data, '$.attributes.queue'),
            '$.queued_at', json_extract(data, '$.attributes.queued_at'),
            '$.leave_message', json_extract(data, '$.attributes.offer_leave_message'),
            '$.submission', json(json_extract(data, '$.attributes.submission')),
            '$.satisfaction', json(json_extract(data, '$.attributes.satisfaction')),
            '$.escalation', json(json_extract(data, '$.attributes.escalation')),
            '$.timers_fired', json(coalesce(json_extract(data, '$.attributes.timers_fired'), '{}')),
            '$.sticky_waited', json(CASE WHEN json_extract(data, '$.attributes.sticky_waited')
                THEN 'true' ELSE 'false' END),
            '$.unverified_partner_id', json_extract(data, '$.attributes.unverified_partner_id')
        ),
        '$.attributes.queue', '$.attributes.queued_at', '$.attributes.offer_leave_message',
        '$.attributes.submission', '$.attributes.satisfaction', '$.attributes.escalation',
        '$.attributes.timers_fired', '$.attributes.sticky_waited',
        '$.attributes.unverified_partner_id'
    )
    WHERE json_valid(data)
    """,
    # 4: retention. ``chats.retain_from`` is ports.retention_start of the stored chat (NULL
    # while the chat must be kept), indexed so that a purge finds the oldest first; backfilled
    # from the stored chats. ``hits.expires`` is when a hit leaves its window, indexed so that
    # every hit deletes a few expired hits of other keys; hits written by version 3 do not know
    # their window and get the longest one settings accept.
    """
    ALTER TABLE chats ADD COLUMN retain_from REAL;
    UPDATE chats SET retain_from = json_extract(data, '$.updated_at')
    WHERE json_valid(data) AND (
        state IN ('ended', 'abandoned')
        OR (state = 'left_message' AND json_extract(data, '$.last_agent_message_at') IS NOT NULL)
    );
    CREATE INDEX chats_retention ON chats (ns, retain_from) WHERE retain_from IS NOT NULL;
    ALTER TABLE hits ADD COLUMN expires REAL NOT NULL DEFAULT 0;
    UPDATE hits SET expires = t + 316224000.0;
    CREATE INDEX hits_expiry ON hits (ns, expires)
    """,
    # 5: the agent's load as columns (chats and inactive chats as JSON lists of ids, the
    # ranking times), its configuration alone in ``data``; rewritten in Python (see
    # _load_columns) so that every float stays exactly the value stored
    _load_columns,
    # 6: capacity per channel and the fairness cap (see _capacity_columns)
    _capacity_columns,
    # 7: the census of every skill group kept as it changes: per (group, census category) the
    # agents' count, limits and active chats, summed by triggers on ``agent_ranks`` (every rank
    # row written, by any release, counts), so that AgentStore.census and the unit of work's
    # census report read a few rows instead of aggregating every agent of the group
    """
    CREATE TABLE agent_census (
        ns TEXT NOT NULL, grp TEXT NOT NULL, category TEXT NOT NULL,
        n INTEGER NOT NULL, lim INTEGER NOT NULL, active INTEGER NOT NULL,
        PRIMARY KEY (ns, grp, category)
    ) WITHOUT ROWID;
    INSERT INTO agent_census (ns, grp, category, n, lim, active)
        SELECT ns, grp, category, COUNT(*), SUM(lim), SUM(active) FROM agent_ranks
        GROUP BY ns, grp, category;
    CREATE TRIGGER agent_census_insert AFTER INSERT ON agent_ranks BEGIN
        INSERT INTO agent_census (ns, grp, category, n, lim, active)
            VALUES (new.ns, new.grp, new.category, 1, new.lim, new.active)
            ON CONFLICT (ns, grp, category) DO UPDATE SET n = n + 1,
            lim = lim + excluded.lim, active = active + excluded.active;
    END;
    CREATE TRIGGER agent_census_delete AFTER DELETE ON agent_ranks BEGIN
        UPDATE agent_census SET n = n - 1, lim = lim - old.lim, active = active - old.active
            WHERE ns = old.ns AND grp = old.grp AND category = old.category;
    END;
    CREATE TRIGGER agent_census_same AFTER UPDATE OF ns, grp, category, lim, active
        ON agent_ranks
        WHEN new.ns = old.ns AND new.grp = old.grp AND new.category = old.category BEGIN
        UPDATE agent_census SET lim = lim + new.lim - old.lim,
            active = active + new.active - old.active
            WHERE ns = new.ns AND grp = new.grp AND category = new.category;
    END;
    CREATE TRIGGER agent_census_moved AFTER UPDATE OF ns, grp, category, lim, active
        ON agent_ranks
        WHEN new.ns != old.ns OR new.grp != old.grp OR new.category != old.category BEGIN
        UPDATE agent_census SET n = n - 1, lim = lim - old.lim, active = active - old.active
            WHERE ns = old.ns AND grp = old.grp AND category = old.category;
        INSERT INTO agent_census (ns, grp, category, n, lim, active)
            VALUES (new.ns, new.grp, new.category, 1, new.lim, new.active)
            ON CONFLICT (ns, grp, category) DO UPDATE SET n = n + 1,
            lim = lim + excluded.lim, active = active + excluded.active;
    END
    """,
)


SCHEMA_VERSION = len(_MIGRATIONS)
"""The schema version this release writes; older databases are migrated on open."""

CHECKPOINT_EVERY = 64
"""Commits of one connection between two of its WAL checkpoints (each ~17 pages: about
SQLite's default of one checkpoint per 1,000 pages for one writer)."""

WAL_RESTART_FRAMES = 4096
"""WAL pages (16 MiB at 4 KiB) past which a checkpoint waits for the readers so that the WAL
restarts (see :meth:`SQLiteDatabase.write`)."""

FIRST_WAIT_S = 20e-6
"""The first sleep of a writer that finds the write lock taken (see
:meth:`SQLiteDatabase.write`); each further one doubles, up to :data:`LAST_WAIT_S`."""

LAST_WAIT_S = 1e-3
"""The longest sleep between two tries for the write lock."""

RESTART_WAIT_MS = 20
"""How long that checkpoint waits for readers (and holds off writers), in milliseconds."""


# --------------------------------------------------------------------------- connections


class SQLiteDatabase:
    """One SQLite database file shared by any number of :class:`SQLiteStorage` namespaces.

    ``path`` is a file path (or ``":memory:"`` for a private in-process database); ``timeout``
    is how long a writer waits for the lock held by another connection or process;
    ``synchronous`` is SQLite's durability setting (``"NORMAL"``: survives a process crash,
    ``"FULL"``: also a power loss).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float = 30.0,
        synchronous: str = "NORMAL",
    ) -> None:
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous: one of OFF, NORMAL, FULL, EXTRA, got {synchronous!r}")
        self.path = os.fspath(path)
        self.timeout = timeout
        self.synchronous = synchronous.upper()
        self._memory = self.path == ":memory:" or self.path.startswith("file::memory:")
        self._local = threading.local()
        self._lock = threading.RLock()
        self._shared: sqlite3.Connection | None = None
        self._all: list[sqlite3.Connection] = []
        self._pid = os.getpid()
        self._rank_indexes: set[str] = set()
        self._closed = False
        self._executor: ThreadPoolExecutor | None = None
        #: puts SQLite's busy handler back after a write (see :meth:`_begin`)
        self._busy_timeout = f"PRAGMA busy_timeout={int(timeout * 1000)}"
        self._migrate()

    # connections --------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=self.timeout,
            isolation_level=None,
            check_same_thread=False,
        )
        if not self._memory:
            conn.execute("PRAGMA journal_mode=WAL")
            # checkpoints are run by write() every CHECKPOINT_EVERY commits of a connection
            conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        with self._lock:
            self._all.append(conn)
        return conn

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        if self._closed:
            raise StorageError(f"SQLite database {self.path!r} is closed")
        if os.getpid() != self._pid:  # forked: never reuse the parent's connections
            self._pid = os.getpid()
            self._local = threading.local()
            self._shared = None
            self._all = []
        if self._memory:
            if self._shared is None:
                self._shared = self._open()
            return self._shared
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._open()
        return conn

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``): committed on exit, rolled back on error.

        Every :data:`CHECKPOINT_EVERY` commits of a connection, once the write lock is
        released, a ``PASSIVE`` checkpoint copies the WAL into the database file (SQLite's own
        automatic checkpoint is off: once the WAL is over its threshold it checkpoints after
        *every* commit until a writer manages to restart the WAL, which under several
        processes is rare, and each checkpoint syncs the WAL and the database file)."""
        with self._guard():
            conn = self.connection()
            if self._memory:  # one shared connection under the lock: nobody to wait for
                conn.execute("BEGIN IMMEDIATE")
            else:
                self._begin(conn)
            try:
                try:
                    yield conn
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            finally:
                if not self._memory:
                    conn.execute(self._busy_timeout)
            if not self._memory:
                commits = self._local.commits = getattr(self._local, "commits", 0) + 1
                if commits % CHECKPOINT_EVERY == 0:
                    # the unit has committed: a checkpoint that fails (it is tried again
                    # CHECKPOINT_EVERY commits later) must not make it look failed
                    with contextlib.suppress(sqlite3.Error):
                        self._checkpoint(conn)

    def _begin(self, conn: sqlite3.Connection) -> None:
        """``BEGIN IMMEDIATE``, waiting for the write lock in short sleeps (from
        :data:`FIRST_WAIT_S`, doubling up to :data:`LAST_WAIT_S`) until :attr:`timeout`.

        SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25 ms and longer between tries:
        a writer that finds the lock taken a few times in a row sleeps for tens of
        milliseconds while the lock, held ~0.2 ms per unit, passes to the writers that did
        not sleep. The handler is off (``busy_timeout`` 0) while the transaction is open; the
        caller puts it back after ``COMMIT`` or ``ROLLBACK``."""
        conn.execute("PRAGMA busy_timeout=0")
        delay, deadline = FIRST_WAIT_S, 0.0
        try:
            while True:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    now = time.monotonic()
                    if not deadline:
                        deadline = now + self.timeout
                    if not _busy(exc) or now >= deadline:
                        raise
                time.sleep(delay)
                delay = min(delay * 2, LAST_WAIT_S)
        except BaseException:  # gave up, or interrupted while sleeping
            conn.execute(self._busy_timeout)
            raise

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        """A ``PASSIVE`` checkpoint (no wait: it copies what no reader still needs). When the
        WAL has grown past :data:`WAL_RESTART_FRAMES` more pages anyway (readers of other
        processes kept every checkpoint from reaching its end, so no writer could start the
        WAL over), a ``RESTART`` one: it waits up to :data:`RESTART_WAIT_MS` for those readers,
        holding off writers meanwhile, so that the next writer starts the WAL from its
        beginning; a reader that stays longer only defers it by another such growth."""
        row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        frames = 0 if row is None else int(row[1])
        local = self._local
        if frames < WAL_RESTART_FRAMES:  # restarted since: the usual threshold again
            local.restart_at = WAL_RESTART_FRAMES
        if frames < getattr(local, "restart_at", WAL_RESTART_FRAMES):
            return
        conn.execute(f"PRAGMA busy_timeout={RESTART_WAIT_MS}")
        try:
            busy = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        finally:
            conn.execute(self._busy_timeout)
        local.restart_at = (
            frames + WAL_RESTART_FRAMES if busy is not None and busy[0] else WAL_RESTART_FRAMES
        )

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: the statements inside see one consistent snapshot."""
        with self._guard():
            conn = self.connection()
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("COMMIT")

    @contextlib.contextmanager
    def statement(self) -> Iterator[sqlite3.Connection]:
        """A connection for one read statement, which SQLite runs in its own implicit
        transaction (no ``BEGIN``/``COMMIT`` round trip); use :meth:`read` for several."""
        with self._guard():
            yield self.connection()

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        if self._memory:
            with self._lock:
                yield
        else:
            yield

    def close(self) -> None:
        """Close every connection this object opened (any thread's)."""
        with self._lock:
            self._closed = True
            for conn in self._all:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._all.clear()
            self._shared = None
            if self._executor is not None:
                self._executor.shutdown(wait=False)
                self._executor = None

    def executor(self) -> ThreadPoolExecutor:
        """The thread pool the async faces run their calls on."""
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=4, thread_name_prefix="chatmgmt-sqlite"
                )
            return self._executor

    # schema -------------------------------------------------------------------

    def _migrate(self) -> None:
        migrate(self, "schema_version", "schema", _MIGRATIONS)

    def schema_version(self) -> int:
        """The schema version stored in the database."""
        with self.read() as conn:
            row = conn.execute("SELECT version FROM schema_version").fetchone()
        return 0 if row is None else int(row[0])

    def _create_rank_index(self, conn: sqlite3.Connection, keys: Sequence[RankKey]) -> str:
        name, order = _unit.order_by(keys)
        if name not in self._rank_indexes:
            conn.execute(
                f"CREATE INDEX IF NOT EXISTS {name} ON agent_ranks (ns, grp, eligible, {order})"
            )
            self._rank_indexes.add(name)
        return order

    def rank_order(self, conn: sqlite3.Connection, ranking: Ranking) -> str:
        """The ORDER BY list of ``ranking``, creating its index on first use."""
        name, order = _unit.order_by(ranking.keys)
        if name not in self._rank_indexes:
            self._create_rank_index(conn, ranking.keys)
        return order


def _busy(exc: sqlite3.OperationalError) -> bool:
    """Whether ``exc`` is SQLITE_BUSY (the lock is taken; any extended code)."""
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return int(code) & 0xFF == 5
    return str(exc).startswith("database is locked")


def _statements(script: str) -> Iterator[str]:
    """The statements of ``script`` one by one (a trigger's body keeps its own ``;``)."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                yield pending
            pending = ""
    if pending.strip(" \n;"):
        raise StorageError(f"incomplete migration statement: {pending.strip()!r}")


def migrate(
    db: SQLiteDatabase,
    table: str,
    what: str,
    migrations: Sequence[str | Callable[[sqlite3.Connection], None]],
) -> None:
    """Bring ``db`` to ``len(migrations)``, the version this release writes, in one write
    transaction: the version is kept in ``table`` (one row); the missing migrations run in order
    (SQL scripts statement by statement, or functions); a newer version is refused with
    :class:`~chatmgmt.errors.StorageError` naming ``what`` (``"schema"``)."""
    target = len(migrations)
    with db.write() as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (version INTEGER NOT NULL)")
        row = conn.execute(f"SELECT version FROM {table}").fetchone()
        version = 0 if row is None else int(row[0])
        if version > target:
            raise StorageError(
                f"SQLite database {db.path!r} has {what} version {version}, newer than "
                f"this release's {target}: upgrade chatmgmt"
            )
        for script in migrations[version:]:
            if callable(script):
                script(conn)
                continue
            for statement in _statements(script):
                conn.execute(statement)
        if row is None:
            conn.execute(f"INSERT INTO {table} VALUES (?)", (target,))
        elif version != target:
            conn.execute(f"UPDATE {table} SET version = ?", (target,))
