"""The PostgreSQL plumbing shared by :mod:`~chatmgmt.storage.postgres` and
:mod:`~chatmgmt.storage.postgres_delivery`: one copy of every operation, two drivers.

Every operation is written once, as a generator that yields :class:`Q` statements and receives
their results (a row, the rows, the row count); it raises the library's errors itself. A driver
runs it on a connection: :class:`PostgresDatabase` with psycopg's blocking connections,
:class:`AsyncPostgresDatabase` with its asyncio connections. Neither driver knows any SQL, and
no SQL or rule is written twice.

* An operation marked ``tx=True`` runs in one transaction (``BEGIN`` … ``COMMIT``); anything it
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

#: the advisory lock key that serializes migrations and index creation (any fixed 64-bit value)
_DDL_LOCK = 0x63686174_6D676D74


@attrs.frozen
class Q:
    """One statement: SQL text (fixed, or built from whitelisted names only), its bound
    parameters, and what the operation wants back: ``"one"`` (a row or None), ``"all"``
    (the rows), ``"rowcount"``, ``"many"`` (executemany over ``params``, nothing back) or
    ``"none"``."""

    sql: str
    params: Sequence[Any] = ()
    fetch: str = "none"


Gen = Generator[Q, Any, _T]
"""An operation: yields statements, receives their results, returns its value."""


def b(text: str) -> bytes:
    """A free-form key as stored (``bytea``): its UTF-8 bytes (surrogates kept)."""
    return text.encode("utf-8", "surrogatepass")


def s(data: bytes | memoryview) -> str:
    """The string a :func:`b` value came from."""
    return bytes(data).decode("utf-8", "surrogatepass")


def channel_tag(namespace: str) -> str:
    """The ``NOTIFY`` payload of a namespace: a short digest (fixed size, any namespace)."""
    return hashlib.sha256(b(namespace)).hexdigest()[:24]


def migrate_op(component: str, migrations: Sequence[str], latest: int, where: str) -> Gen[int]:
    """Create the version table, refuse a newer schema, apply the missing migrations; returns
    the version found. Runs in one transaction under an advisory lock."""
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
        for statement in script.split(";"):
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
        if isinstance(target, str):
            from psycopg_pool import ConnectionPool

            self.conninfo = target
            self.pool: Any = ConnectionPool(
                target,
                min_size=min_size,
                max_size=max_size,
                kwargs={"autocommit": True},
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
            try:
                with self._connection() as conn:
                    if tx:
                        with conn.transaction():
                            return _drive(conn.cursor(), op(*args))
                    return _drive(conn.cursor(), op(*args))
            except retry as exc:
                attempt += 1
                if attempt >= RETRIES:
                    raise ConflictError("transaction", op.__name__) from exc
                time.sleep(_backoff(attempt))
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                raise StorageError(f"PostgreSQL {self._where}: {exc}") from exc
            except psycopg.Error as exc:
                raise StorageError(f"PostgreSQL {self._where}: {exc}") from exc

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


def _drive(cur: Any, gen: Gen[_T]) -> _T:
    result: Any = None
    while True:
        try:
            q = gen.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        result = _execute(cur, q)


def _execute(cur: Any, q: Q) -> Any:
    if q.fetch == "many":
        if q.params:
            cur.executemany(q.sql, q.params)
        return None
    cur.execute(q.sql, q.params)
    if q.fetch == "one":
        return cur.fetchone()
    if q.fetch == "all":
        return cur.fetchall()
    if q.fetch == "rowcount":
        return cur.rowcount
    return None


class AsyncPostgresDatabase:
    """The asyncio twin of :class:`PostgresDatabase`: a DSN (an
    :class:`psycopg_pool.AsyncConnectionPool` is opened on first use and owned) or an
    ``AsyncConnectionPool`` the host already has. Runs the same operations."""

    def __init__(self, target: Any, *, min_size: int = 1, max_size: int = 16) -> None:
        self._psycopg = _psycopg()
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
            try:
                async with self._connection() as conn:
                    if tx:
                        async with conn.transaction():
                            return await _adrive(conn.cursor(), op(*args))
                    return await _adrive(conn.cursor(), op(*args))
            except retry as exc:
                attempt += 1
                if attempt >= RETRIES:
                    raise ConflictError("transaction", op.__name__) from exc
                await asyncio.sleep(_backoff(attempt))
            except psycopg.Error as exc:
                raise StorageError(f"PostgreSQL {self._where}: {exc}") from exc

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


async def _adrive(cur: Any, gen: Gen[_T]) -> _T:
    result: Any = None
    while True:
        try:
            q = gen.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        if q.fetch == "many":
            if q.params:
                await cur.executemany(q.sql, q.params)
            result = None
            continue
        await cur.execute(q.sql, q.params)
        if q.fetch == "one":
            result = await cur.fetchone()
        elif q.fetch == "all":
            result = await cur.fetchall()
        elif q.fetch == "rowcount":
            result = cur.rowcount
        else:
            result = None
