"""The async face of the PostgreSQL adapter: :class:`AsyncPostgresStorage` and its port
objects, the same ``_pg_*`` operations awaited on
:class:`~chatmgmt.storage._pg.AsyncPostgresDatabase` (re-exported by
:mod:`chatmgmt.storage.postgres`)."""

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
    AsyncPostgresDatabase,
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


class _APort:
    def __init__(self, storage: AsyncPostgresStorage) -> None:
        self._storage = storage
        self._db = storage.database
        self._ns = storage._ns
        self._notify = storage.notify


class AsyncPostgresCustomerStore(_APort):
    """Async PostgreSQL :class:`~chatmgmt.ports.AsyncCustomerStore`."""

    async def get(self, partner_id: str) -> Customer | None:
        """See the port."""
        await self._storage._ready()
        return await self._db.run(_customer_get, self._ns, partner_id, tx=False)

    async def create(self, customer: Customer, events: Sequence[Event] = ()) -> None:
        """See the port."""
        await self._storage._ready()
        await self._db.run(_customer_create, self._ns, customer, tuple(events), self._notify)

    async def replace(
        self, customer: Customer, expected_version: int, events: Sequence[Event] = ()
    ) -> None:
        """See the port."""
        await self._storage._ready()
        await self._db.run(
            _customer_replace, self._ns, customer, expected_version, tuple(events), self._notify
        )


class AsyncPostgresAgentStore(_APort):
    """Async PostgreSQL :class:`~chatmgmt.ports.AsyncAgentStore`."""

    async def put(
        self,
        agent: Agent,
        now: float,
        events: Sequence[Event] = (),
        tiebreak: float = 0.0,
        expected_version: int | None = None,
    ) -> AgentLoad:
        """See the port."""
        await self._storage._ready()
        return await self._db.run(
            _agent_put,
            self._ns,
            agent,
            now,
            tuple(events),
            tiebreak,
            expected_version,
            self._notify,
        )

    async def census(self, group: str) -> Census:
        """See the port."""
        await self._storage._ready()
        return await self._db.run(_agent_census, self._ns, group, tx=False)

    async def censuses(self, groups: Sequence[str]) -> list[GroupCensus]:
        """See :meth:`PostgresAgentStore.censuses`."""
        await self._storage._ready()
        return await self._db.run(_agent_censuses, self._ns, tuple(groups), tx=False)

    async def get(self, agent_id: AgentId) -> AgentLoad | None:
        """See the port."""
        await self._storage._ready()
        return await self._db.run(_agent_get, self._ns, agent_id, tx=False)

    async def list(self, group: str | None = None) -> list[AgentLoad]:
        """See the port."""
        await self._storage._ready()
        return await self._db.run(_agent_list, self._ns, group, tx=False)


class AsyncPostgresChatStore(_APort):
    """Async PostgreSQL :class:`~chatmgmt.ports.AsyncChatStore`."""

    async def get(self, chat_id: ChatId) -> Chat | None:
        """See the port."""
        await self._storage._ready()
        return await self._db.run(_chat_get, self._ns, chat_id, tx=False)

    async def messages(self, chat_id: ChatId) -> list[Message]:
        """See the port."""
        await self._storage._ready()
        return await self._db.run(_chat_messages, self._ns, chat_id, tx=False)

    async def list(
        self, state: ChatState | None = None, agent_id: AgentId | None = None
    ) -> list[Chat]:
        """See the port."""
        await self._storage._ready()
        return await self._db.run(_chat_list, self._ns, state, agent_id, tx=False)

    async def sticky(self, partner_id: str) -> Sticky | None:
        """See the port."""
        await self._storage._ready()
        return await self._db.run(_chat_sticky, self._ns, partner_id, tx=False)

    async def purge(self, before: float, limit: int) -> int:
        """See :meth:`PostgresChatStore.purge`."""
        if limit <= 0:
            return 0
        await self._storage._ready()
        return await self._db.run(_chat_purge, self._ns, before, limit)


class AsyncPostgresQueueStore(_APort):
    """Async PostgreSQL :class:`~chatmgmt.ports.AsyncQueueStore`."""

    async def peek(self, queue: str, limit: int) -> list[tuple[ChatId, float]]:
        """See the port."""
        await self._storage._ready()
        return await self._db.run(_queue_peek, self._ns, queue, limit, tx=False)

    async def position(self, queue: str, chat_id: ChatId) -> int | None:
        """See the port."""
        await self._storage._ready()
        return await self._db.run(_queue_position, self._ns, queue, chat_id, tx=False)

    async def length(self, queue: str) -> int:
        """See the port."""
        await self._storage._ready()
        return await self._db.run(_queue_length, self._ns, queue, tx=False)

    async def heads(self, queues: Sequence[str]) -> list[QueueHead]:
        """See :meth:`PostgresQueueStore.heads`."""
        await self._storage._ready()
        return await self._db.run(_queue_heads, self._ns, tuple(queues), tx=False)


