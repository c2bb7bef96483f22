"""SQLite :class:`~chatmgmt.ports.DeliveryStore`: the webhook dispatcher's state, durable.

Stdlib :mod:`sqlite3` in WAL mode, through the same :class:`~chatmgmt.storage.sqlite.SQLiteDatabase`
as :class:`~chatmgmt.storage.sqlite.SQLiteStorage`, so the outbox and the delivery state may
live in one file (and a restarted dispatcher finds both). Its tables are prefixed ``wh_`` and
carry their own schema version (table ``wh_schema_version``), so they never collide with the
storage's migrations. Every row carries its ``ns`` (namespace): tenants share a file safely.

Every operation is one transaction (``BEGIN IMMEDIATE`` for writes), so each is atomic across
threads and processes; a process killed at any point loses nothing that committed.

Layout: ``wh_deliveries`` (one row per delivery; ``seq`` is the order of addition, ``qorder``
the per-endpoint queue position, re-drawn on replay; ``ready`` marks a pending delivery that
heads all its chats, and ``due_at`` = max(next attempt, lease end) orders the claim through
the partial index ``wh_ready``), ``wh_attempts`` (append-only), ``wh_chat_queue`` (the pending
deliveries of each chat, by ``qorder``), ``wh_seen`` (event ids already fanned out or
buffered, for idempotency), ``wh_buffer`` (batch buffers) and ``wh_endpoints`` (health and
the queue counter). A claim reads only ready rows: O(k log n).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence
from typing import Any

from ..model import Event
from ..ports import (
    Attempt,
    BufferedEvent,
    Delivery,
    DeliveryStatus,
    EndpointHealth,
)
from ._codec import decode, encode
from ._sqlite_db import migrate
from .sqlite import SQLiteDatabase

__all__ = ["WEBHOOK_SCHEMA_VERSION", "AsyncSQLiteDeliveryStore", "SQLiteDeliveryStore"]

_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS wh_deliveries (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        ns TEXT NOT NULL, endpoint_id TEXT NOT NULL, id TEXT NOT NULL,
        event_type TEXT NOT NULL, event_ids TEXT NOT NULL, chat_keys TEXT NOT NULL,
        body BLOB NOT NULL, created_at REAL NOT NULL, next_attempt_at REAL NOT NULL,
        status TEXT NOT NULL, round_start INTEGER NOT NULL, dead_reason TEXT NOT NULL,
        finished_at REAL, lease_until REAL NOT NULL DEFAULT 0, qorder INTEGER NOT NULL DEFAULT 0,
        ready INTEGER NOT NULL DEFAULT 0, due_at REAL NOT NULL DEFAULT 0,
        UNIQUE (ns, endpoint_id, id)
    );
    CREATE INDEX IF NOT EXISTS wh_ready ON wh_deliveries (ns, endpoint_id, due_at, qorder)
        WHERE ready = 1;
    CREATE INDEX IF NOT EXISTS wh_by_status ON wh_deliveries (ns, status, endpoint_id);
    CREATE TABLE IF NOT EXISTS wh_attempts (
        ns TEXT NOT NULL, endpoint_id TEXT NOT NULL, delivery_id TEXT NOT NULL, n INTEGER NOT NULL,
        at REAL NOT NULL, status INTEGER, latency_s REAL NOT NULL, response BLOB NOT NULL,
        error TEXT NOT NULL,
        PRIMARY KEY (ns, endpoint_id, delivery_id, n)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS wh_chat_queue (
        ns TEXT NOT NULL, endpoint_id TEXT NOT NULL, chat_key TEXT NOT NULL,
        qorder INTEGER NOT NULL, delivery_id TEXT NOT NULL,
        PRIMARY KEY (ns, endpoint_id, chat_key, qorder)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS wh_seen (
        ns TEXT NOT NULL, endpoint_id TEXT NOT NULL, event_id TEXT NOT NULL,
        delivery_id TEXT,
        PRIMARY KEY (ns, endpoint_id, event_id)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS wh_buffer (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        ns TEXT NOT NULL, endpoint_id TEXT NOT NULL, event_id TEXT NOT NULL,
        buffered_at REAL NOT NULL, event TEXT NOT NULL,
        UNIQUE (ns, endpoint_id, event_id)
    );
    CREATE TABLE IF NOT EXISTS wh_endpoints (
        ns TEXT NOT NULL, endpoint_id TEXT NOT NULL,
        failing_since REAL, disabled INTEGER NOT NULL DEFAULT 0,
        disabled_reason TEXT NOT NULL DEFAULT '', disabled_at REAL,
        qcounter INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (ns, endpoint_id)
    ) WITHOUT ROWID;
    """,
)

