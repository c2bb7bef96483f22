"""The SQLite adapter's schema: the migrations in order (:data:`SCHEMA_VERSION` is how many),
and :func:`migrate`, which brings a database forward in one write transaction (also used by
the webhook delivery store for its own tables)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import attrs

from ..errors import StorageError
from ..model import AgentLoad
from . import _sqlite_loads as _loads
from ._codec import decode
from ._sqlite_sql import outbox_range

if TYPE_CHECKING:
    from ._sqlite_db import SQLiteDatabase

__all__ = ["SCHEMA_VERSION", "migrate"]

# --------------------------------------------------------------------------- schema


def _capacity_columns(conn: sqlite3.Connection) -> None:
    """Migration 6: ``agents.channels`` and ``agents.recent`` (JSON, NULL while empty: the
    held chats' channels and the assignment times of capacity per channel and the fairness
    cap); nothing is rewritten. Added when missing, since migration 5 already writes loads
    through this release's columns."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(agents)")}
    for name in ("channels", "recent"):
        if name not in have:
            conn.execute(f"ALTER TABLE agents ADD COLUMN {name} TEXT")


def _load_columns(conn: sqlite3.Connection) -> None:
    """Migration 5: split each stored load into its configuration (``data``) and columns."""
    _capacity_columns(conn)
    for name, kind, default in (
        ("chats", "TEXT", "'[]'"),
        ("inactive", "TEXT", "'[]'"),
        ("last_assigned_at", "REAL", "0"),
        ("idle_since", "REAL", "0"),
        ("tiebreak", "REAL", "0"),
    ):
        conn.execute(f"ALTER TABLE agents ADD COLUMN {name} {kind} NOT NULL DEFAULT {default}")
    rows = conn.execute("SELECT ns, version, data FROM agents").fetchall()
    for ns, version, data in rows:
        load = attrs.evolve(decode(data, AgentLoad), version=int(version))
        _loads.write_load(conn, ns, load, None)


def _outbox_ranges(conn: sqlite3.Connection) -> None:
    """Migration 10: the outbox without its index ``outbox_by_ns``: each namespace's entries
    numbered in its own range (:func:`~chatmgmt.storage._sqlite_sql.outbox_range`), in their
    order, leases and delivery counts kept. Entry ids name the new numbers: an entry claimed
    before the upgrade is acknowledged by its old id in vain and delivered again once its
    lease runs out (the outbox delivers at least once)."""
    conn.execute(
        "CREATE TABLE outbox_10 (seq INTEGER PRIMARY KEY, ns TEXT NOT NULL, data TEXT NOT NULL, "
        "lease_until REAL NOT NULL DEFAULT 0, deliveries INTEGER NOT NULL DEFAULT 0)"
    )
    numbers: dict[str, int] = {}

    def renumbered() -> Iterator[tuple[object, ...]]:
        rows = conn.execute("SELECT ns, data, lease_until, deliveries FROM outbox ORDER BY seq")
        for ns, data, lease_until, deliveries in rows.fetchall():
            seq = numbers[ns] = numbers.get(ns, outbox_range(ns)[0]) + 1
            yield seq, ns, data, lease_until, deliveries

    conn.executemany(
        "INSERT INTO outbox_10 (seq, ns, data, lease_until, deliveries) VALUES (?, ?, ?, ?, ?)",
        renumbered(),
    )
    conn.execute("DROP TABLE outbox")  # its index with it
    conn.execute("ALTER TABLE outbox_10 RENAME TO outbox")


