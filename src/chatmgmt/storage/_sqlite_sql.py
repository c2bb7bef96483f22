"""The SQLite adapter's statements that append or set a row (schema 8), shared by the unit of
work and the stores.

Since schema 8 no table is ``AUTOINCREMENT`` (every unit appends to the outbox, so every
commit rewrote the ``sqlite_sequence`` page): a rowid table numbers a new row one past its
largest. So an outbox entry's number can come back once the newest entry is acknowledged:
the entry id handed to consumers is ``"<seq>:<event id>"`` and an acknowledgement deletes only
the entry with both (a consumer whose lease ran out can never acknowledge a newer event that
got the same number). The order of the rows is kept: a new row is always numbered past every
row present. ``chats_by_state`` indexes the open chats only (:data:`OPEN_CHATS`).

The timers are a ``WITHOUT ROWID`` table keyed by ``(ns, key)`` (one B-tree instead of a
rowid table and its unique index); ``claim_due`` takes the timers due first, and those due
together in key order (``TimerStore.claim_due`` promises only earliest first; the
Redis adapter, since its data version 4, does the same).
"""

from __future__ import annotations

import zlib

__all__ = [
    "MESSAGE_INSERT",
    "OPEN_CHATS",
    "OUTBOX_INSERT",
    "OUTBOX_RANGE",
    "OUTBOX_SPAN",
    "TIMER_PUT",
    "outbox_range",
]

OPEN_CHATS = "state != 'ended' AND state != 'left_message' AND state != 'abandoned'"
"""The condition of the partial index ``chats_by_state`` (schema 8: the open chats only, so an
end takes its chat out instead of moving it; schema 9: three comparisons, since SQLite
evaluates a ``NOT IN`` list of three constants through an ephemeral table on every chat
written). A query on an open state repeats it word for word: SQLite uses a partial index only
where the query's own terms hold its condition."""

OUTBOX_SPAN = 1 << 47
"""How many entry numbers each namespace's range of the outbox holds (schema 10)."""


def outbox_range(ns: str) -> tuple[int, int]:
    """The outbox entry numbers of namespace ``ns`` (schema 10): those above the first and
    below the second of the pair. The outbox is a rowid table without an index on the
    namespace: each namespace numbers its entries in its own range (its 16-bit CRC-32 times
    :data:`OUTBOX_SPAN`), so its entries sit side by side in number order and a read finds
    them by number alone (the ``ns`` column still tells apart two namespaces whose ranges
    coincide). One B-tree fewer written by every unit (the index ``outbox_by_ns`` was ~1.2
    of a unit's ~14.6 pages per commit)."""
    known = _RANGES.get(ns)
    if known is None:
        base = (zlib.crc32(ns.encode("utf-8")) & 0xFFFF) * OUTBOX_SPAN
        if len(_RANGES) >= 1024:
            _RANGES.clear()
        known = _RANGES[ns] = (base, base + OUTBOX_SPAN)
    return known


_RANGES: dict[str, tuple[int, int]] = {}

OUTBOX_RANGE = "seq > ?1 AND seq < ?2 AND ns = ?3"
"""The condition of one namespace's outbox entries (parameters: :func:`outbox_range`'s pair,
the namespace), a range of row numbers: no index is needed."""

OUTBOX_INSERT = (
    "INSERT INTO outbox (seq, ns, data) VALUES (COALESCE((SELECT seq FROM outbox "
    "WHERE seq > ?1 AND seq < ?2 ORDER BY seq DESC LIMIT 1), ?1) + 1, ?3, ?4)"
)
"""Append one event (parameters: :func:`outbox_range`'s pair, namespace, event JSON),
numbered one past the namespace's largest entry (the first of its range when it has none)."""

MESSAGE_INSERT = "INSERT INTO messages (ns, chat_id, data) VALUES (?, ?, ?)"
"""Append one message to its chat (parameters: namespace, chat id, message JSON)."""

TIMER_PUT = "INSERT OR REPLACE INTO timers (ns, key, due_at, data) VALUES (?, ?, ?, ?)"
"""Set (or replace) one timer (parameters: namespace, key, due time, timer JSON)."""
