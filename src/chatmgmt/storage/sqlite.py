"""The SQLite storage adapter: durable state for one machine (stdlib :mod:`sqlite3`, WAL).

* **One unit of work, one transaction.** :meth:`SQLiteStorage.apply` applies a
  :class:`~chatmgmt.ports.Change` in one ``BEGIN IMMEDIATE`` transaction: the chat's
  compare-and-set, the slot released and claimed, the inactive move, the queue entries, the
  timers, the message, the sticky mark and the events (outbox rows). A failed precondition
  raises :class:`~chatmgmt.errors.PreconditionFailed` and rolls everything back. The other
  writers (customers, :meth:`SQLiteAgentStore.put`, the outbox and timer leases, counters) are
  one transaction each too.
* The **ranked claim** happens inside that transaction: ``SELECT … ORDER BY <ranking> LIMIT 1``
  over an index built from the :class:`~chatmgmt.model.Ranking`'s fields, then the update of
  the agent. The ranking's values are stored as columns of ``agent_ranks`` (one row per agent
  and skill group, ``""`` included), computed by :func:`chatmgmt.assignment._load.rank_entry`,
  and the ``ORDER BY`` is generated from the ranking's keys through a whitelist of column
  names: user data only ever travels as bound parameters.
* Every load transition (claim, release, inactive, registering or updating an agent), the
  eligibility flag and the census category are the pure rules of
  :mod:`chatmgmt.assignment._load`; this adapter only stores their results.
* Several processes may share one database file: SQLite serializes writers, WAL lets readers
  proceed. A process killed at any point loses nothing that committed (WAL with
  ``synchronous=NORMAL`` survives a process crash; use ``synchronous="FULL"`` to also survive a
  power loss).
* Thread-safe: each thread uses its own connection (``":memory:"`` databases share one
  connection under a lock). ``SQLiteStorage.aio()`` is the async face (calls run on a small
  thread pool).
* The schema carries a version (table ``schema_version``); opening a database applies the
  missing migrations in order, and refuses a database written by a newer release.

Several tenants may share one database: every row carries its ``namespace``.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from typing import Any, cast

import attrs

from ..assignment._load import updated_agent
from ..errors import ConflictError, NotFoundError
from ..model import (
    Agent,
    AgentId,
    AgentLoad,
    Chat,
    ChatId,
    ChatState,
    Customer,
    Event,
    Message,
    Sticky,
    Timer,
)
from ..ports import (
    Applied,
    AsyncStorage,
    Census,
    Change,
    GroupCensus,
    OutboxEntry,
    QueueHead,
)
from . import _sqlite_reads as _reads
from . import _sqlite_unit as _unit
from ._codec import decode, encode
from ._sqlite_db import SCHEMA_VERSION, SQLiteDatabase
from ._sqlite_sql import OPEN_CHATS, OUTBOX_RANGE, TIMER_PUT, outbox_range
from ._threaded import ThreadedAsyncStorage

__all__ = [
    "SCHEMA_VERSION",
    "SQLiteAgentStore",
    "SQLiteChatStore",
    "SQLiteCustomerStore",
    "SQLiteDatabase",
    "SQLiteOutbox",
    "SQLiteQueueStore",
    "SQLiteRateCounter",
    "SQLiteStorage",
    "SQLiteTimerStore",
]

# --------------------------------------------------------------------------- ports


class _Base:
    def __init__(self, db: SQLiteDatabase, namespace: str) -> None:
        self._db = db
        self._ns = namespace


def _put_timer(conn: sqlite3.Connection, ns: str, timer: Timer) -> None:
    conn.execute(TIMER_PUT, (ns, timer.key, timer.due_at, encode(timer)))


class SQLiteCustomerStore(_Base):
    """SQLite :class:`~chatmgmt.ports.CustomerStore`."""

    def get(self, partner_id: str) -> Customer | None:
        """See the port."""
        with self._db.statement() as conn:
            row = conn.execute(
                "SELECT data FROM customers WHERE ns = ? AND partner_id = ?",
                (self._ns, partner_id),
            ).fetchone()
        return None if row is None else decode(row[0], Customer)

    def create(self, customer: Customer, events: Sequence[Event] = ()) -> None:
        """See the port."""
        with self._db.write() as conn:
            row = conn.execute(
                "SELECT version FROM customers WHERE ns = ? AND partner_id = ?",
                (self._ns, customer.partner_id),
            ).fetchone()
            if row is not None:
                raise ConflictError("customer", customer.partner_id, None, int(row[0]))
            conn.execute(
                "INSERT INTO customers (ns, partner_id, version, data) VALUES (?, ?, ?, ?)",
                (self._ns, customer.partner_id, customer.version, encode(customer)),
            )
            _unit.append_events(conn, self._ns, events)

    def replace(
        self, customer: Customer, expected_version: int, events: Sequence[Event] = ()
    ) -> None:
        """See the port."""
        with self._db.write() as conn:
            row = conn.execute(
                "SELECT version FROM customers WHERE ns = ? AND partner_id = ?",
                (self._ns, customer.partner_id),
            ).fetchone()
            if row is None:
                raise NotFoundError("customer", customer.partner_id)
            if int(row[0]) != expected_version:
                raise ConflictError("customer", customer.partner_id, expected_version, int(row[0]))
            conn.execute(
                "UPDATE customers SET version = ?, data = ? WHERE ns = ? AND partner_id = ?",
                (customer.version, encode(customer), self._ns, customer.partner_id),
            )
            _unit.append_events(conn, self._ns, events)


class SQLiteAgentStore(_Base):
    """SQLite :class:`~chatmgmt.ports.AgentStore` (slots move only in
    :meth:`SQLiteStorage.apply`)."""

    def put(
        self,
        agent: Agent,
        now: float,
        events: Sequence[Event] = (),
        tiebreak: float = 0.0,
        expected_version: int | None = None,
    ) -> AgentLoad:
        """See the port: a compare-and-set on the agent's configuration version."""
        with self._db.write() as conn:
            row = conn.execute(
                "SELECT version FROM agents WHERE ns = ? AND id = ?", (self._ns, agent.id)
            ).fetchone()
            actual = None if row is None else int(row[0])
            if actual != expected_version:
                raise ConflictError("agent", agent.id, expected_version, actual)
            old = _unit.read_load(conn, self._ns, agent.id)
            load = _unit.write_load(conn, self._ns, updated_agent(old, agent, now, tiebreak), old)
            _unit.append_events(conn, self._ns, events)
            return load

    def census(self, group: str) -> Census:
        """See the port: the group's rows of ``agent_census`` (per census category the count,
        limits and active chats of its agents, kept by triggers on ``agent_ranks``); an ONLINE
        agent is ``eligible`` or ``full``, so those two categories give the capacity and the
        load."""
        with self._db.statement() as conn:
            return _reads.read_census(conn, self._ns, group)

    def censuses(self, groups: Sequence[str]) -> list[GroupCensus]:
        """See the port: one read, per group one aggregate over its rows (``held`` counts the
        inactive chats kept in the agent's record)."""
        out = []
        with self._db.read() as conn:
            for group in groups:
                row = conn.execute(
                    "SELECT "
                    "COALESCE(SUM(r.category = 'eligible'), 0), "
                    "COALESCE(SUM(r.category = 'full'), 0), "
                    "COALESCE(SUM(r.category = 'busy'), 0), "
                    "COALESCE(SUM(r.category = 'away'), 0), "
                    "COALESCE(SUM(r.category = 'offline'), 0), "
                    "COALESCE(SUM(CASE WHEN r.status = 'online' THEN r.lim ELSE 0 END), 0), "
                    "COALESCE(SUM(CASE WHEN r.status = 'online' THEN r.active ELSE 0 END), 0), "
                    "COALESCE(SUM(r.active + COALESCE("
                    "json_array_length(a.inactive), 0)), 0), "
                    "COALESCE(SUM(CASE WHEN r.status = 'online' THEN r.free ELSE 0 END), 0) "
                    "FROM agent_ranks r JOIN agents a ON a.ns = r.ns AND a.id = r.agent_id "
                    "WHERE r.ns = ? AND r.grp = ?",
                    (self._ns, group),
                ).fetchone()
                out.append(GroupCensus(*(int(v) for v in row)))
        return out

    def get(self, agent_id: AgentId) -> AgentLoad | None:
        """See the port."""
        with self._db.statement() as conn:
            return _unit.read_load(conn, self._ns, agent_id)

    def list(self, group: str | None = None) -> list[AgentLoad]:
        """See the port."""
        with self._db.statement() as conn:
            columns = ", ".join(f"a.{name}" for name in _unit.LOAD_COLUMNS)
            if group is None:
                rows = conn.execute(f"SELECT {columns} FROM agents a WHERE ns = ?", (self._ns,))
            else:
                rows = conn.execute(
                    f"SELECT {columns} FROM agent_ranks r JOIN agents a "
                    "ON a.ns = r.ns AND a.id = r.agent_id WHERE r.ns = ? AND r.grp = ?",
                    (self._ns, group),
                )
            loads = [load for load in map(_unit.load_of, rows) if load is not None]
        loads.sort(key=lambda ld: (ld.agent.account_order, ld.agent.id))
        return loads