#: The census triggers on ``agent_ranks`` (migration 7 creates them; migration 8 again, after
#: rebuilding the table, which drops them): every rank row written adds to or takes from its
#: (group, census category) row of ``agent_census``.
_CENSUS_TRIGGERS = """
    CREATE TRIGGER agent_census_insert AFTER INSERT ON agent_ranks BEGIN
        INSERT INTO agent_census (ns, grp, category, n, lim, active)
            VALUES (new.ns, new.grp, new.category, 1, new.lim, new.active)
            ON CONFLICT (ns, grp, category) DO UPDATE SET n = n + 1,
            lim = lim + excluded.lim, active = active + excluded.active;
    END;
    CREATE TRIGGER agent_census_delete AFTER DELETE ON agent_ranks BEGIN
        UPDATE agent_census SET n = n - 1, lim = lim - old.lim, active = active - old.active
            WHERE ns = old.ns AND grp = old.grp AND category = old.category;
    END;
    CREATE TRIGGER agent_census_same AFTER UPDATE OF ns, grp, category, lim, active
        ON agent_ranks
        WHEN new.ns = old.ns AND new.grp = old.grp AND new.category = old.category BEGIN
        UPDATE agent_census SET lim = lim + new.lim - old.lim,
            active = active + new.active - old.active
            WHERE ns = new.ns AND grp = new.grp AND category = new.category;
    END;
    CREATE TRIGGER agent_census_moved AFTER UPDATE OF ns, grp, category, lim, active
        ON agent_ranks
        WHEN new.ns != old.ns OR new.grp != old.grp OR new.category != old.category BEGIN
        UPDATE agent_census SET n = n - 1, lim = lim - old.lim, active = active - old.active
            WHERE ns = old.ns AND grp = old.grp AND category = old.category;
        INSERT INTO agent_census (ns, grp, category, n, lim, active)
            VALUES (new.ns, new.grp, new.category, 1, new.lim, new.active)
            ON CONFLICT (ns, grp, category) DO UPDATE SET n = n + 1,
            lim = lim + excluded.lim, active = active + excluded.active;
    END
"""


