"""The sync face of the PostgreSQL adapter: :class:`PostgresStorage` and its port objects,
each a call of the shared ``_pg_*`` operation on :class:`~chatmgmt.storage._pg.PostgresDatabase`
(re-exported by :mod:`chatmgmt.storage.postgres`, which says how the adapter works)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
    Census,
    Change,
    GroupCensus,
    OutboxEntry,
    QueueHead,
)
from ._pg import (
    IMPLICIT,
    PostgresDatabase,
    channel_tag,
    ddl_op,
    migrate_op,
)
from ._pg_face import (
    _COMPONENT,
    _MIGRATIONS,
    SCHEMA_VERSION,
    _database,
    _namespace_key,
    _rank_index,
    _schema_version,
)
from ._pg_loads import _agent_put
from ._pg_outbox import (
    _outbox_ack,
    _outbox_append,
    _outbox_claim,
    _outbox_events,
    _outbox_pending,
)
from ._pg_reads import (
    _agent_census,
    _agent_censuses,
    _agent_get,
    _agent_list,
    _chat_get,
    _chat_list,
    _chat_messages,
    _chat_sticky,
    _customer_get,
    _queue_heads,
    _queue_length,
    _queue_peek,
    _queue_position,
    _timer_get,
)
from ._pg_unit import _apply_op
from ._pg_writes import (
    _chat_purge,
    _counter_hit,
    _customer_create,
    _customer_replace,
    _delete_namespace,
    _timer_cancel,
    _timer_claim_due,
)


class _Port:
    def __init__(self, storage: PostgresStorage) -> None:
        self._db = storage.database
        self._ns = storage._ns
        self._notify = storage.notify


class PostgresCustomerStore(_Port):
    """PostgreSQL :class:`~chatmgmt.ports.CustomerStore`."""

    def get(self, partner_id: str) -> Customer | None:
        """See the port."""
        return self._db.run(_customer_get, self._ns, partner_id, tx=False)

    def create(self, customer: Customer, events: Sequence[Event] = ()) -> None:
        """See the port."""
        self._db.run(_customer_create, self._ns, customer, tuple(events), self._notify)

    def replace(
        self, customer: Customer, expected_version: int, events: Sequence[Event] = ()
    ) -> None:
        """See the port."""
        self._db.run(
            _customer_replace, self._ns, customer, expected_version, tuple(events), self._notify
        )


class PostgresAgentStore(_Port):
    """PostgreSQL :class:`~chatmgmt.ports.AgentStore` (slots move only in
    :meth:`PostgresStorage.apply`)."""

    def put(
        self,
        agent: Agent,
        now: float,
        events: Sequence[Event] = (),
        tiebreak: float = 0.0,
        expected_version: int | None = None,
    ) -> AgentLoad:
        """See the port: a compare-and-set on the agent's configuration version."""
        return self._db.run(
            _agent_put,
            self._ns,
            agent,
            now,
            tuple(events),
            tiebreak,
            expected_version,
            self._notify,
        )

    def census(self, group: str) -> Census:
        """See the port: one aggregate over the group's rank rows."""
        return self._db.run(_agent_census, self._ns, group, tx=False)

    def censuses(self, groups: Sequence[str]) -> list[GroupCensus]:
        """See the port: one statement (one snapshot), per group one aggregate over its rank
        rows (``held`` counts the inactive chats kept in the agent's record)."""
        return self._db.run(_agent_censuses, self._ns, tuple(groups), tx=False)

    def get(self, agent_id: AgentId) -> AgentLoad | None:
        """See the port."""
        return self._db.run(_agent_get, self._ns, agent_id, tx=False)

    def list(self, group: str | None = None) -> list[AgentLoad]:
        """See the port."""
        return self._db.run(_agent_list, self._ns, group, tx=False)


