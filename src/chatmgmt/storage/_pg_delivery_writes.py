"""The PostgreSQL delivery store's writes (see :mod:`~chatmgmt.storage.postgres_delivery`),
one transaction each: adding and sealing deliveries, the per-chat queues of an endpoint,
leases, finishing an attempt, disabling and enabling an endpoint, replays, the purge. Every one
that changes an endpoint's queue first locks the endpoint's row (:func:`_lock_endpoints`).
Each is a generator of statements (see :mod:`~chatmgmt.storage._pg`); ``ns`` is the namespace
as stored (bytes).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..ports import Attempt, BufferedEvent, Delivery, DeliveryStatus, EndpointHealth
from ._codec import encode
from ._pg import Gen, Q, b
from ._pg_delivery_reads import (
    _COLS,
    _DEAD,
    _DELIVERED,
    _PENDING,
    _delivery,
    _health,
    _row,
)


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