_MIGRATIONS: tuple[str | Callable[[sqlite3.Connection], None], ...] = (
    # 1: the initial schema
    """
    CREATE TABLE customers (
        ns TEXT NOT NULL, partner_id TEXT NOT NULL, version INTEGER NOT NULL, data TEXT NOT NULL,
        PRIMARY KEY (ns, partner_id)
    ) WITHOUT ROWID;
    CREATE TABLE agents (
        ns TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL,
        PRIMARY KEY (ns, id)
    ) WITHOUT ROWID;
    CREATE TABLE agent_ranks (
        ns TEXT NOT NULL, grp TEXT NOT NULL, agent_id TEXT NOT NULL,
        eligible INTEGER NOT NULL, status TEXT NOT NULL, lim INTEGER NOT NULL,
        active INTEGER NOT NULL, saturation REAL NOT NULL, free INTEGER NOT NULL,
        last_assigned_at REAL NOT NULL, idle_since REAL NOT NULL, tier INTEGER NOT NULL,
        account_order INTEGER NOT NULL, tiebreak REAL NOT NULL,
        PRIMARY KEY (ns, grp, agent_id)
    ) WITHOUT ROWID;
    CREATE INDEX agent_ranks_by_agent ON agent_ranks (ns, agent_id);
    CREATE TABLE chats (
        ns TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, state TEXT NOT NULL,
        agent_id TEXT, data TEXT NOT NULL,
        UNIQUE (ns, id)
    );
    CREATE INDEX chats_by_state ON chats (ns, state);
    CREATE INDEX chats_by_agent ON chats (ns, agent_id);
    CREATE TABLE messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, ns TEXT NOT NULL, chat_id TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX messages_by_chat ON messages (ns, chat_id, seq);
    CREATE TABLE sticky (
        ns TEXT NOT NULL, partner_id TEXT NOT NULL, data TEXT NOT NULL,
        PRIMARY KEY (ns, partner_id)
    ) WITHOUT ROWID;
    CREATE TABLE queue_entries (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, ns TEXT NOT NULL, queue TEXT NOT NULL,
        chat_id TEXT NOT NULL, score REAL NOT NULL,
        UNIQUE (ns, queue, chat_id)
    );
    CREATE INDEX queue_order ON queue_entries (ns, queue, score, seq);
    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, ns TEXT NOT NULL, data TEXT NOT NULL,
        lease_until REAL NOT NULL DEFAULT 0, deliveries INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX outbox_by_ns ON outbox (ns, seq);
    CREATE TABLE timers (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, ns TEXT NOT NULL, key TEXT NOT NULL,
        due_at REAL NOT NULL, data TEXT NOT NULL,
        UNIQUE (ns, key)
    );
    CREATE INDEX timers_due ON timers (ns, due_at, seq);
    CREATE TABLE hits (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, ns TEXT NOT NULL, key TEXT NOT NULL,
        t REAL NOT NULL
    );
    CREATE INDEX hits_by_key ON hits (ns, key, t);
    """,
    # 2: the agent's configuration version (compare-and-set of AgentStore.put), and each rank
    # row's census category (assignment._load.census_category), backfilled from the columns
    # version 1 kept (status, eligible); loads written by version 1 decode with version 0
    """
    ALTER TABLE agents ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE agent_ranks ADD COLUMN category TEXT NOT NULL DEFAULT '';
    UPDATE agent_ranks SET category = CASE
        WHEN status = 'online' AND eligible = 1 THEN 'eligible'
        WHEN status = 'online' THEN 'full'
        ELSE status END
    """,
    # 3: what the library keeps about a chat moves out of the host's ``attributes`` into
    # typed fields of Chat (releases before it kept them under these attribute keys)
    """
    UPDATE chats SET data = json_remove(
        json_set(
            data,
            '$.queue', json_extract(data, '$.attributes.queue'),
            '$.queued_at', json_extract(data, '$.attributes.queued_at'),
            '$.leave_message', json_extract(data, '$.attributes.offer_leave_message'),
            '$.submission', json(json_extract(data, '$.attributes.submission')),
            '$.satisfaction', json(json_extract(data, '$.attributes.satisfaction')),
            '$.escalation', json(json_extract(data, '$.attributes.escalation')),
            '$.timers_fired', json(coalesce(json_extract(data, '$.attributes.timers_fired'), '{}')),
            '$.sticky_waited', json(CASE WHEN json_extract(data, '$.attributes.sticky_waited')
                THEN 'true' ELSE 'false' END),
            '$.unverified_partner_id', json_extract(data, '$.attributes.unverified_partner_id')
        ),
        '$.attributes.queue', '$.attributes.queued_at', '$.attributes.offer_leave_message',
        '$.attributes.submission', '$.attributes.satisfaction', '$.attributes.escalation',
        '$.attributes.timers_fired', '$.attributes.sticky_waited',
        '$.attributes.unverified_partner_id'
    )
    WHERE json_valid(data)
    """,
    # 4: retention. ``chats.retain_from`` is ports.retention_start of the stored chat (NULL
    # while the chat must be kept), indexed so that a purge finds the oldest first; backfilled
    # from the stored chats. ``hits.expires`` is when a hit leaves its window, indexed so that
    # every hit deletes a few expired hits of other keys; hits written by version 3 do not know
    # their window and get the longest one settings accept.
    """
    ALTER TABLE chats ADD COLUMN retain_from REAL;
    UPDATE chats SET retain_from = json_extract(data, '$.updated_at')
    WHERE json_valid(data) AND (
        state IN ('ended', 'abandoned')
        OR (state = 'left_message' AND json_extract(data, '$.last_agent_message_at') IS NOT NULL)
    );
    CREATE INDEX chats_retention ON chats (ns, retain_from) WHERE retain_from IS NOT NULL;
    ALTER TABLE hits ADD COLUMN expires REAL NOT NULL DEFAULT 0;
    UPDATE hits SET expires = t + 316224000.0;
    CREATE INDEX hits_expiry ON hits (ns, expires)
    """,
    # 5: the agent's load as columns (chats and inactive chats as JSON lists of ids, the
    # ranking times), its configuration alone in ``data``; rewritten in Python (see
    # _load_columns) so that every float stays exactly the value stored
    _load_columns,
    # 6: capacity per channel and the fairness cap (see _capacity_columns)
    _capacity_columns,
    # 7: the census of every skill group kept as it changes: per (group, census category) the
    # agents' count, limits and active chats, summed by triggers on ``agent_ranks`` (every rank
    # row written, by any release, counts), so that AgentStore.census and the unit of work's
    # census report read a few rows instead of aggregating every agent of the group
    """
    CREATE TABLE agent_census (
        ns TEXT NOT NULL, grp TEXT NOT NULL, category TEXT NOT NULL,
        n INTEGER NOT NULL, lim INTEGER NOT NULL, active INTEGER NOT NULL,
        PRIMARY KEY (ns, grp, category)
    ) WITHOUT ROWID;
    INSERT INTO agent_census (ns, grp, category, n, lim, active)
        SELECT ns, grp, category, COUNT(*), SUM(lim), SUM(active) FROM agent_ranks
        GROUP BY ns, grp, category;
    """
    + _CENSUS_TRIGGERS,
    # 8: fewer pages per commit (see _sqlite_sql). No table keeps AUTOINCREMENT (every unit
    # appends to the outbox, so every commit rewrote the sqlite_sequence page); the timers
    # become a WITHOUT ROWID table keyed by (ns, key) (one B-tree instead of a rowid table and
    # its unique index; timers due together are taken in key order);
    # ``chats_by_state`` indexes the open chats only (an end takes its chat out of it instead
    # of moving it). Every other row keeps its number, so every other order stays.
    # ``agent_ranks`` is keyed (ns, agent_id, grp): an agent's rows (its groups' and the row of
    # ``""``, every agent) sit side by side, so a slot change rewrites one page of it, not
    # two; the rank indexes, created on first use, become partial (see _sqlite_db.rank_order).
    # Its census triggers are those of migration 7 (dropped with the old table).
    """
    CREATE TABLE outbox_8 (
        seq INTEGER PRIMARY KEY, ns TEXT NOT NULL, data TEXT NOT NULL,
        lease_until REAL NOT NULL DEFAULT 0, deliveries INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO outbox_8 (seq, ns, data, lease_until, deliveries)
        SELECT seq, ns, data, lease_until, deliveries FROM outbox;
    DROP TABLE outbox;
    ALTER TABLE outbox_8 RENAME TO outbox;
    CREATE INDEX outbox_by_ns ON outbox (ns, seq);
    CREATE TABLE timers_8 (
        ns TEXT NOT NULL, key TEXT NOT NULL, due_at REAL NOT NULL, data TEXT NOT NULL,
        PRIMARY KEY (ns, key)
    ) WITHOUT ROWID;
    INSERT INTO timers_8 (ns, key, due_at, data) SELECT ns, key, due_at, data FROM timers;
    DROP TABLE timers;
    ALTER TABLE timers_8 RENAME TO timers;
    CREATE INDEX timers_due ON timers (ns, due_at);
    CREATE TABLE messages_8 (
        seq INTEGER PRIMARY KEY, ns TEXT NOT NULL, chat_id TEXT NOT NULL, data TEXT NOT NULL
    );
    INSERT INTO messages_8 (seq, ns, chat_id, data) SELECT seq, ns, chat_id, data FROM messages;
    DROP TABLE messages;
    ALTER TABLE messages_8 RENAME TO messages;
    CREATE INDEX messages_by_chat ON messages (ns, chat_id, seq);
    CREATE TABLE queue_entries_8 (
        seq INTEGER PRIMARY KEY, ns TEXT NOT NULL, queue TEXT NOT NULL,
        chat_id TEXT NOT NULL, score REAL NOT NULL,
        UNIQUE (ns, queue, chat_id)
    );
    INSERT INTO queue_entries_8 (seq, ns, queue, chat_id, score)
        SELECT seq, ns, queue, chat_id, score FROM queue_entries;
    DROP TABLE queue_entries;
    ALTER TABLE queue_entries_8 RENAME TO queue_entries;
    CREATE INDEX queue_order ON queue_entries (ns, queue, score, seq);
    CREATE TABLE hits_8 (
        seq INTEGER PRIMARY KEY, ns TEXT NOT NULL, key TEXT NOT NULL, t REAL NOT NULL,
        expires REAL NOT NULL DEFAULT 0
    );
    INSERT INTO hits_8 (seq, ns, key, t, expires) SELECT seq, ns, key, t, expires FROM hits;
    DROP TABLE hits;
    ALTER TABLE hits_8 RENAME TO hits;
    CREATE INDEX hits_by_key ON hits (ns, key, t);
    CREATE INDEX hits_expiry ON hits (ns, expires);
    DROP INDEX chats_by_state;
    CREATE INDEX chats_by_state ON chats (ns, state)
        WHERE state NOT IN ('ended', 'left_message', 'abandoned');
    CREATE TABLE agent_ranks_8 (
        ns TEXT NOT NULL, agent_id TEXT NOT NULL, grp TEXT NOT NULL,
        eligible INTEGER NOT NULL, status TEXT NOT NULL, category TEXT NOT NULL,
        lim INTEGER NOT NULL, active INTEGER NOT NULL, saturation REAL NOT NULL,
        free INTEGER NOT NULL, last_assigned_at REAL NOT NULL, idle_since REAL NOT NULL,
        tier INTEGER NOT NULL, account_order INTEGER NOT NULL, tiebreak REAL NOT NULL,
        PRIMARY KEY (ns, agent_id, grp)
    ) WITHOUT ROWID;
    INSERT INTO agent_ranks_8 (ns, agent_id, grp, eligible, status, category, lim, active,
            saturation, free, last_assigned_at, idle_since, tier, account_order, tiebreak)
        SELECT ns, agent_id, grp, eligible, status, category, lim, active, saturation, free,
            last_assigned_at, idle_since, tier, account_order, tiebreak FROM agent_ranks;
    DROP TABLE agent_ranks;
    ALTER TABLE agent_ranks_8 RENAME TO agent_ranks;
    CREATE INDEX agent_ranks_by_group ON agent_ranks (ns, grp);
    """
    + _CENSUS_TRIGGERS,
    # 9: ``chats_by_state``'s condition written as three comparisons instead of ``NOT IN``
    # (SQLite evaluates an ``IN`` list of more than two constants through an ephemeral table,
    # built for every statement that writes a chat: one for an insert, two for an update).
    # The same open chats, the same entries. The census trigger for a rank row that moves to
    # another (group, category) runs only for an update that sets one of those columns (a
    # trigger's WHEN is evaluated inside its program: every slot change ran both programs);
    # an update that sets only ``lim`` or ``active`` keeps its key, which agent_census_same
    # handles, so the summary is the same.
    """
    DROP INDEX chats_by_state;
    CREATE INDEX chats_by_state ON chats (ns, state)
        WHERE state != 'ended' AND state != 'left_message' AND state != 'abandoned';
    DROP TRIGGER agent_census_moved;
    CREATE TRIGGER agent_census_moved AFTER UPDATE OF ns, grp, category ON agent_ranks
        WHEN new.ns != old.ns OR new.grp != old.grp OR new.category != old.category BEGIN
        UPDATE agent_census SET n = n - 1, lim = lim - old.lim, active = active - old.active
            WHERE ns = old.ns AND grp = old.grp AND category = old.category;
        INSERT INTO agent_census (ns, grp, category, n, lim, active)
            VALUES (new.ns, new.grp, new.category, 1, new.lim, new.active)
            ON CONFLICT (ns, grp, category) DO UPDATE SET n = n + 1,
            lim = lim + excluded.lim, active = active + excluded.active;
    END;
    """,
    # 10: the outbox without an index on the namespace (see _outbox_ranges): every unit of
    # work appends to it, and its index was one B-tree more written and re-read per unit
    _outbox_ranges,
)


