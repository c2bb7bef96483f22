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
  writes (``BEGIN`` rides with the reads, ``COMMIT`` with the writes). Anything the operation
  raises rolls the transaction back. A serialization failure or a deadlock the server reports
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
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Sequence
from typing import Any, TypeVar

import attrs

from ..errors import ConflictError, StorageError
from ._pg_arrays import register as register_arrays

__all__ = [
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

#: ``psycopg.pq.TransactionStatus.IDLE``: no transaction open on the connection
_IDLE = 0

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

#: the advisory lock key that serializes migrations and index creation (any fixed 64-bit value)
_DDL_LOCK = 0x63686174_6D676D74


@attrs.frozen
class Q:
    """One statement: SQL text (fixed, or built from whitelisted names only), its bound
    parameters, and what the operation wants back: ``"one"`` (a row or None), ``"all"``
    (the rows), ``"rowcount"``, ``"many"`` (executemany over ``params``, nothing back),
    ``"none"``, or ``"after_commit"``: sent right after the operation's ``COMMIT`` (in the
    same round trip), in a transaction of its own, and only if everything before it
    succeeded (nothing back; see :data:`AFTER_COMMIT`). ``on_unique``: the error to raise
    instead of the server's unique violation if this statement hits one (it may be reported
    later, at the next wait or at ``COMMIT``; the transaction is rolled back either way)."""

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


def _retryable() -> tuple[type[BaseException], ...]:
    errors = _psycopg().errors
    return (errors.SerializationFailure, errors.DeadlockDetected)


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

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Any]:
        with self.pool.connection() as conn:
            previous = conn.autocommit
            if not previous:
                conn.autocommit = True
            try:
                yield conn
            finally:
                if not previous and not conn.closed:
                    with contextlib.suppress(Exception):
                        conn.autocommit = False

    def run(self, op: Callable[..., Gen[_T]], *args: Any, tx: bool = True) -> _T:
        """Run ``op(*args)`` (in one transaction with ``tx``), retrying what the server
        aborted; library errors raised by the operation propagate, nothing committed."""
        psycopg = self._psycopg
        retry = _retryable()
        attempt = 0
        while True:
            pending: list[Exception] = []
            after: list[Q] = []
            try:
                with self._connection() as conn:
                    if tx:
                        with _pipelined(conn, after) as pipe:
                            return _drive(conn, pipe, op(*args), pending, after)
                    return _drive(conn, None, op(*args), pending, after)
            except retry as exc:
                attempt += 1
                if attempt >= RETRIES:
                    raise ConflictError("transaction", op.__name__) from exc
                time.sleep(_backoff(attempt))
            except psycopg.Error as exc:
                raise _storage_error(exc, pending, self._where) from exc

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


@contextlib.contextmanager
def _pipelined(conn: Any, after: list[Q]) -> Iterator[Any]:
    """One transaction in pipeline mode: ``BEGIN`` is queued with the first statements and
    ``COMMIT`` with the last, then the ``after`` statements (:data:`AFTER_COMMIT`; the server
    skips them if anything before failed), and leaving the pipeline (one Sync) reads their
    answers. (psycopg's own ``transaction()`` syncs at each of its nested steps: three round
    trips more.) On any error the transaction is rolled back after the pipeline is left."""
    done = False
    try:
        with conn.pipeline() as pipe:
            conn.execute("BEGIN")
            yield pipe
            conn.execute("COMMIT")
            for q in after:
                conn.execute(q.sql, q.params)
        done = True
    finally:
        if not done and not conn.closed and conn.info.transaction_status != _IDLE:
            with contextlib.suppress(Exception):
                conn.rollback()


@contextlib.asynccontextmanager
async def _apipelined(conn: Any, after: list[Q]) -> AsyncIterator[Any]:
    """The asyncio twin of :func:`_pipelined`."""
    done = False
    try:
        async with conn.pipeline() as pipe:
            await conn.execute("BEGIN")
            yield pipe
            await conn.execute("COMMIT")
            for q in after:
                await conn.execute(q.sql, q.params)
        done = True
    finally:
        if not done and not conn.closed and conn.info.transaction_status != _IDLE:
            with contextlib.suppress(Exception):
                await conn.rollback()


def _storage_error(exc: Exception, pending: list[Exception], where: str) -> Exception:
    """The library's error for a psycopg error: a unique violation of a statement that named
    its own error (``Q.on_unique``) is that error; anything else a StorageError."""
    if pending and isinstance(exc, _psycopg().errors.UniqueViolation):
        return pending[0]
    return StorageError(f"PostgreSQL {where}: {exc}")