class PostgresChatStore(_Port):
    """PostgreSQL :class:`~chatmgmt.ports.ChatStore` (read side)."""

    def get(self, chat_id: ChatId) -> Chat | None:
        """See the port."""
        return self._db.run(_chat_get, self._ns, chat_id, tx=False)

    def messages(self, chat_id: ChatId) -> list[Message]:
        """See the port."""
        return self._db.run(_chat_messages, self._ns, chat_id, tx=False)

    def list(self, state: ChatState | None = None, agent_id: AgentId | None = None) -> list[Chat]:
        """See the port (in creation order)."""
        return self._db.run(_chat_list, self._ns, state, agent_id, tx=False)

    def sticky(self, partner_id: str) -> Sticky | None:
        """See the port."""
        return self._db.run(_chat_sticky, self._ns, partner_id, tx=False)

    def purge(self, before: float, limit: int) -> int:
        """See the port: one transaction per batch, oldest first by the ``retain_from`` index
        (``SKIP LOCKED``: concurrent purges take different chats)."""
        if limit <= 0:
            return 0
        return self._db.run(_chat_purge, self._ns, before, limit)


class PostgresQueueStore(_Port):
    """PostgreSQL :class:`~chatmgmt.ports.QueueStore` (read side; by score, then insertion)."""

    def peek(self, queue: str, limit: int) -> list[tuple[ChatId, float]]:
        """See the port."""
        return self._db.run(_queue_peek, self._ns, queue, limit, tx=False)

    def position(self, queue: str, chat_id: ChatId) -> int | None:
        """See the port."""
        return self._db.run(_queue_position, self._ns, queue, chat_id, tx=False)

    def length(self, queue: str) -> int:
        """See the port."""
        return self._db.run(_queue_length, self._ns, queue, tx=False)

    def heads(self, queues: Sequence[str]) -> list[QueueHead]:
        """See the port: one statement (one snapshot) over every queue asked for."""
        return self._db.run(_queue_heads, self._ns, tuple(queues), tx=False)


class PostgresOutbox(_Port):
    """PostgreSQL :class:`~chatmgmt.ports.Outbox`: rows leased with ``FOR UPDATE SKIP
    LOCKED``; appends send a ``NOTIFY`` that :meth:`wait` receives."""

    def append(self, events: Sequence[Event]) -> None:
        """See the port."""
        self._db.run(_outbox_append, self._ns, tuple(events), self._notify)

    def claim(self, consumer: str, limit: int, now: float, lease_s: float) -> list[OutboxEntry]:
        """See the port."""
        return self._db.run(_outbox_claim, self._ns, limit, now, lease_s)

    def ack(self, entry_ids: Sequence[str]) -> None:
        """See the port."""
        seqs = [int(e) for e in entry_ids if str(e).isdigit()]
        if seqs:
            self._db.run(_outbox_ack, self._ns, seqs)

    def pending(self) -> int:
        """See the port."""
        return self._db.run(_outbox_pending, self._ns, tx=False)

    def events(self) -> list[Event]:
        """Every unacknowledged event, oldest first (a testing convenience)."""
        return self._db.run(_outbox_events, self._ns, tx=False)

    def wait(self, timeout: float) -> bool:
        """Block until events are appended in this namespace (True) or ``timeout`` seconds
        pass (False): ``LISTEN`` on a dedicated connection. The webhook dispatcher waits here
        when idle."""
        return self._db.wait(channel_tag(self._ns.decode("utf-8", "surrogatepass")), timeout)


class PostgresTimerStore(_Port):
    """PostgreSQL :class:`~chatmgmt.ports.TimerStore` (indexed by due time, then insertion;
    leases with ``FOR UPDATE SKIP LOCKED``)."""

    def cancel(self, key: str, due_at: float | None = None) -> None:
        """See the port."""
        self._db.run(_timer_cancel, self._ns, key, due_at)

    def get(self, key: str) -> Timer | None:
        """The timer with ``key``, or None (a testing convenience)."""
        return self._db.run(_timer_get, self._ns, key, tx=False)

    def claim_due(self, now: float, limit: int, lease_s: float) -> list[Timer]:
        """See the port."""
        return self._db.run(_timer_claim_due, self._ns, now, limit, lease_s)