WEBHOOK_SCHEMA_VERSION = len(_MIGRATIONS)
"""The version of the delivery store's tables this release writes."""

_COLS = (
    "id, endpoint_id, event_type, event_ids, chat_keys, body, created_at, next_attempt_at, "
    "status, round_start, dead_reason, finished_at, lease_until, qorder"
)


def _migrate(db: SQLiteDatabase) -> None:
    migrate(db, "wh_schema_version", "webhook schema", _MIGRATIONS)


class SQLiteDeliveryStore:
    """The delivery store in SQLite, for one namespace (see the module docstring).

    ``database`` is a path or a shared :class:`~chatmgmt.storage.sqlite.SQLiteDatabase`
    (e.g. ``SQLiteStorage(...).database``, to keep the outbox and the delivery state in one
    file). Thread- and process-safe.

    >>> store = SQLiteDeliveryStore(":memory:", namespace="acme")
    >>> store.health("crm").disabled
    False
    """

    def __init__(
        self,
        database: str | os.PathLike[str] | SQLiteDatabase,
        namespace: str = "default",
        *,
        timeout: float = 30.0,
        synchronous: str = "NORMAL",
    ) -> None:
        if not isinstance(namespace, str):
            raise TypeError(f"namespace: must be a string, got {namespace!r}")
        self._owned = not isinstance(database, SQLiteDatabase)
        if isinstance(database, SQLiteDatabase):
            self.database = database
        else:
            self.database = SQLiteDatabase(database, timeout=timeout, synchronous=synchronous)
        self.namespace = namespace
        _migrate(self.database)

    def __repr__(self) -> str:
        return f"SQLiteDeliveryStore({self.database.path!r}, namespace={self.namespace!r})"

    # ------------------------------------------------------------------ rows

    def _attempts(self, conn: sqlite3.Connection, endpoint_id: str, did: str) -> list[Attempt]:
        rows = conn.execute(
            "SELECT at, status, latency_s, response, error FROM wh_attempts "
            "WHERE ns = ? AND endpoint_id = ? AND delivery_id = ? ORDER BY n",
            (self.namespace, endpoint_id, did),
        ).fetchall()
        return [Attempt(r[0], r[1], r[2], bytes(r[3]), r[4]) for r in rows]

    def _delivery(self, conn: sqlite3.Connection, row: Sequence[Any]) -> Delivery:
        return Delivery(
            id=row[0],
            endpoint_id=row[1],
            event_type=row[2],
            event_ids=tuple(json.loads(row[3])),
            chat_keys=tuple(json.loads(row[4])),
            body=bytes(row[5]),
            created_at=row[6],
            next_attempt_at=row[7],
            status=DeliveryStatus(row[8]),
            attempts=tuple(self._attempts(conn, row[1], row[0])),
            round_start=row[9],
            dead_reason=row[10],
            finished_at=row[11],
        )

    def _row(self, conn: sqlite3.Connection, endpoint_id: str, did: str) -> Any:
        return conn.execute(
            f"SELECT {_COLS} FROM wh_deliveries WHERE ns = ? AND endpoint_id = ? AND id = ?",
            (self.namespace, endpoint_id, did),
        ).fetchone()

    def _endpoint(self, conn: sqlite3.Connection, endpoint_id: str) -> None:
        conn.execute(
            "INSERT OR IGNORE INTO wh_endpoints (ns, endpoint_id) VALUES (?, ?)",
            (self.namespace, endpoint_id),
        )

    def _health(self, conn: sqlite3.Connection, endpoint_id: str) -> EndpointHealth:
        row = conn.execute(
            "SELECT failing_since, disabled, disabled_reason, disabled_at FROM wh_endpoints "
            "WHERE ns = ? AND endpoint_id = ?",
            (self.namespace, endpoint_id),
        ).fetchone()
        if row is None:
            return EndpointHealth(endpoint_id)
        return EndpointHealth(endpoint_id, row[0], bool(row[1]), row[2], row[3])

    # ------------------------------------------------------------------ ordering

    def _refresh(self, conn: sqlite3.Connection, endpoint_id: str, did: str) -> None:
        """Mark ``did`` ready when it is pending and heads every one of its chats."""
        ns = self.namespace
        row = conn.execute(
            "SELECT chat_keys, qorder, status FROM wh_deliveries "
            "WHERE ns = ? AND endpoint_id = ? AND id = ?",
            (ns, endpoint_id, did),
        ).fetchone()
        if row is None or row[2] != DeliveryStatus.PENDING.value:
            return
        for key in json.loads(row[0]):
            head = conn.execute(
                "SELECT MIN(qorder) FROM wh_chat_queue "
                "WHERE ns = ? AND endpoint_id = ? AND chat_key = ?",
                (ns, endpoint_id, key),
            ).fetchone()
            if head[0] != row[1]:
                return
        conn.execute(
            "UPDATE wh_deliveries SET ready = 1, due_at = MAX(next_attempt_at, lease_until) "
            "WHERE ns = ? AND endpoint_id = ? AND id = ?",
            (ns, endpoint_id, did),
        )

    def _enqueue(self, conn: sqlite3.Connection, d: Delivery) -> None:
        ns = self.namespace
        self._endpoint(conn, d.endpoint_id)
        conn.execute(
            "UPDATE wh_endpoints SET qcounter = qcounter + 1 WHERE ns = ? AND endpoint_id = ?",
            (ns, d.endpoint_id),
        )
        qorder = conn.execute(
            "SELECT qcounter FROM wh_endpoints WHERE ns = ? AND endpoint_id = ?",
            (ns, d.endpoint_id),
        ).fetchone()[0]
        conn.execute(
            "UPDATE wh_deliveries SET qorder = ?, ready = 0 "
            "WHERE ns = ? AND endpoint_id = ? AND id = ?",
            (qorder, ns, d.endpoint_id, d.id),
        )
        conn.executemany(
            "INSERT INTO wh_chat_queue VALUES (?, ?, ?, ?, ?)",
            [(ns, d.endpoint_id, key, qorder, d.id) for key in dict.fromkeys(d.chat_keys)],
        )
        self._refresh(conn, d.endpoint_id, d.id)

    def _dequeue(self, conn: sqlite3.Connection, endpoint_id: str, did: str) -> None:
        ns = self.namespace
        row = conn.execute(
            "SELECT chat_keys, qorder FROM wh_deliveries "
            "WHERE ns = ? AND endpoint_id = ? AND id = ?",
            (ns, endpoint_id, did),
        ).fetchone()
        conn.execute(
            "UPDATE wh_deliveries SET ready = 0 WHERE ns = ? AND endpoint_id = ? AND id = ?",
            (ns, endpoint_id, did),
        )
        if row is None:
            return
        for key in dict.fromkeys(json.loads(row[0])):
            conn.execute(
                "DELETE FROM wh_chat_queue "
                "WHERE ns = ? AND endpoint_id = ? AND chat_key = ? AND qorder = ?",
                (ns, endpoint_id, key, row[1]),
            )
            head = conn.execute(
                "SELECT delivery_id FROM wh_chat_queue "
                "WHERE ns = ? AND endpoint_id = ? AND chat_key = ? ORDER BY qorder LIMIT 1",
                (ns, endpoint_id, key),
            ).fetchone()
            if head is not None:
                self._refresh(conn, endpoint_id, head[0])

    def _insert(self, conn: sqlite3.Connection, d: Delivery) -> None:
        conn.execute(
            "INSERT INTO wh_deliveries (ns, endpoint_id, id, event_type, event_ids, chat_keys, "
            "body, created_at, next_attempt_at, status, round_start, dead_reason, finished_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self.namespace,
                d.endpoint_id,
                d.id,
                d.event_type,
                json.dumps(list(d.event_ids)),
                json.dumps(list(d.chat_keys)),
                d.body,
                d.created_at,
                d.next_attempt_at,
                d.status.value,
                d.round_start,
                d.dead_reason,
                d.finished_at,
            ),
        )
        conn.executemany(
            "INSERT INTO wh_attempts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    self.namespace,
                    d.endpoint_id,
                    d.id,
                    n,
                    a.at,
                    a.status,
                    a.latency_s,
                    a.response,
                    a.error,
                )
                for n, a in enumerate(d.attempts)
            ],
        )
        if d.status is DeliveryStatus.PENDING:
            self._enqueue(conn, d)

    # ------------------------------------------------------------------ the port

    def add(self, deliveries: Sequence[Delivery], buffered: Sequence[BufferedEvent] = ()) -> int:
        """See :meth:`chatmgmt.ports.DeliveryStore.add`."""
        ns = self.namespace
        added = 0
        with self.database.write() as conn:
            for d in deliveries:
                if self._row(conn, d.endpoint_id, d.id) is not None:
                    continue
                if any(
                    conn.execute(
                        "SELECT 1 FROM wh_seen WHERE ns = ? AND endpoint_id = ? AND event_id = ?",
                        (ns, d.endpoint_id, e),
                    ).fetchone()
                    for e in d.event_ids
                ):
                    continue
                self._endpoint(conn, d.endpoint_id)
                self._insert(conn, d)
                conn.executemany(
                    "INSERT OR REPLACE INTO wh_seen VALUES (?, ?, ?, ?)",
                    [(ns, d.endpoint_id, e, d.id) for e in d.event_ids],
                )
                added += 1
            for b in buffered:
                cur = conn.execute(
                    "INSERT OR IGNORE INTO wh_seen VALUES (?, ?, ?, NULL)",
                    (ns, b.endpoint_id, b.event.id),
                )
                if cur.rowcount == 0:
                    continue
                self._endpoint(conn, b.endpoint_id)
                conn.execute(
                    "INSERT INTO wh_buffer (ns, endpoint_id, event_id, buffered_at, event) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (ns, b.endpoint_id, b.event.id, b.buffered_at, encode(b.event)),
                )
                added += 1
        return added

    def buffered(self, endpoint_id: str) -> list[BufferedEvent]:
        """See :meth:`chatmgmt.ports.DeliveryStore.buffered`."""
        with self.database.read() as conn:
            rows = conn.execute(
                "SELECT buffered_at, event FROM wh_buffer WHERE ns = ? AND endpoint_id = ? "
                "ORDER BY seq",
                (self.namespace, endpoint_id),
            ).fetchall()
        return [BufferedEvent(endpoint_id, decode(r[1], Event), r[0]) for r in rows]

    def seal(self, endpoint_id: str, event_ids: Sequence[str], delivery: Delivery) -> bool:
        """See :meth:`chatmgmt.ports.DeliveryStore.seal`."""
        ns = self.namespace
        with self.database.write() as conn:
            if self._row(conn, endpoint_id, delivery.id) is not None:
                return False
            for e in event_ids:
                found = conn.execute(
                    "SELECT 1 FROM wh_buffer WHERE ns = ? AND endpoint_id = ? AND event_id = ?",
                    (ns, endpoint_id, e),
                ).fetchone()
                if found is None:
                    return False
            for e in event_ids:
                conn.execute(
                    "DELETE FROM wh_buffer WHERE ns = ? AND endpoint_id = ? AND event_id = ?",
                    (ns, endpoint_id, e),
                )
                conn.execute(
                    "UPDATE wh_seen SET delivery_id = ? "
                    "WHERE ns = ? AND endpoint_id = ? AND event_id = ?",
                    (delivery.id, ns, endpoint_id, e),
                )
            self._endpoint(conn, endpoint_id)
            self._insert(conn, delivery)
            return True

    def claim_due(self, endpoint_id: str, now: float, limit: int, lease_s: float) -> list[Delivery]:
        """See :meth:`chatmgmt.ports.DeliveryStore.claim_due`."""
        ns = self.namespace
        with self.database.write() as conn:
            if self._health(conn, endpoint_id).disabled or limit <= 0:
                return []
            rows = conn.execute(
                f"SELECT {_COLS} FROM wh_deliveries INDEXED BY wh_ready "
                "WHERE ns = ? AND endpoint_id = ? AND ready = 1 AND due_at <= ? "
                "ORDER BY due_at, qorder LIMIT ?",
                (ns, endpoint_id, now, limit),
            ).fetchall()
            until = now + lease_s
            conn.executemany(
                "UPDATE wh_deliveries SET lease_until = ?, due_at = ? "
                "WHERE ns = ? AND endpoint_id = ? AND id = ?",
                [(until, until, ns, endpoint_id, r[0]) for r in rows],
            )
            return [self._delivery(conn, r) for r in rows]

    def finish(
        self,
        endpoint_id: str,
        delivery_id: str,
        attempt: Attempt,
        status: DeliveryStatus,
        next_attempt_at: float,
        reason: str = "",
    ) -> EndpointHealth:
        """See :meth:`chatmgmt.ports.DeliveryStore.finish`."""
        ns = self.namespace
        key = (ns, endpoint_id, delivery_id)
        with self.database.write() as conn:
            self._endpoint(conn, endpoint_id)
            row = self._row(conn, endpoint_id, delivery_id)
            if row is not None:
                n = conn.execute(
                    "SELECT COUNT(*) FROM wh_attempts "
                    "WHERE ns = ? AND endpoint_id = ? AND delivery_id = ?",
                    key,
                ).fetchone()[0]
                conn.execute(
                    "INSERT INTO wh_attempts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        *key,
                        n,
                        attempt.at,
                        attempt.status,
                        attempt.latency_s,
                        attempt.response,
                        attempt.error,
                    ),
                )
                current = DeliveryStatus(row[8])
                if current is not DeliveryStatus.PENDING:
                    # a late finish (its lease ran out and another worker took over): keep the
                    # attempt; a success still counts
                    if attempt.ok and current is DeliveryStatus.DEAD:
                        conn.execute(
                            "UPDATE wh_deliveries SET status = ? "
                            "WHERE ns = ? AND endpoint_id = ? AND id = ?",
                            (DeliveryStatus.DELIVERED.value, *key),
                        )
                elif status is DeliveryStatus.PENDING:
                    conn.execute(
                        "UPDATE wh_deliveries SET next_attempt_at = ?, lease_until = 0, "
                        "due_at = ? WHERE ns = ? AND endpoint_id = ? AND id = ?",
                        (next_attempt_at, next_attempt_at, *key),
                    )
                else:
                    conn.execute(
                        "UPDATE wh_deliveries SET status = ?, dead_reason = ?, finished_at = ?, "
                        "lease_until = 0 WHERE ns = ? AND endpoint_id = ? AND id = ?",
                        (
                            status.value,
                            reason if status is DeliveryStatus.DEAD else "",
                            attempt.at,
                            *key,
                        ),
                    )
                    self._dequeue(conn, endpoint_id, delivery_id)
            if attempt.ok:
                conn.execute(
                    "UPDATE wh_endpoints SET failing_since = NULL WHERE ns = ? AND endpoint_id = ?",
                    (ns, endpoint_id),
                )
            else:
                conn.execute(
                    "UPDATE wh_endpoints SET failing_since = ? "
                    "WHERE ns = ? AND endpoint_id = ? AND failing_since IS NULL",
                    (attempt.at, ns, endpoint_id),
                )
            return self._health(conn, endpoint_id)

    def health(self, endpoint_id: str) -> EndpointHealth:
        """See :meth:`chatmgmt.ports.DeliveryStore.health`."""
        with self.database.read() as conn:
            return self._health(conn, endpoint_id)

    def disable(self, endpoint_id: str, reason: str, now: float) -> bool:
        """See :meth:`chatmgmt.ports.DeliveryStore.disable`."""
        ns = self.namespace
        with self.database.write() as conn:
            self._endpoint(conn, endpoint_id)
            cur = conn.execute(
                "UPDATE wh_endpoints SET disabled = 1, disabled_reason = ?, disabled_at = ? "
                "WHERE ns = ? AND endpoint_id = ? AND disabled = 0",
                (reason, now, ns, endpoint_id),
            )
            if cur.rowcount == 0:
                return False
            conn.execute(
                "UPDATE wh_deliveries SET status = ?, dead_reason = ?, finished_at = ?, "
                "lease_until = 0, ready = 0 WHERE ns = ? AND endpoint_id = ? AND status = ?",
                (
                    DeliveryStatus.DEAD.value,
                    f"endpoint disabled ({reason})",
                    now,
                    ns,
                    endpoint_id,
                    DeliveryStatus.PENDING.value,
                ),
            )
            conn.execute(
                "DELETE FROM wh_chat_queue WHERE ns = ? AND endpoint_id = ?", (ns, endpoint_id)
            )
            return True

    def enable(self, endpoint_id: str) -> None:
        """See :meth:`chatmgmt.ports.DeliveryStore.enable`."""
        with self.database.write() as conn:
            self._endpoint(conn, endpoint_id)
            conn.execute(
                "UPDATE wh_endpoints SET failing_since = NULL, disabled = 0, "
                "disabled_reason = '', disabled_at = NULL WHERE ns = ? AND endpoint_id = ?",
                (self.namespace, endpoint_id),
            )

    def get(self, endpoint_id: str, delivery_id: str) -> Delivery | None:
        """See :meth:`chatmgmt.ports.DeliveryStore.get`."""
        with self.database.read() as conn:
            row = self._row(conn, endpoint_id, delivery_id)
            return None if row is None else self._delivery(conn, row)

    def _select(self, where: str, params: Sequence[Any], order: str) -> list[Delivery]:
        with self.database.read() as conn:
            rows = conn.execute(
                f"SELECT {_COLS} FROM wh_deliveries WHERE ns = ?{where} ORDER BY {order}",
                (self.namespace, *params),
            ).fetchall()
            return [self._delivery(conn, r) for r in rows]

    def deliveries(
        self, endpoint_id: str | None = None, status: DeliveryStatus | None = None
    ) -> list[Delivery]:
        """See :meth:`chatmgmt.ports.DeliveryStore.deliveries`."""
        where = ""
        params: list[Any] = []
        if endpoint_id is not None:
            where += " AND endpoint_id = ?"
            params.append(endpoint_id)
        if status is not None:
            where += " AND status = ?"
            params.append(status.value)
        return self._select(where, params, "seq")

    def dead_letters(
        self, endpoint_id: str | None = None, since: float | None = None
    ) -> list[Delivery]:
        """See :meth:`chatmgmt.ports.DeliveryStore.dead_letters`."""
        where = " AND status = ?"
        params: list[Any] = [DeliveryStatus.DEAD.value]
        if endpoint_id is not None:
            where += " AND endpoint_id = ?"
            params.append(endpoint_id)
        if since is not None:
            where += " AND finished_at >= ?"
            params.append(since)
        return self._select(where, params, "COALESCE(finished_at, 0), seq")

    def _replay(self, conn: sqlite3.Connection, endpoint_id: str, did: str, now: float) -> bool:
        row = self._row(conn, endpoint_id, did)
        if row is None or row[8] != DeliveryStatus.DEAD.value:
            return False
        key = (self.namespace, endpoint_id, did)
        n = conn.execute(
            "SELECT COUNT(*) FROM wh_attempts WHERE ns = ? AND endpoint_id = ? AND delivery_id = ?",
            key,
        ).fetchone()[0]
        conn.execute(
            "UPDATE wh_deliveries SET status = ?, next_attempt_at = ?, round_start = ?, "
            "dead_reason = '', finished_at = NULL, lease_until = 0 "
            "WHERE ns = ? AND endpoint_id = ? AND id = ?",
            (DeliveryStatus.PENDING.value, now, n, *key),
        )
        self._enqueue(conn, self._delivery(conn, self._row(conn, endpoint_id, did)))
        return True

    def replay(self, endpoint_id: str, delivery_id: str, now: float) -> bool:
        """See :meth:`chatmgmt.ports.DeliveryStore.replay`."""
        with self.database.write() as conn:
            return self._replay(conn, endpoint_id, delivery_id, now)

    def replay_since(self, since: float, now: float, endpoint_id: str | None = None) -> int:
        """See :meth:`chatmgmt.ports.DeliveryStore.replay_since`."""
        where = ""
        params: list[Any] = [self.namespace, DeliveryStatus.DEAD.value, since]
        if endpoint_id is not None:
            where = " AND endpoint_id = ?"
            params.append(endpoint_id)
        with self.database.write() as conn:
            rows = conn.execute(
                "SELECT endpoint_id, id FROM wh_deliveries WHERE ns = ? AND status = ? "
                f"AND finished_at >= ?{where} ORDER BY finished_at, seq",
                params,
            ).fetchall()
            return sum(self._replay(conn, r[0], r[1], now) for r in rows)

    def purge(self, before: float) -> int:
        """See :meth:`chatmgmt.ports.DeliveryStore.purge`."""
        ns = self.namespace
        with self.database.write() as conn:
            rows = conn.execute(
                "SELECT endpoint_id, id, event_ids FROM wh_deliveries "
                "WHERE ns = ? AND status = ? AND COALESCE(finished_at, 0) < ?",
                (ns, DeliveryStatus.DELIVERED.value, before),
            ).fetchall()
            for ep, did, event_ids in rows:
                conn.execute(
                    "DELETE FROM wh_deliveries WHERE ns = ? AND endpoint_id = ? AND id = ?",
                    (ns, ep, did),
                )
                conn.execute(
                    "DELETE FROM wh_attempts WHERE ns = ? AND endpoint_id = ? AND delivery_id = ?",
                    (ns, ep, did),
                )
                conn.executemany(
                    "DELETE FROM wh_seen WHERE ns = ? AND endpoint_id = ? AND event_id = ?",
                    [(ns, ep, e) for e in json.loads(event_ids)],
                )
            return len(rows)

    # ------------------------------------------------------------------ lifecycle

    def aio(self) -> AsyncSQLiteDeliveryStore:
        """The async face of this store (calls run on the database's small thread pool)."""
        return AsyncSQLiteDeliveryStore(self)

    def close(self) -> None:
        """Close the database if this store opened it (a shared one stays open)."""
        if self._owned:
            self.database.close()