SCHEMA_VERSION = len(_MIGRATIONS)
"""The schema version this release writes; older databases are migrated on open."""


def _statements(script: str) -> Iterator[str]:
    """The statements of ``script`` one by one (a trigger's body keeps its own ``;``)."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                yield pending
            pending = ""
    if pending.strip(" \n;"):
        raise StorageError(f"incomplete migration statement: {pending.strip()!r}")


def migrate(
    db: SQLiteDatabase,
    table: str,
    what: str,
    migrations: Sequence[str | Callable[[sqlite3.Connection], None]],
) -> None:
    """Bring ``db`` to ``len(migrations)``, the version this release writes, in one write
    transaction: the version is kept in ``table`` (one row); the missing migrations run in order
    (SQL scripts statement by statement, or functions); a newer version is refused with
    :class:`~chatmgmt.errors.StorageError` naming ``what`` (``"schema"``)."""
    target = len(migrations)
    with db.write() as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (version INTEGER NOT NULL)")
        row = conn.execute(f"SELECT version FROM {table}").fetchone()
        version = 0 if row is None else int(row[0])
        if version > target:
            raise StorageError(
                f"SQLite database {db.path!r} has {what} version {version}, newer than "
                f"this release's {target}: upgrade chatmgmt"
            )
        for script in migrations[version:]:
            if callable(script):
                script(conn)
                continue
            for statement in _statements(script):
                conn.execute(statement)
        if row is None:
            conn.execute(f"INSERT INTO {table} VALUES (?)", (target,))
        elif version != target:
            conn.execute(f"UPDATE {table} SET version = ?", (target,))