#: A chat and its agent's load columns (the agent's row as the unit of work reads it: a
#: release is built from them before the writer's turn, see ``_sqlite_unit.apply``).
_CHAT_READ = (
    "SELECT c.data, c.agent_id, "
    + ", ".join(f"a.{name}" for name in _unit.LOAD_COLUMNS)
    + " FROM chats c LEFT JOIN agents a ON a.ns = c.ns AND a.id = c.agent_id "
    "WHERE c.ns = ? AND c.id = ?"
)


class SQLiteChatStore(_Base):
    """SQLite :class:`~chatmgmt.ports.ChatStore` (read side; writes go through
    :meth:`SQLiteStorage.apply`)."""

    def get(self, chat_id: ChatId) -> Chat | None:
        """See the port."""
        with self._db.statement() as conn:
            row = conn.execute(_CHAT_READ, (self._ns, chat_id)).fetchone()
        if row is None:
            return None
        if row[1] is not None and row[2] is not None:
            # the chat's agent's load, for the unit of work that may release it next
            self._db.remember_agent(self._ns, row[1], row[2:])
        return decode(row[0], Chat)

    def messages(self, chat_id: ChatId) -> list[Message]:
        """See the port."""
        with self._db.statement() as conn:
            rows = conn.execute(
                "SELECT data FROM messages WHERE ns = ? AND chat_id = ? ORDER BY seq",
                (self._ns, chat_id),
            ).fetchall()
        return [decode(r[0], Message) for r in rows]

    def list(self, state: ChatState | None = None, agent_id: AgentId | None = None) -> list[Chat]:
        """See the port (in creation order)."""
        sql = "SELECT data FROM chats WHERE ns = ?"
        params: list[Any] = [self._ns]
        if state is not None:
            state = ChatState(state)
            sql += " AND state = ?"
            params.append(state.value)
            if state.is_open:  # ``chats_by_state`` indexes the open chats: say it's one
                sql += f" AND {OPEN_CHATS}"
        if agent_id is not None:
            sql += " AND agent_id = ?"
            params.append(agent_id)
        with self._db.statement() as conn:
            rows = conn.execute(sql + " ORDER BY rowid", params).fetchall()
        return [decode(r[0], Chat) for r in rows]

    def sticky(self, partner_id: str) -> Sticky | None:
        """See the port."""
        with self._db.statement() as conn:
            row = conn.execute(
                "SELECT data FROM sticky WHERE ns = ? AND partner_id = ?", (self._ns, partner_id)
            ).fetchone()
        return None if row is None else decode(row[0], Sticky)

    def purge(self, before: float, limit: int) -> int:
        """See the port: one transaction, found oldest first by the ``retain_from`` index
        (nothing is written when nothing is due)."""
        if limit <= 0:
            return 0
        select = (
            "SELECT id, data FROM chats WHERE ns = ? AND retain_from IS NOT NULL "
            "AND retain_from < ? ORDER BY retain_from LIMIT ?"
        )
        params = (self._ns, before, limit)
        with self._db.statement() as conn:
            if conn.execute(select, params).fetchone() is None:
                return 0
        with self._db.write() as conn:
            rows = conn.execute(select, params).fetchall()
            ids = [(self._ns, r[0]) for r in rows]
            conn.executemany("DELETE FROM messages WHERE ns = ? AND chat_id = ?", ids)
            conn.executemany("DELETE FROM chats WHERE ns = ? AND id = ?", ids)
            partners = {decode(r[1], Chat).customer.partner_id for r in rows}
            conn.executemany(
                "DELETE FROM sticky WHERE ns = ? AND partner_id = ? "
                "AND json_extract(data, '$.at') < ?",
                [(self._ns, p, before) for p in sorted(p for p in partners if p)],
            )
        return len(rows)


