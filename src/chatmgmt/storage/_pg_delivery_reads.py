"""The PostgreSQL delivery store's reads (see :mod:`~chatmgmt.storage.postgres_delivery`):
deliveries with their attempts, endpoint health, buffered events. Each is a generator of
statements (see :mod:`~chatmgmt.storage._pg`); ``ns`` is the namespace as stored (bytes).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..model import Event
from ..ports import Attempt, BufferedEvent, Delivery, DeliveryStatus, EndpointHealth
from ._codec import decode
from ._pg import Gen, Q, b, s

_COLS = (
    "id, endpoint_id, event_type, event_ids, chat_keys, body, created_at, next_attempt_at, "
    "status, round_start, dead_reason, finished_at, lease_until, qorder"
)
_PENDING, _DELIVERED, _DEAD = (s_.value for s_ in DeliveryStatus)


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


def _health_op(ns: bytes, endpoint_id: str) -> Gen[EndpointHealth]:
    return (yield from _health(ns, b(endpoint_id), endpoint_id))


def _buffered(ns: bytes, endpoint_id: str) -> Gen[list[BufferedEvent]]:
    rows = yield Q(
        "SELECT buffered_at, event FROM chatmgmt_wh_buffer WHERE ns = %s AND endpoint_id = %s "
        "ORDER BY seq",
        (ns, b(endpoint_id)),
        "all",
    )
    return [BufferedEvent(endpoint_id, decode(r[1], Event), r[0]) for r in rows]


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