class PostgresRateCounter(_Port):
    """PostgreSQL :class:`~chatmgmt.ports.RateCounter`."""

    def hit(self, key: str, now: float, window_s: float) -> int:
        """See the port."""
        return self._db.run(_counter_hit, self._ns, key, now, window_s)


class PostgresStorage:
    """Every storage port in one PostgreSQL database, for one namespace (tenant).

    ``database`` is a DSN, a :class:`psycopg_pool.ConnectionPool` the host already has, or a
    shared :class:`PostgresDatabase`; the schema is created or migrated on first use.
    ``notify`` (default True) sends a ``NOTIFY`` with every transaction that appends events.
    """

    reports_census = True
    """:meth:`apply` reads :attr:`~chatmgmt.ports.Change.census` inside the unit (with its
    first reads, one round trip) and fills the census marks: the core asks for it instead of
    a census read of its own before an open. :attr:`~chatmgmt.ports.Change.watch` is reported
    too (the heads read in the commit's round trip, the released load as written)."""

    def __init__(self, database: Any, namespace: str = "default", *, notify: bool = True) -> None:
        key = _namespace_key(namespace)
        self._owned = not isinstance(database, PostgresDatabase)
        self.database: PostgresDatabase = _database(database, PostgresDatabase)
        self._namespace = namespace
        self._ns = key
        self.notify = notify
        where = repr(self.database)
        self.database.once(
            "migrate:storage", migrate_op, _COMPONENT, _MIGRATIONS, SCHEMA_VERSION, where
        )
        self._customers = PostgresCustomerStore(self)
        self._agents = PostgresAgentStore(self)
        self._chats = PostgresChatStore(self)
        self._queues = PostgresQueueStore(self)
        self._outbox = PostgresOutbox(self)
        self._timers = PostgresTimerStore(self)
        self._counters = PostgresRateCounter(self)

    def __repr__(self) -> str:
        return f"PostgresStorage({self.database!r}, namespace={self._namespace!r})"

    @property
    def namespace(self) -> str:
        """The tenant this storage serves."""
        return self._namespace

    @property
    def customers(self) -> PostgresCustomerStore:
        """The CRM."""
        return self._customers

    @property
    def agents(self) -> PostgresAgentStore:
        """Agents and their load."""
        return self._agents

    @property
    def chats(self) -> PostgresChatStore:
        """Chats and messages."""
        return self._chats

    @property
    def queues(self) -> PostgresQueueStore:
        """Queues and pools."""
        return self._queues

    @property
    def outbox(self) -> PostgresOutbox:
        """The event log."""
        return self._outbox

    @property
    def timers(self) -> PostgresTimerStore:
        """Deadlines."""
        return self._timers

    @property
    def counters(self) -> PostgresRateCounter:
        """Sliding-window counters."""
        return self._counters

    def apply(self, change: Change) -> Applied:
        """Apply ``change`` in one transaction (see :class:`~chatmgmt.ports.Change` and the
        module docstring). Raises :class:`~chatmgmt.errors.PreconditionFailed` (nothing
        committed) when a precondition does not hold,
        :class:`~chatmgmt.errors.ValidationError` for a malformed change."""
        change.check()
        index = _rank_index(change)
        if index is not None:
            name, sql = index
            self.database.once(name, ddl_op, sql)
        return self.database.run(_apply_op, self._ns, change, self.notify, tx=IMPLICIT)

    def schema_version(self) -> int:
        """The storage schema version stored in the database."""
        return self.database.run(_schema_version, tx=False)

    def delete_namespace(self) -> None:
        """Delete every row of this namespace (tests, tenant removal)."""
        self.database.run(_delete_namespace, self._ns)

    def close(self) -> None:
        """Close the connection pool if this storage opened it (from a DSN)."""
        if self._owned:
            self.database.close()
