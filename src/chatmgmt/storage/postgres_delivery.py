"""PostgreSQL :class:`~chatmgmt.ports.DeliveryStore`: the webhook dispatcher's state, durable
and shared by any number of dispatcher processes (extra ``chatmgmt[postgres]``).

The same layout and rules as :mod:`~chatmgmt.storage.sqlite_delivery` (tables prefixed
``chatmgmt_wh_``, component ``delivery`` of ``chatmgmt_schema_version``), each operation one
transaction written once as a generator of statements (:mod:`~chatmgmt.storage._pg`) and run by
the sync (:class:`PostgresDeliveryStore`) or the asyncio (:class:`AsyncPostgresDeliveryStore`)
driver.

* Every operation that changes an endpoint's queue (add, seal, finish, disable, enable,
  replay) first locks the endpoint's row, so per-chat order is decided by one writer at a time
  per endpoint, as in SQLite.
* :meth:`~PostgresDeliveryStore.claim_due` leases with ``FOR UPDATE SKIP LOCKED`` over the
  partial index of ready rows: concurrent dispatchers take disjoint deliveries without waiting
  for each other.
* Every row carries its namespace (``ns``); endpoint, delivery, event ids and chat keys are
  stored as ``bytea`` (any string is data).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..model import Event
from ..ports import Attempt, BufferedEvent, Delivery, DeliveryStatus, EndpointHealth
from ._codec import decode, encode
from ._pg import AsyncPostgresDatabase, Gen, PostgresDatabase, Q, b, migrate_op, s

__all__ = ["WEBHOOK_SCHEMA_VERSION", "AsyncPostgresDeliveryStore", "PostgresDeliveryStore"]

_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE chatmgmt_wh_deliveries (
        seq bigserial PRIMARY KEY,
        ns bytea NOT NULL, endpoint_id bytea NOT NULL, id bytea NOT NULL,
        event_type text NOT NULL, event_ids text NOT NULL, chat_keys text NOT NULL,
        body bytea NOT NULL, created_at float8 NOT NULL, next_attempt_at float8 NOT NULL,
        status text NOT NULL, round_start integer NOT NULL, dead_reason text NOT NULL,
        finished_at float8, lease_until float8 NOT NULL DEFAULT 0,
        qorder bigint NOT NULL DEFAULT 0, ready boolean NOT NULL DEFAULT false,
        due_at float8 NOT NULL DEFAULT 0,
        UNIQUE (ns, endpoint_id, id)
    );
    CREATE INDEX chatmgmt_wh_ready ON chatmgmt_wh_deliveries (ns, endpoint_id, due_at, qorder)
        WHERE ready;
    CREATE INDEX chatmgmt_wh_by_status ON chatmgmt_wh_deliveries (ns, status, endpoint_id);
    CREATE TABLE chatmgmt_wh_attempts (
        ns bytea NOT NULL, endpoint_id bytea NOT NULL, delivery_id bytea NOT NULL,
        n integer NOT NULL, at float8 NOT NULL, status integer, latency_s float8 NOT NULL,
        response bytea NOT NULL, error text NOT NULL,
        PRIMARY KEY (ns, endpoint_id, delivery_id, n)
    );
    CREATE TABLE chatmgmt_wh_chat_queue (
        ns bytea NOT NULL, endpoint_id bytea NOT NULL, chat_key bytea NOT NULL,
        qorder bigint NOT NULL, delivery_id bytea NOT NULL,
        PRIMARY KEY (ns, endpoint_id, chat_key, qorder)
    );
    CREATE TABLE chatmgmt_wh_seen (
        ns bytea NOT NULL, endpoint_id bytea NOT NULL, event_id bytea NOT NULL,
        delivery_id bytea,
        PRIMARY KEY (ns, endpoint_id, event_id)
    );
    CREATE TABLE chatmgmt_wh_buffer (
        seq bigserial PRIMARY KEY,
        ns bytea NOT NULL, endpoint_id bytea NOT NULL, event_id bytea NOT NULL,
        buffered_at float8 NOT NULL, event text NOT NULL,
        UNIQUE (ns, endpoint_id, event_id)
    );
    CREATE TABLE chatmgmt_wh_endpoints (
        ns bytea NOT NULL, endpoint_id bytea NOT NULL,
        failing_since float8, disabled boolean NOT NULL DEFAULT false,
        disabled_reason text NOT NULL DEFAULT '', disabled_at float8,
        qcounter bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (ns, endpoint_id)
    )
    """,
)

