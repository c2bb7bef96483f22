"""The PostgreSQL adapter's writes outside the unit of work, one transaction each: customers,
the chats' purge, timer cancels and leases, rate counters, a namespace's deletion. Each is a
generator of statements (see :mod:`~chatmgmt.storage._pg`); ``ns`` is the namespace as
stored (bytes).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from ..errors import ConflictError, NotFoundError
from ..model import (
    Chat,
    Customer,
    Event,
    Timer,
)
from ._codec import decode, encode
from ._pg import (
    Gen,
    Q,
    b,
)
from ._pg_outbox import _append


def _customer_create(
    ns: bytes, customer: Customer, events: Sequence[Event], notify: bool
) -> Gen[None]:
    inserted = yield Q(
        "INSERT INTO chatmgmt_customers (ns, partner_id, version, data) "
        "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (ns, customer.partner_id, customer.version, encode(customer)),
        "rowcount",
    )
    if inserted != 1:
        row = yield Q(
            "SELECT version FROM chatmgmt_customers WHERE ns = %s AND partner_id = %s",
            (ns, customer.partner_id),
            "one",
        )
        raise ConflictError(
            "customer", customer.partner_id, None, None if row is None else int(row[0])
        )
    yield from _append(ns, events, notify)


def _customer_replace(
    ns: bytes, customer: Customer, expected: int, events: Sequence[Event], notify: bool
) -> Gen[None]:
    row = yield Q(
        "SELECT version FROM chatmgmt_customers WHERE ns = %s AND partner_id = %s FOR UPDATE",
        (ns, customer.partner_id),
        "one",
    )
    if row is None:
        raise NotFoundError("customer", customer.partner_id)
    if int(row[0]) != expected:
        raise ConflictError("customer", customer.partner_id, expected, int(row[0]))
    yield Q(
        "UPDATE chatmgmt_customers SET version = %s, data = %s WHERE ns = %s AND partner_id = %s",
        (customer.version, encode(customer), ns, customer.partner_id),
    )
    yield from _append(ns, events, notify)


def _chat_purge(ns: bytes, before: float, limit: int) -> Gen[int]:
    rows = yield Q(
        "DELETE FROM chatmgmt_chats WHERE (ns, id) IN (SELECT ns, id FROM chatmgmt_chats "
        "WHERE ns = %s AND retain_from IS NOT NULL AND retain_from < %s "
        "ORDER BY retain_from LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id, data",
        (ns, before, limit),
        "all",
    )
    if not rows:
        return 0
    ids = [r[0] for r in rows]
    yield Q("DELETE FROM chatmgmt_messages WHERE ns = %s AND chat_id = ANY(%s)", (ns, ids))
    partners = {decode(r[1], Chat).customer.partner_id for r in rows} - {None}
    if partners:
        yield Q(
            "DELETE FROM chatmgmt_sticky WHERE ns = %s AND partner_id = ANY(%s) "
            "AND (data::json ->> 'at')::float8 < %s",
            (ns, sorted(p for p in partners if p is not None), before),
        )
    return len(rows)


def _timer_cancel(ns: bytes, key: str, due_at: float | None) -> Gen[None]:
    if due_at is None:
        yield Q("DELETE FROM chatmgmt_timers WHERE ns = %s AND key = %s", (ns, b(key)))
    else:
        yield Q(
            "DELETE FROM chatmgmt_timers WHERE ns = %s AND key = %s AND due_at = %s",
            (ns, b(key), due_at),
        )


def _timer_claim_due(ns: bytes, now: float, limit: int, lease_s: float) -> Gen[list[Timer]]:
    rows = yield Q(
        "WITH due AS (SELECT key, due_at, seq, data FROM chatmgmt_timers "
        "WHERE ns = %s AND due_at <= %s ORDER BY due_at, seq LIMIT %s FOR UPDATE SKIP LOCKED), "
        "moved AS (UPDATE chatmgmt_timers t SET due_at = %s FROM due "
        "WHERE t.ns = %s AND t.key = due.key) "
        "SELECT due_at, data FROM due ORDER BY due_at, seq",
        (ns, now, max(0, limit), now + lease_s, ns),
        "all",
    )
    return [attrs.evolve(decode(r[1], Timer), due_at=r[0]) for r in rows]


def _counter_hit(ns: bytes, key: str, now: float, window_s: float) -> Gen[int]:
    k = b(key)
    yield Q("INSERT INTO chatmgmt_hits (ns, key, t) VALUES (%s, %s, %s)", (ns, k, now))
    yield Q(
        "DELETE FROM chatmgmt_hits WHERE ns = %s AND key = %s AND t <= %s",
        (ns, k, now - window_s),
    )
    row = yield Q("SELECT count(*) FROM chatmgmt_hits WHERE ns = %s AND key = %s", (ns, k), "one")
    return int(row[0])


def _delete_namespace(ns: bytes) -> Gen[None]:
    for table in (
        "chatmgmt_customers",
        "chatmgmt_agents",
        "chatmgmt_agent_ranks",
        "chatmgmt_agent_census",
        "chatmgmt_chats",
        "chatmgmt_messages",
        "chatmgmt_sticky",
        "chatmgmt_queue_entries",
        "chatmgmt_outbox",
        "chatmgmt_timers",
        "chatmgmt_hits",
    ):
        yield Q(f"DELETE FROM {table} WHERE ns = %s", (ns,))
