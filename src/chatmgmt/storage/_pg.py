"""The PostgreSQL plumbing shared by :mod:`~chatmgmt.storage.postgres` and
:mod:`~chatmgmt.storage.postgres_delivery`: one copy of every operation, two drivers.

Every operation is written once, as a generator that yields :class:`Q` statements and receives
their results (a row, the rows, the row count); it raises the library's errors itself. A driver
runs it on a connection: :class:`PostgresDatabase` with psycopg's blocking connections,
:class:`AsyncPostgresDatabase` with its asyncio connections. Neither driver knows any SQL, and
no SQL or rule is written twice.

* An operation marked ``tx=True`` runs in one transaction (``BEGIN`` … ``COMMIT``) in psycopg's
  **pipeline mode**: a statement whose result the operation does not need (``fetch="none"`` or
  ``"many"``) is sent without waiting for its answer, and the connection only waits where a
  result is needed and at ``COMMIT``. An operation may also yield a tuple of statements and
  receive the tuple of their results: they travel in one round trip. So a unit of work that
  reads its rows in one batch and then writes costs two round trips, whatever the number of
  writes (``BEGIN`` rides with the reads, ``COMMIT`` with the writes). An operation run with
  ``tx=IMPLICIT`` (the unit of work) is the same transaction without the ``BEGIN`` and
  ``COMMIT`` statements (:data:`IMPLICIT`). Anything the operation raises rolls the
  transaction back. A serialization failure or a deadlock the server reports
  is retried transparently (bounded, with a short random backoff) on a fresh transaction, so a
  caller only ever sees the library's errors; after the last try it is a
  :class:`~chatmgmt.errors.ConflictError`. A lost connection is a
  :class:`~chatmgmt.errors.StorageError`.
* A one-statement read runs in autocommit (no ``BEGIN``/``COMMIT`` round trips): a connection
  borrowed from the host's pool is switched to autocommit while it is borrowed and switched
  back before it is returned.
* Free-form keys (the namespace, queue names, timer and counter keys, delivery-store ids) are
  stored as ``bytea`` (their UTF-8 bytes) so any string, NUL included, is data; ids the model
  validates (chat, agent, partner ids, skill groups) are ``text``. Values only ever travel as
  bound parameters.
* The schema carries a version (table ``chatmgmt_schema_version``, one row per component):
  opening a database applies the missing migrations in order under an advisory lock, and
  refuses a database written by a newer release with :class:`~chatmgmt.errors.StorageError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import time
from collections.abc import Callable, Generator, Sequence
from typing import Any, TypeVar

import attrs

from ..errors import ConflictError, StorageError
from ._pg_arrays import register as register_arrays

__all__ = [
    "IMPLICIT",
    "AsyncPostgresDatabase",
    "Gen",
    "PostgresDatabase",
    "Q",
    "b",
    "channel_tag",
]

_T = TypeVar("_T")

NOTIFY_CHANNEL = "chatmgmt_events"
"""The one ``LISTEN``/``NOTIFY`` channel (a fixed name); the payload tells the namespace."""

#: how many times a transaction the server aborted (serialization failure, deadlock) is tried
RETRIES = 12

#: ``Q.fetch`` of a statement sent after the operation's COMMIT. For the ``NOTIFY`` that wakes
#: dispatchers: PostgreSQL serializes every transaction that notifies behind one cluster-wide
#: lock held until its commit is flushed (async.c, ``PreCommit_Notify``), so with the NOTIFY
#: inside the unit of work no two units could share a WAL flush (group commit) and four
#: workers committed one after the other. After the COMMIT, in a transaction of its own that
#: does not wait for its flush, the lock is held for microseconds. A server crash between the
#: two loses only the wake-up (a dispatcher also wakes after ``idle_s``), never the events.
#: If it fails (it should not: fixed channel, short payload) the caller sees a StorageError
#: although the unit of work committed — as when a connection drops after ``COMMIT``.
AFTER_COMMIT = "after_commit"

#: ``Q.fetch`` of the ``COMMIT`` an operation sends itself, in the round trip of its last
#: statements (``Q("COMMIT", fetch=AT_COMMIT)``): reads yielded with it, before it in the
#: same step, are answered after the commit succeeded and see the transaction's writes (a
#: unit of work's queue heads); only :data:`AFTER_COMMIT` statements may follow it.
AT_COMMIT = "at_commit"

#: ``tx`` of an operation run as one **implicit** transaction: no ``BEGIN`` and no ``COMMIT``
#: statement. Its statements up to a ``Sync`` are one transaction on the server (the extended
#: query protocol's implicit transaction); a round trip whose answers the operation needs
#: before its end asks for them with a ``Flush`` (the transaction stays open), and the
#: ``Sync`` that closes the operation commits it (or rolls it back after an error).
#: Statements marked :data:`AFTER_COMMIT` travel after that ``Sync``, in transactions of their
#: own: unlike after a ``COMMIT`` statement, the server runs them even when the operation's
#: transaction failed, so such a statement checks itself that it did not (``_pg_outbox._notify``).
#: To abort without a server error (the operation raised), ``_pg_wire.recover`` sends
#: ``BEGIN`` (it turns the open implicit transaction into a block) and ``ROLLBACK``; a
#: ``ROLLBACK`` alone would abort it too, but with a warning in the server's log.
IMPLICIT = "implicit"

#: the advisory lock key that serializes migrations and index creation (any fixed 64-bit value)
_DDL_LOCK = 0x63686174_6D676D74


@attrs.frozen
class Q:
    """One statement: SQL text (fixed, or built from whitelisted names only), its bound
    parameters, and what the operation wants back: ``"one"`` (a row or None), ``"all"``
    (the rows), ``"rowcount"``, ``"many"`` (executemany over ``params``, nothing back),
    ``"none"``, ``"after_commit"``: sent right after the operation's ``COMMIT`` (in the
    same round trip), in a transaction of its own, and only if everything before it
    succeeded (nothing back; see :data:`AFTER_COMMIT`; in an :data:`IMPLICIT` operation
    the server runs it whatever happened before, so it checks that itself), or
    ``"at_commit"``: the operation's ``COMMIT`` itself (:data:`AT_COMMIT`). ``on_unique``:
    the error to raise instead of the server's unique violation if this statement hits one
    (the transaction is rolled back)."""

    sql: str
    params: Sequence[Any] = ()
    fetch: str = "none"
    on_unique: Exception | None = attrs.field(default=None, eq=False)


Gen = Generator["Q | tuple[Q, ...]", Any, _T]
"""An operation: yields statements (one, or a tuple sent together), receives their results
(one, or the tuple of them), returns its value."""


def b(text: str) -> bytes:
    """A free-form key as stored (``bytea``): its UTF-8 bytes (surrogates kept)."""
    return text.encode("utf-8", "surrogatepass")


def s(data: bytes | memoryview) -> str:
    """The string a :func:`b` value came from."""
    return bytes(data).decode("utf-8", "surrogatepass")


def channel_tag(namespace: str) -> str:
    """The ``NOTIFY`` payload of a namespace: a short digest (fixed size, any namespace)."""
    return hashlib.sha256(b(namespace)).hexdigest()[:24]


def migrate_op(
    component: str, migrations: Sequence[str | tuple[str, ...]], latest: int, where: str
) -> Gen[int]:
    """Create the version table, refuse a newer schema, apply the missing migrations; returns
    the version found. Runs in one transaction under an advisory lock. A migration is a
    script split at ``;``, or a tuple of statements (a function body holds ``;``)."""
    yield Q("SELECT pg_advisory_xact_lock(%s)", (_DDL_LOCK,), "one")
    yield Q(
        "CREATE TABLE IF NOT EXISTS chatmgmt_schema_version "
        "(component text PRIMARY KEY, version integer NOT NULL)"
    )
    row = yield Q(
        "SELECT version FROM chatmgmt_schema_version WHERE component = %s", (component,), "one"
    )
    version = 0 if row is None else int(row[0])
    if version > latest:
        raise StorageError(
            f"PostgreSQL database {where} has {component} schema version {version}, newer than "
            f"this release's {latest}: upgrade chatmgmt"
        )
    for script in migrations[version:]:
        for statement in script.split(";") if isinstance(script, str) else script:
            if statement.strip():
                yield Q(statement)
    if version != latest:
        yield Q(
            "INSERT INTO chatmgmt_schema_version (component, version) VALUES (%s, %s) "
            "ON CONFLICT (component) DO UPDATE SET version = excluded.version",
            (component, latest),
        )
    return version


def ddl_op(statement: str) -> Gen[None]:
    """One DDL statement (``CREATE INDEX IF NOT EXISTS`` of a ranking) under the advisory lock,
    so two processes creating the same index never collide."""
    yield Q("SELECT pg_advisory_xact_lock(%s)", (_DDL_LOCK,), "one")
    yield Q(statement)


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ImportError(
            "the PostgreSQL adapter needs psycopg 3: pip install 'chatmgmt[postgres]'"
        ) from exc
    return psycopg


def _wire() -> Any:
    """:mod:`~chatmgmt.storage._pg_wire` (imported once psycopg is known to be there)."""
    from . import _pg_wire

    return _pg_wire


def _retryable() -> tuple[type[BaseException], ...]:
    """What the drivers run again: the server aborted the transaction (serialization failure,
    deadlock), or forgot our prepared statements (``_pg_wire``)."""
    errors = _psycopg().errors
    return (errors.SerializationFailure, errors.DeadlockDetected, errors.InvalidSqlStatementName)


def _backoff(attempt: int) -> float:
    return float(random.uniform(0, min(0.05, 0.002 * 2**attempt)))


def _describe(target: Any) -> str:
    conninfo = getattr(target, "conninfo", None)
    if isinstance(conninfo, str):
        return repr(_redact(conninfo))
    return type(target).__name__


def _redact(conninfo: str) -> str:
    """A DSN without its password (for error messages)."""
    try:
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        params = conninfo_to_dict(conninfo)
        if "password" in params:
            params["password"] = "***"
        return str(make_conninfo("", **params))
    except Exception:
        return "<dsn>"


#: Set on every connection of a pool this library opens (a host's own pool is left as it is;
#: docs/deployment.md): prepared statements keep their generic plan. Every statement here
#: names its rows by key columns, so the generic plan is the right one; with the default
#: (``auto``) the server re-planned the census, the queue heads and the agents' locking
#: read on every call (~0.5 ms of server CPU per open and end, pg_stat_statements).
SESSION_SETTINGS = "SET plan_cache_mode = force_generic_plan"


def _configure(conn: Any) -> None:
    conn.execute(SESSION_SETTINGS)


async def _aconfigure(conn: Any) -> None:
    await conn.execute(SESSION_SETTINGS)


class PostgresDatabase:
    """One PostgreSQL database reached through a :class:`psycopg_pool.ConnectionPool`.

    ``target`` is a DSN (``"postgresql://user@host/db"``; a pool of ``min_size``–``max_size``
    connections is opened and owned by this object) or a ``ConnectionPool`` the host already
    has (borrowed: connections return to it after every operation; :meth:`close` leaves it
    open). Any number of namespaces, threads and processes may share one database.
    """

    def __init__(self, target: Any, *, min_size: int = 1, max_size: int = 16) -> None:
        psycopg = _psycopg()
        self._psycopg = psycopg
        self._wire = _wire()
        register_arrays()
        if isinstance(target, str):
            from psycopg_pool import ConnectionPool

            self.conninfo = target
            self.pool: Any = ConnectionPool(
                target,
                min_size=min_size,
                max_size=max_size,
                kwargs={"autocommit": True},
                configure=_configure,
                open=True,
                name="chatmgmt",
            )
            self._owned = True
        else:
            self.pool = target
            self.conninfo = str(getattr(target, "conninfo", ""))
            self._owned = False
        self._where = _describe(self.pool)
        self._known: set[str] = set()
        self._migrated: set[str] = set()

    def __repr__(self) -> str:
        return f"PostgresDatabase({self._where})"

    def run(self, op: Callable[..., Gen[_T]], *args: Any, tx: bool | str = True) -> _T:
        """Run ``op(*args)`` (in one transaction with ``tx``: ``True`` between ``BEGIN`` and
        ``COMMIT``, :data:`IMPLICIT` without them), retrying what the server aborted; library
        errors raised by the operation propagate, nothing committed."""
        psycopg, wire = self._psycopg, self._wire
        retry = _retryable()
        attempt = 0
        while True:
            try:
                # getconn/putconn rather than ``pool.connection()``: its ``with conn`` block
                # would call ``commit()`` on a connection every operation leaves idle (its
                # transaction committed, or rolled back by ``recover``); putconn still
                # checks the connection's state (-65k client instructions per open+end pair)
                conn = self.pool.getconn()
                try:
                    sess = wire.session(conn)
                    steps: Generator[Any, Any, _T] = wire.protocol(
                        sess, op(*args), tx, _BEGIN, _COMMIT, (AFTER_COMMIT, AT_COMMIT)
                    )
                    try:
                        return _wait(conn, steps)
                    except BaseException:
                        wire.recover(conn, sess)
                        raise
                finally:
                    self.pool.putconn(conn)
            except retry as exc:
                attempt += 1
                if attempt >= RETRIES:
                    raise ConflictError("transaction", op.__name__) from exc
                if isinstance(exc, psycopg.errors.InvalidSqlStatementName):
                    sess.forget()
                else:
                    time.sleep(_backoff(attempt))
            except psycopg.Error as exc:
                raise _storage_error(exc, self._where) from exc

    def once(self, key: str, op: Callable[..., Gen[Any]], *args: Any) -> None:
        """Run ``op`` in a transaction of its own the first time ``key`` is asked for (a
        migration, a ranking's index)."""
        if key in self._known:
            return
        self.run(op, *args)
        self._known.add(key)

    def wait(self, tag: str, timeout: float) -> bool:
        """Block until a ``NOTIFY`` for ``tag`` arrives (True) or ``timeout`` passes (False),
        on a dedicated listening connection opened on first use."""
        conn = self._listener()
        deadline = time.monotonic() + max(0.0, timeout)
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                for note in conn.notifies(timeout=left, stop_after=1):
                    if note.payload == tag:
                        return True
        except self._psycopg.Error as exc:
            self._drop_listener()
            raise StorageError(f"PostgreSQL {self._where}: {exc}") from exc

    def _listener(self) -> Any:
        conn = getattr(self, "_listen_conn", None)
        if conn is None or conn.closed:
            if not self.conninfo:
                raise StorageError("cannot LISTEN: the pool has no conninfo")
            conn = self._psycopg.connect(self.conninfo, autocommit=True)
            conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
            self._listen_conn = conn
        return conn

    def _drop_listener(self) -> None:
        conn = getattr(self, "_listen_conn", None)
        self._listen_conn = None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def close(self) -> None:
        """Close the pool if this object opened it (a borrowed pool stays open)."""
        self._drop_listener()
        if self._owned:
            self.pool.close()


#: the statements wrapped around an operation run with ``tx``
_BEGIN = Q("BEGIN")
_COMMIT = Q("COMMIT")


def _storage_error(exc: Exception, where: str) -> Exception:
    return StorageError(f"PostgreSQL {where}: {exc}")


def _wait(conn: Any, steps: Generator[Any, Any, _T]) -> _T:
    """Run a generator of libpq waits (:func:`~chatmgmt.storage._pg_wire.protocol`) on a
    sync connection."""
    sent: Any = None
    while True:
        try:
            wait = steps.send(sent)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        sent = conn.wait(wait)


async def _await(conn: Any, steps: Generator[Any, Any, _T]) -> _T:
    """The asyncio twin of :func:`_wait`."""
    sent: Any = None
    while True:
        try:
            wait = steps.send(sent)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        sent = await conn.wait(wait)


class AsyncPostgresDatabase:
    """The asyncio twin of :class:`PostgresDatabase`: a DSN (an
    :class:`psycopg_pool.AsyncConnectionPool` is opened on first use and owned) or an
    ``AsyncConnectionPool`` the host already has. Runs the same operations."""

    def __init__(self, target: Any, *, min_size: int = 1, max_size: int = 16) -> None:
        self._psycopg = _psycopg()
        self._wire = _wire()
        register_arrays()
        self._min, self._max = min_size, max_size
        if isinstance(target, str):
            self.conninfo = target
            self.pool: Any = None
            self._owned = True
        else:
            self.pool = target
            self.conninfo = str(getattr(target, "conninfo", ""))
            self._owned = False
        self._where = _describe(target) if not isinstance(target, str) else repr(_redact(target))
        self._known: set[str] = set()
        self._listen_conn: Any = None

    def __repr__(self) -> str:
        return f"AsyncPostgresDatabase({self._where})"

    async def _pool(self) -> Any:
        if self.pool is None:
            from psycopg_pool import AsyncConnectionPool

            pool = AsyncConnectionPool(
                self.conninfo,
                min_size=self._min,
                max_size=self._max,
                kwargs={"autocommit": True},
                configure=_aconfigure,
                open=False,
                name="chatmgmt-async",
            )
            await pool.open()
            if self.pool is None:
                self.pool = pool
            else:  # another task opened one meanwhile
                await pool.close()
        return self.pool

    async def run(self, op: Callable[..., Gen[_T]], *args: Any, tx: bool | str = True) -> _T:
        """See :meth:`PostgresDatabase.run`."""
        import asyncio

        psycopg, wire = self._psycopg, self._wire
        retry = _retryable()
        attempt = 0
        while True:
            try:
                pool = await self._pool()
                conn = await pool.getconn()  # see PostgresDatabase.run
                try:
                    sess = wire.session(conn)
                    steps: Generator[Any, Any, _T] = wire.protocol(
                        sess, op(*args), tx, _BEGIN, _COMMIT, (AFTER_COMMIT, AT_COMMIT)
                    )
                    try:
                        return await _await(conn, steps)
                    except BaseException:
                        await wire.arecover(conn, sess)
                        raise
                finally:
                    await pool.putconn(conn)
            except retry as exc:
                attempt += 1
                if attempt >= RETRIES:
                    raise ConflictError("transaction", op.__name__) from exc
                if isinstance(exc, psycopg.errors.InvalidSqlStatementName):
                    sess.forget()
                else:
                    await asyncio.sleep(_backoff(attempt))
            except psycopg.Error as exc:
                raise _storage_error(exc, self._where) from exc

    async def once(self, key: str, op: Callable[..., Gen[Any]], *args: Any) -> None:
        """See :meth:`PostgresDatabase.once`."""
        if key in self._known:
            return
        await self.run(op, *args)
        self._known.add(key)

    async def wait(self, tag: str, timeout: float) -> bool:
        """See :meth:`PostgresDatabase.wait`."""
        import asyncio

        conn = self._listen_conn
        if conn is None or conn.closed:
            if not self.conninfo:
                raise StorageError("cannot LISTEN: the pool has no conninfo")
            conn = await self._psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
            await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
            self._listen_conn = conn
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        try:
            while True:
                left = deadline - loop.time()
                if left <= 0:
                    return False
                async for note in conn.notifies(timeout=left, stop_after=1):
                    if note.payload == tag:
                        return True
        except self._psycopg.Error as exc:
            self._listen_conn = None
            with contextlib.suppress(Exception):
                await conn.close()
            raise StorageError(f"PostgreSQL {self._where}: {exc}") from exc

    async def close(self) -> None:
        """Close the pool if this object opened it (a borrowed pool stays open)."""
        if self._listen_conn is not None:
            with contextlib.suppress(Exception):
                await self._listen_conn.close()
            self._listen_conn = None
        if self._owned and self.pool is not None:
            await self.pool.close()
            self.pool = None