class SQLiteQueueStore(_Base):
    """SQLite :class:`~chatmgmt.ports.QueueStore` (indexed by score, then insertion; entries
    move only in :meth:`SQLiteStorage.apply`)."""

    def peek(self, queue: str, limit: int) -> list[tuple[ChatId, float]]:
        """See the port."""
        with self._db.statement() as conn:
            rows = conn.execute(
                "SELECT chat_id, score FROM queue_entries WHERE ns = ? AND queue = ? "
                "ORDER BY score, seq LIMIT ?",
                (self._ns, queue, max(0, limit)),
            ).fetchall()
        return [(ChatId(r[0]), float(r[1])) for r in rows]

    def position(self, queue: str, chat_id: ChatId) -> int | None:
        """See the port."""
        with self._db.read() as conn:
            row = conn.execute(
                "SELECT score, seq FROM queue_entries WHERE ns = ? AND queue = ? AND chat_id = ?",
                (self._ns, queue, chat_id),
            ).fetchone()
            if row is None:
                return None
            score, seq = row
            (count,) = conn.execute(
                "SELECT COUNT(*) FROM queue_entries WHERE ns = ? AND queue = ? "
                "AND (score < ? OR (score = ? AND seq < ?))",
                (self._ns, queue, score, score, seq),
            ).fetchone()
        return int(count)

    def length(self, queue: str) -> int:
        """See the port."""
        with self._db.statement() as conn:
            (count,) = conn.execute(
                "SELECT COUNT(*) FROM queue_entries WHERE ns = ? AND queue = ?",
                (self._ns, queue),
            ).fetchone()
        return int(count)

    def heads(self, queues: Sequence[str]) -> list[QueueHead]:
        """See the port. One statement says whether any of ``queues`` holds an entry (the
        common answer, none, costs nothing more); else one read over every queue
        (:func:`~chatmgmt.storage._sqlite_reads.read_heads`)."""
        with self._db.statement() as conn:
            probed = _reads.some_queued(conn, self._ns, queues)
        if probed is False:
            return [QueueHead(queue) for queue in queues]
        with self._db.read() as conn:
            return _reads.read_heads(conn, self._ns, queues, probed)


