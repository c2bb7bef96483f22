"""How :mod:`~chatmgmt.storage._pg`'s drivers talk to the server: libpq's pipeline mode used
directly, one copy for the sync and the asyncio driver.

psycopg's cursors cost ~35 µs of client CPU per statement (cursor object, query conversion,
prepared-statement bookkeeping, result bookkeeping) and its pipeline object ~25 µs more per
transaction; a unit of work sends five statements and an open with its end a dozen, so that
machinery was a large share of a worker's CPU (docs/performance.md). Here every statement goes
through the connection's ``pgconn`` (psycopg's libpq wrapper, in C with ``psycopg[binary]``):
its parameters are dumped by a :class:`psycopg.adapt.Transformer` kept per connection (the
same dumpers and loaders psycopg's cursors use, ``_pg_arrays`` included), it is prepared once
per connection under a name of ours (``_cm_<n>``, never psycopg's ``_pg3_<n>``; the ``PREPARE``
rides in the same pipeline as its first execution), and its rows are loaded by the same
Transformer. The waiting is psycopg's own (``Connection.wait`` over its C generators
``pipeline_communicate`` and ``fetch_many``), so the sync driver blocks the way psycopg does
(the GIL released while waiting) and the asyncio one awaits.

:func:`protocol` runs one operation (a generator of :class:`~chatmgmt.storage._pg.Q`) as a
generator of libpq waits: statements whose answer the operation does not need are queued and
travel with the next batch that needs one (each batch ends with a ``Sync``), so a transaction
is ``BEGIN`` + its reads in one round trip and its writes + ``COMMIT`` (+ the statements sent
after the commit) in another. A server error is matched to the statement that caused it (a
unique violation of a statement with ``on_unique`` becomes that error); the driver then leaves
the pipeline and rolls back (:func:`recover`).

A host that discards the connection's prepared statements (``DISCARD ALL``, ``DEALLOCATE``)
makes the next use of one fail with ``InvalidSqlStatementName``: the drivers forget the
connection's names and run the operation again.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Generator
from typing import Any, TypeVar

from psycopg import errors as pg_errors
from psycopg import pq
from psycopg.adapt import PyFormat, Transformer
from psycopg.waiting import Ready, Wait

from ._pg import IMPLICIT

__all__ = ["Session", "protocol", "recover", "session"]

_T = TypeVar("_T")

#: at most this many statements prepared per connection; past it, statements travel unnamed
MAX_PREPARED = 300


_TUPLES_OK = pq.ExecStatus.TUPLES_OK
_COMMAND_OK = pq.ExecStatus.COMMAND_OK
_FATAL = pq.ExecStatus.FATAL_ERROR
_SYNC = pq.ExecStatus.PIPELINE_SYNC
_PIPELINE_OFF = pq.PipelineStatus.OFF
_WAIT_R, _WAIT_RW, _READY_R = Wait.R, Wait.RW, Ready.R

_PLACEHOLDER = re.compile(r"%(.)")
_FORMATS = {"s": PyFormat.AUTO, "b": PyFormat.BINARY, "t": PyFormat.TEXT}

#: SQL text -> (the query with ``$n`` placeholders, the format of each parameter)
_CONVERTED: dict[str, tuple[bytes, list[PyFormat]]] = {}


def _convert(sql: str) -> tuple[bytes, list[PyFormat]]:
    """``%s``/``%b``/``%t`` -> ``$1``, ``$2``…; ``%%`` -> ``%`` (the statements here are ours:
    fixed text or built from whitelisted names, never from data)."""
    got = _CONVERTED.get(sql)
    if got is None:
        formats: list[PyFormat] = []

        def number(match: re.Match[str]) -> str:
            char = match.group(1)
            if char == "%":
                return "%"
            formats.append(_FORMATS[char])
            return f"${len(formats)}"

        got = _CONVERTED[sql] = (_PLACEHOLDER.sub(number, sql).encode(), formats)
    return got


class Session:
    """What this module keeps per connection: its Transformer and the statements prepared on
    it, by (SQL text, parameter types)."""

    __slots__ = (
        "__weakref__",
        "batch",
        "block",
        "count",
        "encoding",
        "limit",
        "names",
        "pgconn",
        "tx",
    )

    def __init__(self, conn: Any) -> None:
        self.pgconn: Any = conn.pgconn
        self.tx: Any = Transformer(conn)
        self.names: dict[tuple[str, tuple[int, ...]], bytes] = {}
        self.count = 0  # names are never reused on a connection, even after forget()
        self.encoding: str = conn.info.encoding
        self.batch: _Batch | None = None  # the operation in flight
        self.block = False  # the operation in flight sent BEGIN (an explicit block)
        # a host that turned psycopg's preparing off (``prepare_threshold=None``, e.g. behind
        # a transaction-pooling PgBouncer) gets no prepared statements from us either
        self.limit = MAX_PREPARED if conn.prepare_threshold is not None else 0

    def name(self, key: tuple[str, tuple[int, ...]]) -> bytes:
        """A new statement name for ``key``, remembered."""
        self.count += 1
        name = self.names[key] = b"_cm_%d" % self.count
        return name

    def forget(self) -> None:
        """The server no longer has our prepared statements (see the module docstring)."""
        self.names.clear()


_SESSIONS: weakref.WeakKeyDictionary[Any, Session] = weakref.WeakKeyDictionary()


def session(conn: Any) -> Session:
    """The :class:`Session` of a psycopg connection (created on first use)."""
    got = _SESSIONS.get(conn)
    if got is None or got.pgconn is not conn.pgconn:
        got = _SESSIONS[conn] = Session(conn)
    return got


#: the entry of a row of a ``"many"`` statement but its last (answered by the last)
_ROW = object()


class _Batch:
    """Statements sent in pipeline mode whose answers are not read yet."""

    __slots__ = ("answers", "entries", "session", "syncs", "unsynced")

    def __init__(self, sess: Session) -> None:
        self.session = sess
        self.answers = 0  # statements sent since the last flush (one answer each)
        self.syncs = 0  # Syncs sent since the last flush (see :meth:`sync`)
        self.unsynced = False  # statements sent since the last Sync
        #: what each command sent answers: a statement of the operation, or the key of a
        #: PREPARE
        self.entries: list[Any] = []

    def add(self, q: Any) -> int:
        """Send statement ``q`` (``fetch="many"``: once per parameter row) into the
        connection's buffer; it leaves with the next :meth:`flush`. Returns the place of its
        answer in what the next :meth:`flush` returns (-1: nothing sent, a ``"many"``
        without rows)."""
        sess = self.session
        query, formats = _convert(q.sql)
        rows = q.params if q.fetch == "many" else (q.params,)
        pgconn, tx, entries = sess.pgconn, sess.tx, self.entries
        last = len(rows) - 1
        for row, params in enumerate(rows):
            if formats:
                dumped, types, fmts = tx.dump_sequence(params, formats), tuple(tx.types), tx.formats
            else:
                dumped, types, fmts = None, (), None
            key = (q.sql, types)
            name = sess.names.get(key)
            if name is None and len(sess.names) < min(sess.limit, MAX_PREPARED):
                name = sess.name(key)
                pgconn.send_prepare(name, query, types or None)
                entries.append(key)
            if name is None:  # too many: unnamed, parsed every time
                pgconn.send_query_params(query, dumped, types or None, fmts)
            else:
                pgconn.send_query_prepared(name, dumped, fmts)
            entries.append(q if row == last else _ROW)
        if last < 0:
            return -1
        self.unsynced = True
        self.answers += 1
        return self.answers - 1

    def sync(self) -> None:
        """Send a ``Sync`` now (it ends the implicit transaction of what was sent before it);
        the answers are read by the next :meth:`flush`."""
        self.session.pgconn.pipeline_sync()
        self.syncs += 1
        self.unsynced = False

    def flush(self, sync: bool = True) -> Generator[Any, Any, list[Any]]:
        """Send a ``Sync`` after everything sent (unless one follows the last statement
        already; with ``sync=False`` a ``Flush``: the server answers what it was sent and an
        implicit transaction stays open) and read every answer; returns one result per
        statement added (prepares and all but the last row of a ``"many"`` left out), or
        raises the first server error."""
        sess = self.session
        if sync and self.unsynced:
            self.sync()
        entries, self.entries, self.answers = self.entries, [], 0
        if not sync:
            sess.pgconn.send_flush_request()
        syncs, self.syncs = self.syncs, 0
        fetched = yield _exchange(sess.pgconn, syncs, len(entries))
        out: list[Any] = []
        error: Exception | None = None
        for entry, results in zip(entries, fetched, strict=True):
            result = results[-1]
            status = result.status
            if isinstance(entry, tuple) or entry is _ROW:  # a PREPARE, or a row of a "many"
                if status != _COMMAND_OK and isinstance(entry, tuple):
                    sess.names.pop(entry, None)
                if status == _FATAL and error is None:
                    error = pg_errors.error_from_result(result, encoding=sess.encoding)
                continue
            if status == _FATAL:
                if error is None:
                    error = pg_errors.error_from_result(result, encoding=sess.encoding)
                    if entry.on_unique is not None and isinstance(error, pg_errors.UniqueViolation):
                        raise entry.on_unique from error
                out.append(None)
            elif status != _TUPLES_OK and status != _COMMAND_OK:  # aborted by an earlier error
                out.append(None)
            else:
                out.append(_answer(sess.tx, entry.fetch, result))
        if error is not None:
            raise error
        return out

    def __bool__(self) -> bool:
        """Anything to read: statements sent, or a ``Sync``."""
        return bool(self.entries or self.syncs)


def _exchange(
    pgconn: Any, syncs: int = 1, commands: int = 0
) -> Generator[Any, Any, list[list[Any]]]:
    """Flush what was sent and read the results up to the last of ``syncs`` ``Sync``\\ s (none:
    up to the answer of the ``commands``-th command, after a ``Flush``): one list of results
    per command (a psycopg wait generator: it yields what to wait for, receives what is
    ready). One wait per round trip when the answers arrive together."""
    while pgconn.flush():  # nonblocking: more to send
        if (yield _WAIT_RW) & _READY_R:
            pgconn.consume_input()
    out: list[list[Any]] = []
    results: list[Any] = []
    while syncs or len(out) < commands:
        while pgconn.is_busy():
            yield _WAIT_R
            pgconn.consume_input()
        while notice := pgconn.notifies():  # a host's LISTEN on this connection
            if pgconn.notify_handler:
                pgconn.notify_handler(notice)
        result = pgconn.get_result()
        if result is None:  # the end of one command's results
            out.append(results)
            results = []
        elif result.status == _SYNC:
            syncs -= 1
        else:
            results.append(result)
    return out


def _answer(tx: Any, fetch: str, result: Any) -> Any:
    if fetch == "one":
        if not result.ntuples:
            return None
        tx.set_pgresult(result)
        return tx.load_row(0, tuple)
    if fetch == "all":
        tx.set_pgresult(result)
        return tx.load_rows(0, result.ntuples, tuple)
    if fetch == "rowcount":
        return int(result.command_tuples or 0)
    return None


#: ``Q.fetch`` values whose answer an operation reads
_WANTED = frozenset({"one", "all", "rowcount"})


def protocol(
    sess: Session,
    op: Generator[Any, Any, _T],
    tx: bool | str,
    begin: Any,
    commit: Any,
    marks: tuple[str, str],
) -> Generator[Any, Any, _T]:
    """Run operation ``op`` on ``sess``'s connection: a generator of libpq waits (run by the
    driver with ``conn.wait``) returning the operation's value. With ``tx=True``, ``begin``
    and ``commit`` (statements) are wrapped around it; with ``tx=IMPLICIT`` it is one
    implicit transaction instead (``_pg.IMPLICIT``: the commit is a ``Sync``). ``marks``
    are two ``Q.fetch`` values: statements marked with the first follow the commit in its
    round trip (with ``tx``; else they are sent in turn); a statement marked with the second
    stands for the commit itself, sent there (so reads the operation yields beside it, before
    it, travel in the commit's round trip and are answered: they see the transaction's own
    writes), and nothing may follow it but statements of the first mark. On success the
    connection has left pipeline mode; on error the driver calls :func:`recover`."""
    after_commit, at_commit = marks
    implicit = tx == IMPLICIT
    sess.pgconn.enter_pipeline_mode()
    batch = sess.batch = _Batch(sess)
    after: list[Any] = []
    committed = not tx
    sess.block = bool(tx) and not implicit
    if sess.block:
        batch.add(begin)
    result: Any = None
    while True:
        try:
            step = op.send(result)
        except StopIteration as stop:
            value: _T = stop.value
            break
        single = not isinstance(step, tuple)
        steps = (step,) if single else step
        wanted = False
        places: list[int] = []  # where each statement's answer comes in the next flush
        for q in steps:
            fetch = q.fetch
            if fetch == after_commit and not committed:
                after.append(q)
            elif fetch == at_commit:
                if implicit:
                    batch.sync()
                else:
                    batch.add(commit)
                for later in after:
                    batch.add(later)
                committed, after = True, []
            else:
                place = batch.add(q)
                if place >= 0 and fetch in _WANTED:
                    wanted = True
                    places.append(place)
                    continue
            places.append(-1)
        if wanted:
            answers = yield from batch.flush(committed or not implicit)
            got = [None if place < 0 else answers[place] for place in places]
        else:
            got = [None] * len(places)
        result = got[0] if single else tuple(got)
    if not committed:
        if implicit:
            batch.sync()
        else:
            batch.add(commit)
        for q in after:
            batch.add(q)
    if batch:
        yield from batch.flush()
    sess.pgconn.exit_pipeline_mode()
    sess.batch = None
    return value


def recover_steps(sess: Session) -> Generator[Any, Any, None]:
    """After an error: roll back an open transaction, read what is left of the pipeline and
    leave it (a generator of libpq waits, like :func:`protocol`; one round trip). Unless the
    operation sent ``BEGIN``, a ``BEGIN`` goes first: it makes an implicit transaction still
    open a block that ``ROLLBACK`` ends without a warning (see ``_pg.IMPLICIT``)."""
    pgconn = sess.pgconn
    if pgconn.pipeline_status == _PIPELINE_OFF:
        pgconn.enter_pipeline_mode()
    if not sess.block:
        pgconn.send_query_params(b"BEGIN", None)
    pgconn.send_query_params(b"ROLLBACK", None)
    pgconn.pipeline_sync()
    yield _exchange(pgconn, 1 + (sess.batch.syncs if sess.batch is not None else 0))
    sess.batch = None
    pgconn.exit_pipeline_mode()


def recover(conn: Any, sess: Session) -> None:
    """:func:`recover_steps` on a sync connection; a connection that cannot be brought back
    to idle is closed (its pool replaces it)."""
    try:
        steps = recover_steps(sess)
        for wait in steps:
            conn.wait(wait)
    except Exception:
        conn.close()


async def arecover(conn: Any, sess: Session) -> None:
    """The asyncio twin of :func:`recover`."""
    try:
        for wait in recover_steps(sess):
            await conn.wait(wait)
    except Exception:
        await conn.close()