def _steps(step: Q | tuple[Q, ...]) -> tuple[Q, ...]:
    return (step,) if isinstance(step, Q) else step


def _deferred(pipe: Any, q: Q, after: list[Q]) -> bool:
    """Whether ``q`` waits for the COMMIT (kept in ``after``); outside a transaction
    (``pipe`` None) it is sent at once, in autocommit."""
    if pipe is None or q.fetch != AFTER_COMMIT:
        return False
    after.append(q)
    return True


def _drive(conn: Any, pipe: Any, gen: Gen[_T], pending: list[Exception], after: list[Q]) -> _T:
    """Run ``gen`` on ``conn`` (in pipeline ``pipe``, or None): every statement of a step is
    sent before any result is read; a step's results are read only when it wants some."""
    result: Any = None
    while True:
        try:
            step = gen.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        sent = [
            (None if _deferred(pipe, q, after) else _send(conn, q, pending), q)
            for q in _steps(step)
        ]
        results = [_result(cur, q, pipe, pending) for cur, q in sent]
        result = results[0] if isinstance(step, Q) else tuple(results)


def _send(conn: Any, q: Q, pending: list[Exception]) -> Any:
    cur = conn.cursor()
    if q.on_unique is not None:
        pending.append(q.on_unique)
    if q.fetch == "many":
        if q.params:
            cur.executemany(q.sql, q.params)
    else:
        cur.execute(q.sql, q.params)
    return cur


def _result(cur: Any, q: Q, pipe: Any, pending: list[Exception]) -> Any:
    if q.fetch in ("none", "many", AFTER_COMMIT):
        return None
    if q.fetch == "rowcount":
        if pipe is not None:
            pipe.sync()
        result = cur.rowcount
    elif q.fetch == "one":
        result = cur.fetchone()
    else:
        result = cur.fetchall()
    pending.clear()  # everything sent before this statement succeeded
    return result


class AsyncPostgresDatabase:
    """The asyncio twin of :class:`PostgresDatabase`: a DSN (an
    :class:`psycopg_pool.AsyncConnectionPool` is opened on first use and owned) or an
    ``AsyncConnectionPool`` the host already has. Runs the same operations."""

    def __init__(self, target: Any, *, min_size: int = 1, max_size: int = 16) -> None:
        self._psycopg = _psycopg()
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

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        pool = await self._pool()
        async with pool.connection() as conn:
            previous = conn.autocommit
            if not previous:
                await conn.set_autocommit(True)
            try:
                yield conn
            finally:
                if not previous and not conn.closed:
                    with contextlib.suppress(Exception):
                        await conn.set_autocommit(False)

    async def run(self, op: Callable[..., Gen[_T]], *args: Any, tx: bool = True) -> _T:
        """See :meth:`PostgresDatabase.run`."""
        import asyncio

        psycopg = self._psycopg
        retry = _retryable()
        attempt = 0
        while True:
            pending: list[Exception] = []
            after: list[Q] = []
            try:
                async with self._connection() as conn:
                    if tx:
                        async with _apipelined(conn, after) as pipe:
                            return await _adrive(conn, pipe, op(*args), pending, after)
                    return await _adrive(conn, None, op(*args), pending, after)
            except retry as exc:
                attempt += 1
                if attempt >= RETRIES:
                    raise ConflictError("transaction", op.__name__) from exc
                await asyncio.sleep(_backoff(attempt))
            except psycopg.Error as exc:
                raise _storage_error(exc, pending, self._where) from exc

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


async def _adrive(
    conn: Any, pipe: Any, gen: Gen[_T], pending: list[Exception], after: list[Q]
) -> _T:
    """The asyncio twin of :func:`_drive`."""
    result: Any = None
    while True:
        try:
            step = gen.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        sent: list[tuple[Any, Q]] = []
        for q in _steps(step):
            if _deferred(pipe, q, after):
                sent.append((None, q))
                continue
            cur = conn.cursor()
            if q.on_unique is not None:
                pending.append(q.on_unique)
            if q.fetch != "many":
                await cur.execute(q.sql, q.params)
            elif q.params:
                await cur.executemany(q.sql, q.params)
            sent.append((cur, q))
        results: list[Any] = []
        for cur, q in sent:
            if q.fetch in ("none", "many", AFTER_COMMIT):
                results.append(None)
                continue
            if q.fetch == "rowcount":
                if pipe is not None:
                    await pipe.sync()
                results.append(cur.rowcount)
            elif q.fetch == "one":
                results.append(await cur.fetchone())
            else:
                results.append(await cur.fetchall())
            pending.clear()
        result = results[0] if isinstance(step, Q) else tuple(results)