class SQLiteOutbox(_Base):
    """SQLite :class:`~chatmgmt.ports.Outbox`: rows with a lease deadline."""

    def append(self, events: Sequence[Event]) -> None:
        """See the port."""
        with self._db.write() as conn:
            _unit.append_events(conn, self._ns, events)

    def claim(self, consumer: str, limit: int, now: float, lease_s: float) -> list[OutboxEntry]:
        """See the port."""
        until = now + lease_s
        with self._db.write() as conn:
            rows = conn.execute(
                f"SELECT seq, data, deliveries FROM outbox WHERE {OUTBOX_RANGE} "
                "AND lease_until <= ?4 ORDER BY seq LIMIT ?5",
                (*outbox_range(self._ns), self._ns, now, max(0, limit)),
            ).fetchall()
            if rows:
                conn.executemany(
                    "UPDATE outbox SET lease_until = ?, deliveries = deliveries + 1 "
                    "WHERE ns = ? AND seq = ?",
                    [(until, self._ns, r[0]) for r in rows],
                )
        entries = []
        for seq, data, deliveries in rows:
            event = decode(data, Event)
            entries.append(OutboxEntry(f"{seq}:{event.id}", event, int(deliveries) + 1))
        return entries

    def ack(self, entry_ids: Sequence[str]) -> None:
        """See the port: an entry id is ``"<seq>:<event id>"`` (an entry's number can come
        back once the newest entry is acknowledged: the event id tells them apart)."""
        keys = []
        for entry_id in entry_ids:
            seq, _, event_id = str(entry_id).partition(":")
            if seq.isdigit() and event_id:
                keys.append((self._ns, int(seq), event_id))
        if not keys:
            return
        with self._db.write() as conn:
            conn.executemany(
                "DELETE FROM outbox WHERE ns = ? AND seq = ? AND json_extract(data, '$.id') = ?",
                keys,
            )

    def pending(self) -> int:
        """See the port."""
        with self._db.statement() as conn:
            (count,) = conn.execute(
                f"SELECT COUNT(*) FROM outbox WHERE {OUTBOX_RANGE}",
                (*outbox_range(self._ns), self._ns),
            ).fetchone()
        return int(count)

    def events(self) -> list[Event]:
        """Every unacknowledged event, oldest first (a testing convenience)."""
        with self._db.statement() as conn:
            rows = conn.execute(
                f"SELECT data FROM outbox WHERE {OUTBOX_RANGE} ORDER BY seq",
                (*outbox_range(self._ns), self._ns),
            ).fetchall()
        return [decode(r[0], Event) for r in rows]


