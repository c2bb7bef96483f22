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

__all__ = ["MESSAGE_INSERT", "OPEN_CHATS", "OUTBOX_INSERT", "TIMER_PUT"]

OPEN_CHATS = "state != 'ended' AND state != 'left_message' AND state != 'abandoned'"
"""The condition of the partial index ``chats_by_state`` (schema 8: the open chats only, so an
end takes its chat out instead of moving it; schema 9: three comparisons, since SQLite
evaluates a ``NOT IN`` list of three constants through an ephemeral table on every chat
written). A query on an open state repeats it word for word: SQLite uses a partial index only
where the query's own terms hold its condition."""

OUTBOX_INSERT = "INSERT INTO outbox (ns, data) VALUES (?, ?)"
"""Append one event (parameters: namespace, event JSON)."""

MESSAGE_INSERT = "INSERT INTO messages (ns, chat_id, data) VALUES (?, ?, ?)"
"""Append one message to its chat (parameters: namespace, chat id, message JSON)."""

TIMER_PUT = "INSERT OR REPLACE INTO timers (ns, key, due_at, data) VALUES (?, ?, ?, ?)"
"""Set (or replace) one timer (parameters: namespace, key, due time, timer JSON)."""