WEBHOOK_SCHEMA_VERSION = len(_MIGRATIONS)
"""The version of the delivery store's tables this release writes."""

_COMPONENT = "delivery"

_COLS = (
    "id, endpoint_id, event_type, event_ids, chat_keys, body, created_at, next_attempt_at, "
    "status, round_start, dead_reason, finished_at, lease_until, qorder"
)
_PENDING, _DELIVERED, _DEAD = (s_.value for s_ in DeliveryStatus)


# --------------------------------------------------------------------------- operations


def _attempts(ns: bytes, ep: bytes, did: bytes) -> Gen[list[Attempt]]:
    rows = yield Q(
        "SELECT at, status, latency_s, response, error FROM chatmgmt_wh_attempts "
        "WHERE ns = %s AND endpoint_id = %s AND delivery_id = %s ORDER BY n",
        (ns, ep, did),
        "all",
    )
    return [Attempt(r[0], r[1], r[2], bytes(r[3]), r[4]) for r in rows]


def _delivery(ns: bytes, row: Sequence[Any]) -> Gen[Delivery]:
    attempts = yield from _attempts(ns, bytes(row[1]), bytes(row[0]))
    return Delivery(
        id=s(row[0]),
        endpoint_id=s(row[1]),
        event_type=row[2],
        event_ids=tuple(json.loads(row[3])),
        chat_keys=tuple(json.loads(row[4])),
        body=bytes(row[5]),
        created_at=row[6],
        next_attempt_at=row[7],
        status=DeliveryStatus(row[8]),
        attempts=tuple(attempts),
        round_start=row[9],
        dead_reason=row[10],
        finished_at=row[11],
    )


def _row(ns: bytes, ep: bytes, did: bytes) -> Gen[Any]:
    row = yield Q(
        f"SELECT {_COLS} FROM chatmgmt_wh_deliveries "
        "WHERE ns = %s AND endpoint_id = %s AND id = %s",
        (ns, ep, did),
        "one",
    )
    return row


def _lock_endpoints(ns: bytes, eps: Sequence[bytes]) -> Gen[None]:
    """Create the endpoints' rows if missing and lock them, in a fixed order."""
    ordered = sorted(set(eps))
    if not ordered:
        return
    yield Q(
        "INSERT INTO chatmgmt_wh_endpoints (ns, endpoint_id) VALUES (%s, %s) "
        "ON CONFLICT DO NOTHING",
        [(ns, ep) for ep in ordered],
        "many",
    )
    yield Q(
        "SELECT 1 FROM chatmgmt_wh_endpoints WHERE ns = %s AND endpoint_id = ANY(%s) "
        "ORDER BY endpoint_id FOR UPDATE",
        (ns, ordered),
        "all",
    )


def _health(ns: bytes, ep: bytes, endpoint_id: str) -> Gen[EndpointHealth]:
    row = yield Q(
        "SELECT failing_since, disabled, disabled_reason, disabled_at "
        "FROM chatmgmt_wh_endpoints WHERE ns = %s AND endpoint_id = %s",
        (ns, ep),
        "one",
    )
    if row is None:
        return EndpointHealth(endpoint_id)
    return EndpointHealth(endpoint_id, row[0], bool(row[1]), row[2], row[3])


def _refresh(ns: bytes, ep: bytes, did: bytes) -> Gen[None]:
    """Mark ``did`` ready when it is pending and heads every one of its chats."""
    row = yield Q(
        "SELECT chat_keys, qorder, status FROM chatmgmt_wh_deliveries "
        "WHERE ns = %s AND endpoint_id = %s AND id = %s",
        (ns, ep, did),
        "one",
    )
    if row is None or row[2] != _PENDING:
        return
    for key in json.loads(row[0]):
        head = yield Q(
            "SELECT min(qorder) FROM chatmgmt_wh_chat_queue "
            "WHERE ns = %s AND endpoint_id = %s AND chat_key = %s",
            (ns, ep, b(key)),
            "one",
        )
        if head[0] != row[1]:
            return
    yield Q(
        "UPDATE chatmgmt_wh_deliveries SET ready = true, "
        "due_at = GREATEST(next_attempt_at, lease_until) "
        "WHERE ns = %s AND endpoint_id = %s AND id = %s",
        (ns, ep, did),
    )