class AsyncSQLiteDeliveryStore:
    """Async face of a :class:`SQLiteDeliveryStore`: each call runs on the database's thread
    pool, so the event loop never waits on SQLite."""

    def __init__(self, sync: SQLiteDeliveryStore) -> None:
        self.sync = sync
        self.namespace = sync.namespace

    async def _run(self, fn: Any, *args: Any) -> Any:
        import asyncio

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.sync.database.executor(), fn, *args)

    async def add(
        self, deliveries: Sequence[Delivery], buffered: Sequence[BufferedEvent] = ()
    ) -> int:
        """See :meth:`SQLiteDeliveryStore.add`."""
        return int(await self._run(self.sync.add, deliveries, buffered))

    async def buffered(self, endpoint_id: str) -> list[BufferedEvent]:
        """See :meth:`SQLiteDeliveryStore.buffered`."""
        result: list[BufferedEvent] = await self._run(self.sync.buffered, endpoint_id)
        return result

    async def seal(self, endpoint_id: str, event_ids: Sequence[str], delivery: Delivery) -> bool:
        """See :meth:`SQLiteDeliveryStore.seal`."""
        return bool(await self._run(self.sync.seal, endpoint_id, event_ids, delivery))

    async def claim_due(
        self, endpoint_id: str, now: float, limit: int, lease_s: float
    ) -> list[Delivery]:
        """See :meth:`SQLiteDeliveryStore.claim_due`."""
        result: list[Delivery] = await self._run(
            self.sync.claim_due, endpoint_id, now, limit, lease_s
        )
        return result

    async def finish(
        self,
        endpoint_id: str,
        delivery_id: str,
        attempt: Attempt,
        status: DeliveryStatus,
        next_attempt_at: float,
        reason: str = "",
    ) -> EndpointHealth:
        """See :meth:`SQLiteDeliveryStore.finish`."""
        result: EndpointHealth = await self._run(
            self.sync.finish, endpoint_id, delivery_id, attempt, status, next_attempt_at, reason
        )
        return result

    async def health(self, endpoint_id: str) -> EndpointHealth:
        """See :meth:`SQLiteDeliveryStore.health`."""
        result: EndpointHealth = await self._run(self.sync.health, endpoint_id)
        return result

    async def disable(self, endpoint_id: str, reason: str, now: float) -> bool:
        """See :meth:`SQLiteDeliveryStore.disable`."""
        return bool(await self._run(self.sync.disable, endpoint_id, reason, now))

    async def enable(self, endpoint_id: str) -> None:
        """See :meth:`SQLiteDeliveryStore.enable`."""
        await self._run(self.sync.enable, endpoint_id)

    async def get(self, endpoint_id: str, delivery_id: str) -> Delivery | None:
        """See :meth:`SQLiteDeliveryStore.get`."""
        result: Delivery | None = await self._run(self.sync.get, endpoint_id, delivery_id)
        return result

    async def deliveries(
        self, endpoint_id: str | None = None, status: DeliveryStatus | None = None
    ) -> list[Delivery]:
        """See :meth:`SQLiteDeliveryStore.deliveries`."""
        result: list[Delivery] = await self._run(self.sync.deliveries, endpoint_id, status)
        return result

    async def dead_letters(
        self, endpoint_id: str | None = None, since: float | None = None
    ) -> list[Delivery]:
        """See :meth:`SQLiteDeliveryStore.dead_letters`."""
        result: list[Delivery] = await self._run(self.sync.dead_letters, endpoint_id, since)
        return result

    async def replay(self, endpoint_id: str, delivery_id: str, now: float) -> bool:
        """See :meth:`SQLiteDeliveryStore.replay`."""
        return bool(await self._run(self.sync.replay, endpoint_id, delivery_id, now))

    async def replay_since(self, since: float, now: float, endpoint_id: str | None = None) -> int:
        """See :meth:`SQLiteDeliveryStore.replay_since`."""
        return int(await self._run(self.sync.replay_since, since, now, endpoint_id))

    async def purge(self, before: float) -> int:
        """See :meth:`SQLiteDeliveryStore.purge`."""
        return int(await self._run(self.sync.purge, before))

    async def aclose(self) -> None:
        """Close the database if the sync store opened it."""
        self.sync.close()
