"""The SQLite adapter's database: its connections, write transactions and WAL checkpoints.

:class:`SQLiteDatabase` is one database file shared by any number of namespaces (see
:mod:`chatmgmt.storage.sqlite` for the stores and the unit of work). Opening a database applies
the missing migrations (:mod:`chatmgmt.storage._sqlite_schema`) in order and refuses a database
written by a newer release; each thread gets its own connection (``":memory:"`` databases share
one under a lock).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Any

from ..errors import StorageError
from ..model import Ranking
from . import _sqlite_unit as _unit
from ._sqlite_schema import _MIGRATIONS, SCHEMA_VERSION, migrate

__all__ = ["SCHEMA_VERSION", "SQLiteDatabase", "migrate"]

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # not on POSIX: the writers wait in short sleeps
    fcntl = None

CHECKPOINT_EVERY = 64
"""Commits of one connection between two of its WAL checkpoints (each ~17 pages: about
SQLite's default of one checkpoint per 1,000 pages for one writer)."""

WAL_RESTART_FRAMES = 4096
"""WAL pages (16 MiB at 4 KiB) past which a checkpoint waits for the readers so that the WAL
restarts (see :meth:`SQLiteDatabase.write`)."""

FIRST_WAIT_S = 20e-6
"""Without a writers' lock file (see :meth:`SQLiteDatabase._begin`), the first sleep of a
writer that finds the write lock taken; each further one doubles, up to :data:`LAST_WAIT_S`."""

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
        self._fds: list[int] = []  # the threads' descriptors of the writers' lock file
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
            self._fds = []  # the parent's: never closed here (they share its open files)
        if self._memory:
            if self._shared is None:
                self._shared = self._open()
            return self._shared
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._open()
        return conn

    def remember_agent(self, ns: str, agent_id: str, row: tuple[Any, ...]) -> None:
        """Keep, for this thread's next unit of work, the load columns of ``agent_id`` as a
        read just made found them (the chat read before an end: see
        :func:`chatmgmt.storage._sqlite_unit.apply`, which builds the release from them before
        its turn and checks them inside it). One row is kept, the last."""
        self._local.agent_row = (ns, agent_id, row)

    def recall_agent(self, ns: str, agent_id: str) -> tuple[Any, ...] | None:
        """The row :meth:`remember_agent` kept for ``agent_id`` (and forgets it), or None."""
        kept = getattr(self._local, "agent_row", None)
        if kept is None:
            return None
        self._local.agent_row = None
        return kept[2] if kept[0] == ns and kept[1] == agent_id else None

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
            turn: int | None = None
            if self._memory:  # one shared connection under the lock: nobody to wait for
                conn.execute("BEGIN IMMEDIATE")
            else:
                turn = self._begin(conn)
            try:
                try:
                    yield conn
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            finally:
                if turn is not None:
                    _turn(turn, take=False)
                elif not self._memory:
                    conn.execute(self._busy_timeout)
            if not self._memory:
                commits = self._local.commits = getattr(self._local, "commits", 0) + 1
                if commits % CHECKPOINT_EVERY == 0:
                    # the unit has committed: a checkpoint that fails (it is tried again
                    # CHECKPOINT_EVERY commits later) must not make it look failed
                    with contextlib.suppress(sqlite3.Error):
                        self._checkpoint(conn)

    def _begin(self, conn: sqlite3.Connection) -> int | None:
        """Take this thread's turn among the database's writers, then ``BEGIN IMMEDIATE``;
        the writers' lock file's descriptor to release after the transaction (None: there is
        no lock file, the writer waited in short sleeps).

        The writers of one file queue on an OS lock (``flock`` on ``<path>-wlock``): a waiter
        sleeps in the kernel and wakes the moment the holder releases it, so the write lock is
        never free while a writer waits, and no waiter spends CPU on tries. SQLite's own busy
        handler sleeps 1, 2, 5, 10, 15, 20, 25 ms and longer between tries: a writer unlucky a
        few times sleeps for tens of milliseconds while the lock, held ~0.2 ms per unit, passes
        to the writers that did not sleep; and each try costs the CPU the holder needs. The OS
        lock is only a queue: SQLite's lock still decides, and ``BEGIN IMMEDIATE`` waits for a
        writer that does not queue (another program, a checkpoint restarting the WAL) with
        SQLite's busy handler, up to :attr:`timeout`. A process killed in its turn releases it
        (the kernel closes its descriptors)."""
        fd = self._writers_lock()
        if fd is None:
            self._begin_polling(conn)
            return None
        _turn(fd, take=True)
        try:
            conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            _turn(fd, take=False)
            raise
        return fd

    def _writers_lock(self) -> int | None:
        """This thread's descriptor of the writers' lock file (opened on first use: each
        thread its own, so that threads queue too); None where there is none (no ``flock``,
        or the file can be neither created beside the database nor opened).

        The file is created with the database file's permissions, as SQLite creates its
        ``-wal`` and ``-shm`` files, so that every user who may write the database may queue;
        ``flock`` needs no write access, so a file another user created is opened read-only."""
        fd: int | None = getattr(self._local, "wlock", None)
        if fd is None and fcntl is not None and not getattr(self._local, "no_wlock", False):
            path = self.path + "-wlock"
            try:
                mode = os.stat(self.path).st_mode & 0o666
            except OSError:
                mode = 0o644
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, mode)
            except OSError:
                try:
                    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                except OSError:
                    self._local.no_wlock = True
                    return None
            self._local.wlock = fd
            with self._lock:
                self._fds.append(fd)
        return fd

    def _begin_polling(self, conn: sqlite3.Connection) -> None:
        """``BEGIN IMMEDIATE``, waiting for the write lock in short sleeps (from
        :data:`FIRST_WAIT_S`, doubling up to :data:`LAST_WAIT_S`) until :attr:`timeout`:
        where there is no writers' lock file (see :meth:`_begin`). The busy handler is off
        (``busy_timeout`` 0) while the transaction is open; the caller puts it back after
        ``COMMIT`` or ``ROLLBACK``."""
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
            for fd in self._fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._fds.clear()
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

    def rank_order(self, conn: sqlite3.Connection, ranking: Ranking, group: str) -> str:
        """The ORDER BY list of ``ranking``, creating on first use its index for ``group``'s
        kind: since schema 8 a rank index is partial, one for the skill groups' rows
        (``grp != ''``) and one for the rows of ``""`` (every agent), so that a claim in a
        group does not also move the agent's ``""`` entry in the index it walks (the index of
        ``""`` exists only once a claim without a group was made with that ranking). A pick
        repeats the index's condition (:func:`chatmgmt.storage._sqlite_unit.group_term`)."""
        name, order = _unit.order_by(ranking.keys)
        if not group:
            name += "__any"
        if name not in self._rank_indexes:
            conn.execute(
                f"CREATE INDEX IF NOT EXISTS {name} ON agent_ranks (ns, grp, eligible, {order}) "
                f"WHERE {_unit.group_term(group)}"
            )
            self._rank_indexes.add(name)
        return order


def _turn(fd: int, *, take: bool) -> None:
    """Take (wait for) or give back a writer's turn on the writers' lock file ``fd``."""
    assert fcntl is not None  # a descriptor is only opened where there is flock
    if take:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return
    # after COMMIT: a failure here must not make the committed unit look failed (a descriptor
    # closed meanwhile by close() from another thread has released the lock already)
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_UN)


def _busy(exc: sqlite3.OperationalError) -> bool:
    """Whether ``exc`` is SQLITE_BUSY (the lock is taken; any extended code)."""
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return int(code) & 0xFF == 5
    return str(exc).startswith("database is locked")