def _enqueue(ns: bytes, d: Delivery) -> Gen[None]:
    ep, did = b(d.endpoint_id), b(d.id)
    row = yield Q(
        "UPDATE chatmgmt_wh_endpoints SET qcounter = qcounter + 1 "
        "WHERE ns = %s AND endpoint_id = %s RETURNING qcounter",
        (ns, ep),
        "one",
    )
    qorder = int(row[0])
    yield Q(
        "UPDATE chatmgmt_wh_deliveries SET qorder = %s, ready = false "
        "WHERE ns = %s AND endpoint_id = %s AND id = %s",
        (qorder, ns, ep, did),
    )
    yield Q(
        "INSERT INTO chatmgmt_wh_chat_queue VALUES (%s, %s, %s, %s, %s)",
        [(ns, ep, b(key), qorder, did) for key in dict.fromkeys(d.chat_keys)],
        "many",
    )
    yield from _refresh(ns, ep, did)


def _dequeue(ns: bytes, ep: bytes, did: bytes) -> Gen[None]:
    row = yield Q(
        "UPDATE chatmgmt_wh_deliveries SET ready = false "
        "WHERE ns = %s AND endpoint_id = %s AND id = %s RETURNING chat_keys, qorder",
        (ns, ep, did),
        "one",
    )
    if row is None:
        return
    for key in dict.fromkeys(json.loads(row[0])):
        yield Q(
            "DELETE FROM chatmgmt_wh_chat_queue "
            "WHERE ns = %s AND endpoint_id = %s AND chat_key = %s AND qorder = %s",
            (ns, ep, b(key), row[1]),
        )
        head = yield Q(
            "SELECT delivery_id FROM chatmgmt_wh_chat_queue "
            "WHERE ns = %s AND endpoint_id = %s AND chat_key = %s ORDER BY qorder LIMIT 1",
            (ns, ep, b(key)),
            "one",
        )
        if head is not None:
            yield from _refresh(ns, ep, bytes(head[0]))


def _insert(ns: bytes, d: Delivery) -> Gen[None]:
    ep, did = b(d.endpoint_id), b(d.id)
    yield Q(
        "INSERT INTO chatmgmt_wh_deliveries (ns, endpoint_id, id, event_type, event_ids, "
        "chat_keys, body, created_at, next_attempt_at, status, round_start, dead_reason, "
        "finished_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            ns,
            ep,
            did,
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
    yield Q(
        "INSERT INTO chatmgmt_wh_attempts VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        [
            (ns, ep, did, n, a.at, a.status, a.latency_s, a.response, a.error)
            for n, a in enumerate(d.attempts)
        ],
        "many",
    )
    if d.status is DeliveryStatus.PENDING:
        yield from _enqueue(ns, d)


def _add(ns: bytes, deliveries: Sequence[Delivery], buffered: Sequence[BufferedEvent]) -> Gen[int]:
    yield from _lock_endpoints(
        ns, [b(d.endpoint_id) for d in deliveries] + [b(x.endpoint_id) for x in buffered]
    )
    added = 0
    for d in deliveries:
        ep = b(d.endpoint_id)
        if (yield from _row(ns, ep, b(d.id))) is not None:
            continue
        seen = yield Q(
            "SELECT 1 FROM chatmgmt_wh_seen WHERE ns = %s AND endpoint_id = %s "
            "AND event_id = ANY(%s) LIMIT 1",
            (ns, ep, [b(e) for e in d.event_ids]),
            "one",
        )
        if seen is not None:
            continue
        yield from _insert(ns, d)
        yield Q(
            "INSERT INTO chatmgmt_wh_seen VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (ns, endpoint_id, event_id) DO UPDATE SET delivery_id = "
            "excluded.delivery_id",
            [(ns, ep, b(e), b(d.id)) for e in d.event_ids],
            "many",
        )
        added += 1
    for x in buffered:
        ep = b(x.endpoint_id)
        new = yield Q(
            "INSERT INTO chatmgmt_wh_seen VALUES (%s, %s, %s, NULL) ON CONFLICT DO NOTHING",
            (ns, ep, b(x.event.id)),
            "rowcount",
        )
        if new != 1:
            continue
        yield Q(
            "INSERT INTO chatmgmt_wh_buffer (ns, endpoint_id, event_id, buffered_at, event) "
            "VALUES (%s, %s, %s, %s, %s)",
            (ns, ep, b(x.event.id), x.buffered_at, encode(x.event)),
        )
        added += 1
    return added