class AsyncPostgresOutbox(_APort):
    """Async PostgreSQL :class:`~chatmgmt.ports.AsyncOutbox`, with :meth:`wait`."""

    async def append(self, events: Sequence[Event]) -> None:
        """See the port."""
        await self._storage._ready()
        await self._db.run(_outbox_append, self._ns, tuple(events), self._notify)

    async def claim(
        self, consumer: str, limit: int, now: float, lease_s: float
    ) -> list[OutboxEntry]:
        """See the port."""
        await self._storage._ready()
        return await self._db.run(_outbox_claim, self._ns, limit, now, lease_s)

    async def ack(self, entry_ids: Sequence[str]) -> None:
        """See the port."""
        seqs = [int(e) for e in entry_ids if str(e).isdigit()]
        if seqs:
            await self._storage._ready()
            await self._db.run(_outbox_ack, self._ns, seqs)

    async def pending(self) -> int:
        """See the port."""
        await self._storage._ready()
        return await self._db.run(_outbox_pending, self._ns, tx=False)

    async def events(self) -> list[Event]:
        """Every unacknowledged event, oldest first (a testing convenience)."""
        await self._storage._ready()
        return await self._db.run(_outbox_events, self._ns, tx=False)

    async def wait(self, timeout: float) -> bool:
        """See :meth:`PostgresOutbox.wait`."""
        return await self._db.wait(channel_tag(self._ns.decode("utf-8", "surrogatepass")), timeout)


class AsyncPostgresTimerStore(_APort):
    """Async PostgreSQL :class:`~chatmgmt.ports.AsyncTimerStore`."""

    async def cancel(self, key: str, due_at: float | None = None) -> None:
        """See the port."""
        await self._storage._ready()
        await self._db.run(_timer_cancel, self._ns, key, due_at)

    async def get(self, key: str) -> Timer | None:
        """The timer with ``key``, or None (a testing convenience)."""
        await self._storage._ready()
        return await self._db.run(_timer_get, self._ns, key, tx=False)

    async def claim_due(self, now: float, limit: int, lease_s: float) -> list[Timer]:
        """See the port."""
        await self._storage._ready()
        return await self._db.run(_timer_claim_due, self._ns, now, limit, lease_s)


class AsyncPostgresRateCounter(_APort):
    """Async PostgreSQL :class:`~chatmgmt.ports.AsyncRateCounter`."""

    async def hit(self, key: str, now: float, window_s: float) -> int:
        """See the port."""
        await self._storage._ready()
        return await self._db.run(_counter_hit, self._ns, key, now, window_s)


class AsyncPostgresStorage:
    """The async face: every storage port in one PostgreSQL database for one namespace, on
    psycopg's asyncio connections (the same operations as :class:`PostgresStorage`).

    ``database`` is a DSN, a :class:`psycopg_pool.AsyncConnectionPool` the host already has,
    or a shared :class:`AsyncPostgresDatabase`; the schema is created or migrated on first use.
    """

    reports_census = True
    """See :attr:`PostgresStorage.reports_census`."""

    def __init__(self, database: Any, namespace: str = "default", *, notify: bool = True) -> None:
        key = _namespace_key(namespace)
        self._owned = not isinstance(database, AsyncPostgresDatabase)
        self.database: AsyncPostgresDatabase = _database(database, AsyncPostgresDatabase)
        self._namespace = namespace
        self._ns = key
        self.notify = notify
        self._customers = AsyncPostgresCustomerStore(self)
        self._agents = AsyncPostgresAgentStore(self)
        self._chats = AsyncPostgresChatStore(self)
        self._queues = AsyncPostgresQueueStore(self)
        self._outbox = AsyncPostgresOutbox(self)
        self._timers = AsyncPostgresTimerStore(self)
        self._counters = AsyncPostgresRateCounter(self)

    def __repr__(self) -> str:
        return f"AsyncPostgresStorage({self.database!r}, namespace={self._namespace!r})"

    async def _ready(self) -> None:
        await self.database.once(
            "migrate:storage",
            migrate_op,
            _COMPONENT,
            _MIGRATIONS,
            SCHEMA_VERSION,
            repr(self.database),
        )

    @property
    def namespace(self) -> str:
        """The tenant this storage serves."""
        return self._namespace

    @property
    def customers(self) -> AsyncPostgresCustomerStore:
        """The CRM."""
        return self._customers

    @property
    def agents(self) -> AsyncPostgresAgentStore:
        """Agents and their load."""
        return self._agents

    @property
    def chats(self) -> AsyncPostgresChatStore:
        """Chats and messages."""
        return self._chats

    @property
    def queues(self) -> AsyncPostgresQueueStore:
        """Queues and pools."""
        return self._queues

    @property
    def outbox(self) -> AsyncPostgresOutbox:
        """The event log."""
        return self._outbox

    @property
    def timers(self) -> AsyncPostgresTimerStore:
        """Deadlines."""
        return self._timers

    @property
    def counters(self) -> AsyncPostgresRateCounter:
        """Sliding-window counters."""
        return self._counters

    async def apply(self, change: Change) -> Applied:
        """See :meth:`PostgresStorage.apply`."""
        change.check()
        await self._ready()
        index = _rank_index(change)
        if index is not None:
            name, sql = index
            await self.database.once(name, ddl_op, sql)
        return await self.database.run(_apply_op, self._ns, change, self.notify, tx=IMPLICIT)

    async def schema_version(self) -> int:
        """The storage schema version stored in the database."""
        await self._ready()
        return await self.database.run(_schema_version, tx=False)

    async def delete_namespace(self) -> None:
        """Delete every row of this namespace (tests, tenant removal)."""
        await self._ready()
        await self.database.run(_delete_namespace, self._ns)

    async def aclose(self) -> None:
        """Close the connection pool if this storage opened it (from a DSN)."""
        if self._owned:
            await self.database.close()