class SQLiteTimerStore(_Base):
    """SQLite :class:`~chatmgmt.ports.TimerStore` (indexed by due time, then key)."""

    def cancel(self, key: str, due_at: float | None = None) -> None:
        """See the port."""
        with self._db.write() as conn:
            if due_at is None:
                conn.execute("DELETE FROM timers WHERE ns = ? AND key = ?", (self._ns, key))
            else:
                conn.execute(
                    "DELETE FROM timers WHERE ns = ? AND key = ? AND due_at = ?",
                    (self._ns, key, due_at),
                )

    def get(self, key: str) -> Timer | None:
        """The timer with ``key``, or None (a testing convenience)."""
        with self._db.statement() as conn:
            row = conn.execute(
                "SELECT due_at, data FROM timers WHERE ns = ? AND key = ?", (self._ns, key)
            ).fetchone()
        return None if row is None else attrs.evolve(decode(row[1], Timer), due_at=row[0])

    def claim_due(self, now: float, limit: int, lease_s: float) -> list[Timer]:
        """See the port."""
        out: list[Timer] = []
        with self._db.write() as conn:
            rows = conn.execute(
                "SELECT due_at, data FROM timers WHERE ns = ? AND due_at <= ? "
                "ORDER BY due_at, key LIMIT ?",
                (self._ns, now, max(0, limit)),
            ).fetchall()
            for due_at, data in rows:
                timer = attrs.evolve(decode(data, Timer), due_at=due_at)
                out.append(timer)
                _put_timer(conn, self._ns, attrs.evolve(timer, due_at=now + lease_s))
        return out


_EVICT_PER_HIT = 16