def _buffered(ns: bytes, endpoint_id: str) -> Gen[list[BufferedEvent]]:
    rows = yield Q(
        "SELECT buffered_at, event FROM chatmgmt_wh_buffer WHERE ns = %s AND endpoint_id = %s "
        "ORDER BY seq",
        (ns, b(endpoint_id)),
        "all",
    )
    return [BufferedEvent(endpoint_id, decode(r[1], Event), r[0]) for r in rows]


def _seal(ns: bytes, endpoint_id: str, event_ids: Sequence[str], delivery: Delivery) -> Gen[bool]:
    ep = b(endpoint_id)
    yield from _lock_endpoints(ns, [ep])
    if (yield from _row(ns, ep, b(delivery.id))) is not None:
        return False
    wanted = [b(e) for e in dict.fromkeys(event_ids)]
    found = yield Q(
        "SELECT count(*) FROM chatmgmt_wh_buffer "
        "WHERE ns = %s AND endpoint_id = %s AND event_id = ANY(%s)",
        (ns, ep, wanted),
        "one",
    )
    if int(found[0]) != len(wanted):
        return False
    yield Q(
        "DELETE FROM chatmgmt_wh_buffer WHERE ns = %s AND endpoint_id = %s AND event_id = ANY(%s)",
        (ns, ep, wanted),
    )
    yield Q(
        "UPDATE chatmgmt_wh_seen SET delivery_id = %s "
        "WHERE ns = %s AND endpoint_id = %s AND event_id = ANY(%s)",
        (b(delivery.id), ns, ep, wanted),
    )
    yield from _insert(ns, delivery)
    return True


def _claim_due(
    ns: bytes, endpoint_id: str, now: float, limit: int, lease_s: float
) -> Gen[list[Delivery]]:
    ep = b(endpoint_id)
    health = yield from _health(ns, ep, endpoint_id)
    if health.disabled or limit <= 0:
        return []
    until = now + lease_s
    rows = yield Q(
        "WITH due AS (SELECT seq, due_at FROM chatmgmt_wh_deliveries "
        "WHERE ns = %s AND endpoint_id = %s AND ready AND due_at <= %s "
        "ORDER BY due_at, qorder LIMIT %s FOR UPDATE SKIP LOCKED) "
        "UPDATE chatmgmt_wh_deliveries d SET lease_until = %s, due_at = %s FROM due "
        f"WHERE d.seq = due.seq RETURNING {', '.join('d.' + c for c in _COLS.split(', '))}, "
        "due.due_at",
        (ns, ep, now, limit, until, until),
        "all",
    )
    rows.sort(key=lambda r: (r[14], r[13]))  # oldest due first (before the lease), queue order
    out = []
    for r in rows:
        out.append((yield from _delivery(ns, r)))
    return out


