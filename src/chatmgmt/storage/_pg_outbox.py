"""The PostgreSQL outbox: events stored as outbox rows and the ``NOTIFY`` that wakes their
listeners (sent after the commit), and the outbox's own operations (claim with a lease, ack,
pending). Each operation is a generator of statements (see :mod:`~chatmgmt.storage._pg`);
``ns`` is the namespace as stored (bytes).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence

from ..model import (
    Event,
)
from ..ports import (
    OutboxEntry,
)
from ._codec import decode, encode
from ._pg import (
    AFTER_COMMIT,
    NOTIFY_CHANNEL,
    Gen,
    Q,
    channel_tag,
)


def _notify(ns: bytes, token: str | None = None) -> Q:
    """The ``NOTIFY`` for ``ns``'s listeners, sent after the COMMIT in a transaction of its own
    that does not wait for its WAL flush (see ``_pg.AFTER_COMMIT``: inside the unit of work it
    serialized every commit behind the server's notify lock). With ``token``, after a unit of
    work run as an implicit transaction (``_pg.IMPLICIT``: the server runs this statement
    even if the unit failed), only if the unit committed: its write statement set the
    session's ``chatmgmt.unit`` to ``token`` (``_pg_unit._WRITE_MARKED``), a setting that a failed
    transaction takes back."""
    tag = _tag(ns)
    if token is None:
        return Q(
            "SELECT set_config('synchronous_commit', 'off', true), pg_notify(%s, %s)",
            (NOTIFY_CHANNEL, tag),
            AFTER_COMMIT,
        )
    return Q(
        "SELECT set_config('synchronous_commit', 'off', true), pg_notify(%s, %s) "
        "WHERE current_setting('chatmgmt.unit', true) = %s",
        (NOTIFY_CHANNEL, tag, token),
        AFTER_COMMIT,
    )


@functools.lru_cache(maxsize=1024)
def _tag(ns: bytes) -> str:
    """:func:`~chatmgmt.storage._pg.channel_tag` of a stored namespace (a sha256, once)."""
    return channel_tag(ns.decode("utf-8", "surrogatepass"))


#: tokens of the units of work that notify (``_notify``): increasing within a process, and a
#: connection belongs to one process, so a failed unit's token is never its session's setting
_UNITS = itertools.count(1)


def _append(ns: bytes, events: Sequence[Event], notify: bool) -> Gen[None]:
    """The events as outbox rows, in order, in one statement (and the ``NOTIFY``)."""
    if not events:
        return
    yield Q(
        "INSERT INTO chatmgmt_outbox (ns, data) SELECT %s, e.data "
        "FROM unnest(%s::text[]) WITH ORDINALITY AS e(data, n) ORDER BY e.n",
        (ns, [encode(event) for event in events]),
    )
    if notify:
        yield _notify(ns)


def _outbox_append(ns: bytes, events: Sequence[Event], notify: bool) -> Gen[None]:
    yield from _append(ns, events, notify)


def _outbox_claim(ns: bytes, limit: int, now: float, lease_s: float) -> Gen[list[OutboxEntry]]:
    rows = yield Q(
        "UPDATE chatmgmt_outbox o SET lease_until = %s, deliveries = o.deliveries + 1 "
        "FROM (SELECT seq FROM chatmgmt_outbox WHERE ns = %s AND lease_until <= %s "
        "ORDER BY seq LIMIT %s FOR UPDATE SKIP LOCKED) c "
        "WHERE o.seq = c.seq RETURNING o.seq, o.data, o.deliveries",
        (now + lease_s, ns, now, max(0, limit)),
        "all",
    )
    rows.sort(key=lambda r: r[0])
    return [OutboxEntry(str(r[0]), decode(r[1], Event), int(r[2])) for r in rows]


def _outbox_ack(ns: bytes, seqs: list[int]) -> Gen[None]:
    yield Q("DELETE FROM chatmgmt_outbox WHERE ns = %s AND seq = ANY(%s)", (ns, seqs))


def _outbox_pending(ns: bytes) -> Gen[int]:
    row = yield Q("SELECT count(*) FROM chatmgmt_outbox WHERE ns = %s", (ns,), "one")
    return int(row[0])


def _outbox_events(ns: bytes) -> Gen[list[Event]]:
    rows = yield Q("SELECT data FROM chatmgmt_outbox WHERE ns = %s ORDER BY seq", (ns,), "all")
    return [decode(r[0], Event) for r in rows]