class SQLiteRateCounter(_Base):
    """SQLite :class:`~chatmgmt.ports.RateCounter`: one row per hit.

    A hit deletes its key's hits that left the window, and up to 16 expired hits of any key
    (by the ``expires`` index), so keys nobody hits any more do not accumulate."""

    def hit(self, key: str, now: float, window_s: float) -> int:
        """See the port."""
        with self._db.write() as conn:
            conn.execute(
                "INSERT INTO hits (ns, key, t, expires) VALUES (?, ?, ?, ?)",
                (self._ns, key, now, now + window_s),
            )
            conn.execute(
                "DELETE FROM hits WHERE ns = ? AND key = ? AND t <= ?",
                (self._ns, key, now - window_s),
            )
            conn.execute(
                "DELETE FROM hits WHERE seq IN (SELECT seq FROM hits WHERE ns = ? "
                "AND expires <= ? ORDER BY expires LIMIT ?)",
                (self._ns, now, _EVICT_PER_HIT),
            )
            (count,) = conn.execute(
                "SELECT COUNT(*) FROM hits WHERE ns = ? AND key = ?", (self._ns, key)
            ).fetchone()
        return int(count)


class SQLiteStorage:
    """Every storage port in one SQLite database, for one namespace (tenant).

    ``database`` is a path (the file is created and migrated on first use) or a shared
    :class:`SQLiteDatabase`; several ``SQLiteStorage`` objects (namespaces, threads or
    processes) may use one file at once.

    >>> storage = SQLiteStorage(":memory:", namespace="acme")
    >>> storage.namespace
    'acme'
    """

    reports_census = True
    """:meth:`apply` reads :attr:`~chatmgmt.ports.Change.census` inside its transaction and
    fills the census marks, so an ``open_chat`` needs no census read before its unit."""

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
        if isinstance(database, SQLiteDatabase):
            self.database = database
        else:
            self.database = SQLiteDatabase(database, timeout=timeout, synchronous=synchronous)
        self._namespace = namespace
        db = self.database
        self._customers = SQLiteCustomerStore(db, namespace)
        self._agents = SQLiteAgentStore(db, namespace)
        self._chats = SQLiteChatStore(db, namespace)
        self._queues = SQLiteQueueStore(db, namespace)
        self._outbox = SQLiteOutbox(db, namespace)
        self._timers = SQLiteTimerStore(db, namespace)
        self._counters = SQLiteRateCounter(db, namespace)

    @property
    def namespace(self) -> str:
        """The tenant this storage serves."""
        return self._namespace

    @property
    def customers(self) -> SQLiteCustomerStore:
        """The CRM."""
        return self._customers

    @property
    def agents(self) -> SQLiteAgentStore:
        """Agents and their load."""
        return self._agents

    @property
    def chats(self) -> SQLiteChatStore:
        """Chats and messages."""
        return self._chats

    @property
    def queues(self) -> SQLiteQueueStore:
        """Queues and pools."""
        return self._queues

    @property
    def outbox(self) -> SQLiteOutbox:
        """The event log."""
        return self._outbox

    @property
    def timers(self) -> SQLiteTimerStore:
        """Deadlines."""
        return self._timers

    @property
    def counters(self) -> SQLiteRateCounter:
        """Sliding-window counters."""
        return self._counters

    # the unit of work ----------------------------------------------------------

    def apply(self, change: Change) -> Applied:
        """Apply ``change`` in one transaction (see :class:`~chatmgmt.ports.Change`).

        Inside one ``BEGIN IMMEDIATE`` transaction: every precondition is checked on the state
        before any write (the ranked pick included, by the rank index; the agent the change
        releases is never claimed back), then the effects run in the contract's order. Any
        failure rolls the whole transaction back. The reports are read in the same
        transaction: :attr:`~chatmgmt.ports.Change.census` before the effects (a few rows of
        the census summary), the watched queues' heads and the released agent's load after
        them (:attr:`~chatmgmt.ports.Applied.heads`, always reported). Raises
        :class:`~chatmgmt.errors.PreconditionFailed` (nothing committed) when a precondition
        does not hold, :class:`~chatmgmt.errors.ValidationError` for a malformed change.
        """
        return _unit.apply(self.database, self._namespace, change)

    def aio(self) -> AsyncStorage:
        """The async face of this storage: the same database, calls run on a thread pool."""
        return cast(AsyncStorage, ThreadedAsyncStorage(self, self.database.executor()))

    def close(self) -> None:
        """Close the database connections (of every namespace sharing this database)."""
        self.database.close()