def _finish(
    ns: bytes,
    endpoint_id: str,
    delivery_id: str,
    attempt: Attempt,
    status: DeliveryStatus,
    next_attempt_at: float,
    reason: str,
) -> Gen[EndpointHealth]:
    ep, did = b(endpoint_id), b(delivery_id)
    key = (ns, ep, did)
    yield from _lock_endpoints(ns, [ep])
    row = yield from _row(ns, ep, did)
    if row is not None:
        n = yield Q(
            "SELECT count(*) FROM chatmgmt_wh_attempts "
            "WHERE ns = %s AND endpoint_id = %s AND delivery_id = %s",
            key,
            "one",
        )
        yield Q(
            "INSERT INTO chatmgmt_wh_attempts VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                *key,
                int(n[0]),
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
                yield Q(
                    "UPDATE chatmgmt_wh_deliveries SET status = %s "
                    "WHERE ns = %s AND endpoint_id = %s AND id = %s",
                    (_DELIVERED, *key),
                )
        elif status is DeliveryStatus.PENDING:
            yield Q(
                "UPDATE chatmgmt_wh_deliveries SET next_attempt_at = %s, lease_until = 0, "
                "due_at = %s WHERE ns = %s AND endpoint_id = %s AND id = %s",
                (next_attempt_at, next_attempt_at, *key),
            )
        else:
            yield Q(
                "UPDATE chatmgmt_wh_deliveries SET status = %s, dead_reason = %s, "
                "finished_at = %s, lease_until = 0 WHERE ns = %s AND endpoint_id = %s AND id = %s",
                (
                    status.value,
                    reason if status is DeliveryStatus.DEAD else "",
                    attempt.at,
                    *key,
                ),
            )
            yield from _dequeue(ns, ep, did)
    if attempt.ok:
        yield Q(
            "UPDATE chatmgmt_wh_endpoints SET failing_since = NULL "
            "WHERE ns = %s AND endpoint_id = %s",
            (ns, ep),
        )
    else:
        yield Q(
            "UPDATE chatmgmt_wh_endpoints SET failing_since = %s "
            "WHERE ns = %s AND endpoint_id = %s AND failing_since IS NULL",
            (attempt.at, ns, ep),
        )
    return (yield from _health(ns, ep, endpoint_id))


def _health_op(ns: bytes, endpoint_id: str) -> Gen[EndpointHealth]:
    return (yield from _health(ns, b(endpoint_id), endpoint_id))


def _disable(ns: bytes, endpoint_id: str, reason: str, now: float) -> Gen[bool]:
    ep = b(endpoint_id)
    yield from _lock_endpoints(ns, [ep])
    changed = yield Q(
        "UPDATE chatmgmt_wh_endpoints SET disabled = true, disabled_reason = %s, "
        "disabled_at = %s WHERE ns = %s AND endpoint_id = %s AND NOT disabled",
        (reason, now, ns, ep),
        "rowcount",
    )
    if changed != 1:
        return False
    yield Q(
        "UPDATE chatmgmt_wh_deliveries SET status = %s, dead_reason = %s, finished_at = %s, "
        "lease_until = 0, ready = false WHERE ns = %s AND endpoint_id = %s AND status = %s",
        (_DEAD, f"endpoint disabled ({reason})", now, ns, ep, _PENDING),
    )
    yield Q("DELETE FROM chatmgmt_wh_chat_queue WHERE ns = %s AND endpoint_id = %s", (ns, ep))
    return True


def _enable(ns: bytes, endpoint_id: str) -> Gen[None]:
    ep = b(endpoint_id)
    yield from _lock_endpoints(ns, [ep])
    yield Q(
        "UPDATE chatmgmt_wh_endpoints SET failing_since = NULL, disabled = false, "
        "disabled_reason = '', disabled_at = NULL WHERE ns = %s AND endpoint_id = %s",
        (ns, ep),
    )


def _get(ns: bytes, endpoint_id: str, delivery_id: str) -> Gen[Delivery | None]:
    row = yield from _row(ns, b(endpoint_id), b(delivery_id))
    if row is None:
        return None
    return (yield from _delivery(ns, row))


def _select(ns: bytes, where: str, params: Sequence[Any], order: str) -> Gen[list[Delivery]]:
    rows = yield Q(
        f"SELECT {_COLS} FROM chatmgmt_wh_deliveries WHERE ns = %s{where} ORDER BY {order}",
        (ns, *params),
        "all",
    )
    out = []
    for r in rows:
        out.append((yield from _delivery(ns, r)))
    return out


def _deliveries(
    ns: bytes, endpoint_id: str | None, status: DeliveryStatus | None
) -> Gen[list[Delivery]]:
    where = ""
    params: list[Any] = []
    if endpoint_id is not None:
        where += " AND endpoint_id = %s"
        params.append(b(endpoint_id))
    if status is not None:
        where += " AND status = %s"
        params.append(DeliveryStatus(status).value)
    return (yield from _select(ns, where, params, "seq"))


def _dead_letters(ns: bytes, endpoint_id: str | None, since: float | None) -> Gen[list[Delivery]]:
    where = " AND status = %s"
    params: list[Any] = [_DEAD]
    if endpoint_id is not None:
        where += " AND endpoint_id = %s"
        params.append(b(endpoint_id))
    if since is not None:
        where += " AND finished_at >= %s"
        params.append(since)
    return (yield from _select(ns, where, params, "COALESCE(finished_at, 0), seq"))


def _replay_one(ns: bytes, ep: bytes, did: bytes, now: float) -> Gen[bool]:
    row = yield from _row(ns, ep, did)
    if row is None or row[8] != _DEAD:
        return False
    key = (ns, ep, did)
    n = yield Q(
        "SELECT count(*) FROM chatmgmt_wh_attempts "
        "WHERE ns = %s AND endpoint_id = %s AND delivery_id = %s",
        key,
        "one",
    )
    yield Q(
        "UPDATE chatmgmt_wh_deliveries SET status = %s, next_attempt_at = %s, "
        "round_start = %s, dead_reason = '', finished_at = NULL, lease_until = 0 "
        "WHERE ns = %s AND endpoint_id = %s AND id = %s",
        (_PENDING, now, int(n[0]), *key),
    )
    fresh = yield from _row(ns, ep, did)
    delivery = yield from _delivery(ns, fresh)
    yield from _enqueue(ns, delivery)
    return True


def _replay(ns: bytes, endpoint_id: str, delivery_id: str, now: float) -> Gen[bool]:
    ep = b(endpoint_id)
    yield from _lock_endpoints(ns, [ep])
    return (yield from _replay_one(ns, ep, b(delivery_id), now))


def _replay_since(ns: bytes, since: float, now: float, endpoint_id: str | None) -> Gen[int]:
    where = ""
    params: list[Any] = [ns, _DEAD, since]
    if endpoint_id is not None:
        where = " AND endpoint_id = %s"
        params.append(b(endpoint_id))
    rows = yield Q(
        "SELECT endpoint_id, id FROM chatmgmt_wh_deliveries WHERE ns = %s AND status = %s "
        f"AND finished_at >= %s{where} ORDER BY finished_at, seq",
        params,
        "all",
    )
    yield from _lock_endpoints(ns, [bytes(r[0]) for r in rows])
    count = 0
    for r in rows:
        count += yield from _replay_one(ns, bytes(r[0]), bytes(r[1]), now)
    return count


def _purge(ns: bytes, before: float) -> Gen[int]:
    rows = yield Q(
        "DELETE FROM chatmgmt_wh_deliveries "
        "WHERE ns = %s AND status = %s AND COALESCE(finished_at, 0) < %s "
        "RETURNING endpoint_id, id, event_ids",
        (ns, _DELIVERED, before),
        "all",
    )
    for ep, did, event_ids in rows:
        yield Q(
            "DELETE FROM chatmgmt_wh_attempts "
            "WHERE ns = %s AND endpoint_id = %s AND delivery_id = %s",
            (ns, ep, did),
        )
        yield Q(
            "DELETE FROM chatmgmt_wh_seen WHERE ns = %s AND endpoint_id = %s "
            "AND event_id = ANY(%s)",
            (ns, ep, [b(e) for e in json.loads(event_ids)]),
        )
    return len(rows)


def _delete_namespace(ns: bytes) -> Gen[None]:
    for table in (
        "chatmgmt_wh_deliveries",
        "chatmgmt_wh_attempts",
        "chatmgmt_wh_chat_queue",
        "chatmgmt_wh_seen",
        "chatmgmt_wh_buffer",
        "chatmgmt_wh_endpoints",
    ):
        yield Q(f"DELETE FROM {table} WHERE ns = %s", (ns,))


# --------------------------------------------------------------------------- the faces


class PostgresDeliveryStore:
    """The delivery store in PostgreSQL, for one namespace (see the module docstring).

    ``database`` is a DSN, a :class:`psycopg_pool.ConnectionPool` the host already has, or a
    shared :class:`~chatmgmt.storage.postgres.PostgresDatabase` (e.g.
    ``PostgresStorage(...).database``: the outbox and the delivery state in one database).
    """

    def __init__(self, database: Any, namespace: str = "default") -> None:
        if not isinstance(namespace, str):
            raise TypeError(f"namespace: must be a string, got {namespace!r}")
        self._owned = not isinstance(database, PostgresDatabase)
        self.database = database if not self._owned else PostgresDatabase(database)
        self.namespace = namespace
        self._ns = b(namespace)
        self.database.once(
            "migrate:delivery",
            migrate_op,
            _COMPONENT,
            _MIGRATIONS,
            WEBHOOK_SCHEMA_VERSION,
            repr(self.database),
        )

    def __repr__(self) -> str:
        return f"PostgresDeliveryStore({self.database!r}, namespace={self.namespace!r})"

    def add(self, deliveries: Sequence[Delivery], buffered: Sequence[BufferedEvent] = ()) -> int:
        """See :meth:`chatmgmt.ports.DeliveryStore.add`."""
        return self.database.run(_add, self._ns, tuple(deliveries), tuple(buffered))

    def buffered(self, endpoint_id: str) -> list[BufferedEvent]:
        """See :meth:`chatmgmt.ports.DeliveryStore.buffered`."""
        return self.database.run(_buffered, self._ns, endpoint_id, tx=False)

    def seal(self, endpoint_id: str, event_ids: Sequence[str], delivery: Delivery) -> bool:
        """See :meth:`chatmgmt.ports.DeliveryStore.seal`."""
        return self.database.run(_seal, self._ns, endpoint_id, tuple(event_ids), delivery)

    def claim_due(self, endpoint_id: str, now: float, limit: int, lease_s: float) -> list[Delivery]:
        """See :meth:`chatmgmt.ports.DeliveryStore.claim_due`."""
        return self.database.run(_claim_due, self._ns, endpoint_id, now, limit, lease_s)

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
        return self.database.run(
            _finish, self._ns, endpoint_id, delivery_id, attempt, status, next_attempt_at, reason
        )

    def health(self, endpoint_id: str) -> EndpointHealth:
        """See :meth:`chatmgmt.ports.DeliveryStore.health`."""
        return self.database.run(_health_op, self._ns, endpoint_id, tx=False)

    def disable(self, endpoint_id: str, reason: str, now: float) -> bool:
        """See :meth:`chatmgmt.ports.DeliveryStore.disable`."""
        return self.database.run(_disable, self._ns, endpoint_id, reason, now)

    def enable(self, endpoint_id: str) -> None:
        """See :meth:`chatmgmt.ports.DeliveryStore.enable`."""
        self.database.run(_enable, self._ns, endpoint_id)

    def get(self, endpoint_id: str, delivery_id: str) -> Delivery | None:
        """See :meth:`chatmgmt.ports.DeliveryStore.get`."""
        return self.database.run(_get, self._ns, endpoint_id, delivery_id)

    def deliveries(
        self, endpoint_id: str | None = None, status: DeliveryStatus | None = None
    ) -> list[Delivery]:
        """See :meth:`chatmgmt.ports.DeliveryStore.deliveries`."""
        return self.database.run(_deliveries, self._ns, endpoint_id, status)

    def dead_letters(
        self, endpoint_id: str | None = None, since: float | None = None
    ) -> list[Delivery]:
        """See :meth:`chatmgmt.ports.DeliveryStore.dead_letters`."""
        return self.database.run(_dead_letters, self._ns, endpoint_id, since)

    def replay(self, endpoint_id: str, delivery_id: str, now: float) -> bool:
        """See :meth:`chatmgmt.ports.DeliveryStore.replay`."""
        return self.database.run(_replay, self._ns, endpoint_id, delivery_id, now)

    def replay_since(self, since: float, now: float, endpoint_id: str | None = None) -> int:
        """See :meth:`chatmgmt.ports.DeliveryStore.replay_since`."""
        return self.database.run(_replay_since, self._ns, since, now, endpoint_id)

    def purge(self, before: float) -> int:
        """See :meth:`chatmgmt.ports.DeliveryStore.purge`."""
        return self.database.run(_purge, self._ns, before)

    def delete_namespace(self) -> None:
        """Delete every row of this namespace (tests, tenant removal)."""
        self.database.run(_delete_namespace, self._ns)

    def close(self) -> None:
        """Close the pool if this store opened it (a shared database stays open)."""
        if self._owned:
            self.database.close()


class AsyncPostgresDeliveryStore:
    """The asyncio face of :class:`PostgresDeliveryStore` (same operations): ``database`` is a
    DSN, an :class:`psycopg_pool.AsyncConnectionPool` or a shared
    :class:`~chatmgmt.storage.postgres.AsyncPostgresDatabase`."""

    def __init__(self, database: Any, namespace: str = "default") -> None:
        if not isinstance(namespace, str):
            raise TypeError(f"namespace: must be a string, got {namespace!r}")
        self._owned = not isinstance(database, AsyncPostgresDatabase)
        self.database = database if not self._owned else AsyncPostgresDatabase(database)
        self.namespace = namespace
        self._ns = b(namespace)

    def __repr__(self) -> str:
        return f"AsyncPostgresDeliveryStore({self.database!r}, namespace={self.namespace!r})"

    async def _run(self, op: Any, *args: Any, tx: bool = True) -> Any:
        await self.database.once(
            "migrate:delivery",
            migrate_op,
            _COMPONENT,
            _MIGRATIONS,
            WEBHOOK_SCHEMA_VERSION,
            repr(self.database),
        )
        return await self.database.run(op, self._ns, *args, tx=tx)

    async def add(
        self, deliveries: Sequence[Delivery], buffered: Sequence[BufferedEvent] = ()
    ) -> int:
        """See :meth:`chatmgmt.ports.DeliveryStore.add`."""
        return int(await self._run(_add, tuple(deliveries), tuple(buffered)))

    async def buffered(self, endpoint_id: str) -> list[BufferedEvent]:
        """See :meth:`chatmgmt.ports.DeliveryStore.buffered`."""
        result: list[BufferedEvent] = await self._run(_buffered, endpoint_id, tx=False)
        return result

    async def seal(self, endpoint_id: str, event_ids: Sequence[str], delivery: Delivery) -> bool:
        """See :meth:`chatmgmt.ports.DeliveryStore.seal`."""
        return bool(await self._run(_seal, endpoint_id, tuple(event_ids), delivery))

    async def claim_due(
        self, endpoint_id: str, now: float, limit: int, lease_s: float
    ) -> list[Delivery]:
        """See :meth:`chatmgmt.ports.DeliveryStore.claim_due`."""
        result: list[Delivery] = await self._run(_claim_due, endpoint_id, now, limit, lease_s)
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
        """See :meth:`chatmgmt.ports.DeliveryStore.finish`."""
        result: EndpointHealth = await self._run(
            _finish, endpoint_id, delivery_id, attempt, status, next_attempt_at, reason
        )
        return result

    async def health(self, endpoint_id: str) -> EndpointHealth:
        """See :meth:`chatmgmt.ports.DeliveryStore.health`."""
        result: EndpointHealth = await self._run(_health_op, endpoint_id, tx=False)
        return result

    async def disable(self, endpoint_id: str, reason: str, now: float) -> bool:
        """See :meth:`chatmgmt.ports.DeliveryStore.disable`."""
        return bool(await self._run(_disable, endpoint_id, reason, now))

    async def enable(self, endpoint_id: str) -> None:
        """See :meth:`chatmgmt.ports.DeliveryStore.enable`."""
        await self._run(_enable, endpoint_id)

    async def get(self, endpoint_id: str, delivery_id: str) -> Delivery | None:
        """See :meth:`chatmgmt.ports.DeliveryStore.get`."""
        result: Delivery | None = await self._run(_get, endpoint_id, delivery_id)
        return result

    async def deliveries(
        self, endpoint_id: str | None = None, status: DeliveryStatus | None = None
    ) -> list[Delivery]:
        """See :meth:`chatmgmt.ports.DeliveryStore.deliveries`."""
        result: list[Delivery] = await self._run(_deliveries, endpoint_id, status)
        return result

    async def dead_letters(
        self, endpoint_id: str | None = None, since: float | None = None
    ) -> list[Delivery]:
        """See :meth:`chatmgmt.ports.DeliveryStore.dead_letters`."""
        result: list[Delivery] = await self._run(_dead_letters, endpoint_id, since)
        return result

    async def replay(self, endpoint_id: str, delivery_id: str, now: float) -> bool:
        """See :meth:`chatmgmt.ports.DeliveryStore.replay`."""
        return bool(await self._run(_replay, endpoint_id, delivery_id, now))

    async def replay_since(self, since: float, now: float, endpoint_id: str | None = None) -> int:
        """See :meth:`chatmgmt.ports.DeliveryStore.replay_since`."""
        return int(await self._run(_replay_since, since, now, endpoint_id))

    async def purge(self, before: float) -> int:
        """See :meth:`chatmgmt.ports.DeliveryStore.purge`."""
        return int(await self._run(_purge, before))

    async def delete_namespace(self) -> None:
        """Delete every row of this namespace (tests, tenant removal)."""
        await self._run(_delete_namespace)

    async def aclose(self) -> None:
        """Close the pool if this store opened it (a shared database stays open)."""
        if self._owned:
            await self.database.close()
