"""The ports: every piece of I/O the library does goes through these protocols.

The host implements them or uses a shipped adapter (:mod:`chatmgmt.storage.memory`, the default;
``storage.sqlite``; ``storage.redis``). Each protocol's docstring is its contract: what is
atomic, what raises, what is idempotent. ``chatmgmt.testing`` exports the contract suites that
check an adapter keeps them.

Two rules shape every mutating method:

* **Events commit with the change.** A method that changes state takes ``events``; the adapter
  appends them to the outbox in the same unit of work (one SQLite transaction, one Redis Lua
  script or MULTI/EXEC). Either both happen or neither does.
* **Cross-port sequences are ordered so that a crash between two steps leaves a repairable
  index, never a lost chat.** The chat record (changed only by compare-and-set on its version)
  is the truth; queue entries and agent slots are indexes over it. A slot is claimed before the
  chat records its agent and released if the chat's compare-and-set loses; a queue entry is
  pushed before the chat records ``QUEUED`` and dropped lazily when its chat is no longer queued.
  :meth:`chatmgmt.ChatManager.reconcile` repairs what a crash between two steps left behind.

Every adapter is created for one ``namespace`` (a tenant); no operation sees another's data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import attrs

from .model import (
    Agent,
    AgentId,
    AgentLoad,
    Chat,
    ChatId,
    ChatState,
    Customer,
    Event,
    Message,
    Ranking,
    Sticky,
    Timer,
)

__all__ = [
    "AgentStore",
    "AsyncAgentStore",
    "AsyncChatStore",
    "AsyncCustomerStore",
    "AsyncOutbox",
    "AsyncQueueStore",
    "AsyncRateCounter",
    "AsyncStorage",
    "AsyncTimerStore",
    "AsyncTransport",
    "Census",
    "ChatStore",
    "Clock",
    "CustomerStore",
    "EventSink",
    "HttpRequest",
    "HttpResponse",
    "MessageSink",
    "Outbox",
    "OutboxEntry",
    "QueueStore",
    "RateCounter",
    "Storage",
    "TimerStore",
    "Transport",
]


# --------------------------------------------------------------------------- clock and sinks


@runtime_checkable
class Clock(Protocol):
    """Where the library reads the time: Unix seconds as a float. Injected, never global."""

    def now(self) -> float:
        """The current time in Unix seconds."""
        ...


class EventSink(Protocol):
    """Receives events as they happen (monitoring hits, alerts) in addition to the outbox.

    Called after the change committed; an exception in the sink is logged and swallowed.
    """

    def emit(self, event: Event) -> None:
        """Take one event."""
        ...


class MessageSink(Protocol):
    """Receives system messages (prompts, warnings) the host must show in a chat.

    Called after the message was stored; an exception in the sink is logged and swallowed.
    """

    def deliver(self, message: Message) -> None:
        """Show ``message`` to the chat's participants."""
        ...


# --------------------------------------------------------------------------- values


@attrs.frozen
class OutboxEntry:
    """An event claimed from the outbox; ``id`` is the adapter's cursor, used to ack it."""

    id: str
    event: Event
    deliveries: int = 0


@attrs.frozen
class Census:
    """How a group's agents stand right now (``""``: every agent).

    ``eligible``: ONLINE and below the limit; ``full``: ONLINE at the limit; ``busy``, ``away``,
    ``offline`` by status; ``capacity``: the sum of ONLINE agents' limits; ``load``: the chats
    ONLINE agents hold.
    """

    eligible: int = 0
    full: int = 0
    busy: int = 0
    away: int = 0
    offline: int = 0
    capacity: int = 0
    load: int = 0

    @property
    def online(self) -> int:
        """ONLINE agents, eligible or full."""
        return self.eligible + self.full

    @property
    def total(self) -> int:
        """Every agent of the group."""
        return self.eligible + self.full + self.busy + self.away + self.offline


@attrs.frozen
class HttpRequest:
    """One webhook request: the body is already serialized and signed."""

    url: str
    body: bytes
    headers: Mapping[str, str]
    timeout_s: float = 15.0


@attrs.frozen
class HttpResponse:
    """What a transport got back; ``body`` holds at most the first 20 kB."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    elapsed_s: float


# --------------------------------------------------------------------------- sync storage


class CustomerStore(Protocol):
    """The CRM: customer records keyed by ``partner_id``.

    * :meth:`create` and :meth:`replace` are atomic with their ``events``.
    * :meth:`create` raises :class:`~chatmgmt.errors.ConflictError` when the partner_id exists,
      so two concurrent first messages give one record: the loser re-reads and merges.
    * :meth:`replace` is a compare-and-set: it stores ``customer`` (whose ``version`` is
      ``expected_version + 1``) only if the stored version is ``expected_version``, else raises
      :class:`~chatmgmt.errors.ConflictError`.
    """

    def get(self, partner_id: str) -> Customer | None:
        """The record, or None."""
        ...

    def create(self, customer: Customer, events: Sequence[Event] = ()) -> None:
        """Insert a new record; ConflictError if it exists."""
        ...

    def replace(
        self, customer: Customer, expected_version: int, events: Sequence[Event] = ()
    ) -> None:
        """Compare-and-set on ``version``; ConflictError when it lost."""
        ...


class AgentStore(Protocol):
    """Agents and their live load, with the atomic slot operations of assignment.

    * :meth:`claim_ranked` is the **ranked claim**: in one atomic step it finds the first agent
      of ``group`` by ``ranking`` that is ONLINE, below its reception limit and not in
      ``excluded``, and adds ``chat_id`` to its chats. It must cost O(log n) (plus the excluded
      agents skipped), not a scan.
    * :meth:`claim` is the **checked claim** for custom strategies: it adds ``chat_id`` to
      ``agent_id``'s chats only if the agent is ONLINE and below its limit.
    * Claims are idempotent per chat: claiming a chat the agent already holds returns True and
      changes nothing. :meth:`release` is idempotent: releasing a chat the agent does not hold
      returns False and changes nothing. No interleaving of claims can put an agent over its
      limit.
    * ``tiebreak`` is a fresh random number the caller drew from its injected RNG; the store
      keeps it as the agent's ``AgentLoad.tiebreak`` for rankings that break ties at random.
    """

    def put(
        self, agent: Agent, now: float, events: Sequence[Event] = (), tiebreak: float = 0.0
    ) -> AgentLoad:
        """Register or update an agent (status, limit, groups, tier); its load is kept.

        A new agent starts with ``idle_since = now`` and the given ``tiebreak``."""
        ...

    def census(self, group: str) -> Census:
        """Counts of the group's agents by availability; O(1) or a cheap aggregate."""
        ...

    def get(self, agent_id: AgentId) -> AgentLoad | None:
        """An agent and its load, or None."""
        ...

    def list(self, group: str | None = None) -> list[AgentLoad]:
        """Every agent (of ``group`` when given), in account order."""
        ...

    def claim_ranked(
        self,
        group: str,
        ranking: Ranking,
        chat_id: ChatId,
        excluded: frozenset[AgentId],
        now: float,
        tiebreak: float,
    ) -> AgentId | None:
        """Atomically pick and claim the best eligible agent; None when nobody is eligible."""
        ...

    def claim(self, agent_id: AgentId, chat_id: ChatId, now: float, tiebreak: float) -> bool:
        """Atomically claim a slot of ``agent_id`` if it is eligible; False when it is not."""
        ...

    def release(self, agent_id: AgentId, chat_id: ChatId, now: float, tiebreak: float) -> bool:
        """Free the slot ``chat_id`` holds (counted or inactive); idempotent."""
        ...

    def set_inactive(self, agent_id: AgentId, chat_id: ChatId, inactive: bool) -> None:
        """Move a held chat between counted and inactive (uncounted) chats; idempotent."""
        ...


class ChatStore(Protocol):
    """Chats, their messages and the sticky-agent marks.

    * :meth:`create`, :meth:`replace` and :meth:`append_message` are atomic with their
      ``events`` (and the sticky mark, when given).
    * :meth:`replace` and :meth:`append_message` are compare-and-set on the chat's ``version``:
      the new chat has ``version == expected_version + 1``; a lost race raises
      :class:`~chatmgmt.errors.ConflictError`; a missing chat raises
      :class:`~chatmgmt.errors.NotFoundError`.
    """

    def get(self, chat_id: ChatId) -> Chat | None:
        """The chat, or None."""
        ...

    def create(self, chat: Chat, events: Sequence[Event] = ()) -> None:
        """Insert a new chat; ConflictError if the id exists."""
        ...

    def replace(
        self,
        chat: Chat,
        expected_version: int,
        events: Sequence[Event] = (),
        sticky: Sticky | None = None,
    ) -> None:
        """Compare-and-set the chat; also records ``sticky`` for its customer when given."""
        ...

    def append_message(
        self,
        message: Message,
        chat: Chat,
        expected_version: int,
        events: Sequence[Event] = (),
        sticky: Sticky | None = None,
    ) -> None:
        """Store a message and the chat's new state (compare-and-set) together, with the
        sticky mark when given."""
        ...

    def messages(self, chat_id: ChatId) -> list[Message]:
        """A chat's messages in the order they were stored."""
        ...

    def list(self, state: ChatState | None = None, agent_id: AgentId | None = None) -> list[Chat]:
        """Chats, filtered by state and/or agent (a maintenance query, not a hot path)."""
        ...

    def sticky(self, partner_id: str) -> Sticky | None:
        """The last sticky mark recorded for a customer, or None."""
        ...


class QueueStore(Protocol):
    """Ordered waiting lines: the real-time queue and the Always On pool, per skill group.

    Entries are ordered by ``score`` (smaller first), then by insertion. :meth:`push` is
    idempotent per chat (a second push keeps the first position); :meth:`remove` is idempotent.
    """

    def push(self, queue: str, chat_id: ChatId, score: float) -> None:
        """Add ``chat_id`` at ``score`` unless it is already in ``queue``."""
        ...

    def remove(self, queue: str, chat_id: ChatId) -> bool:
        """Drop ``chat_id``; False when it was not there."""
        ...

    def peek(self, queue: str, limit: int) -> list[tuple[ChatId, float]]:
        """The first ``limit`` chats with their scores, in order."""
        ...

    def position(self, queue: str, chat_id: ChatId) -> int | None:
        """0-based position of ``chat_id``, or None."""
        ...

    def length(self, queue: str) -> int:
        """How many chats wait in ``queue``."""
        ...


class Outbox(Protocol):
    """The durable event log the webhook dispatcher consumes, at least once.

    * Events are appended by the other ports' mutating methods (same unit of work) or by
      :meth:`append` for events no state change caused.
    * :meth:`claim` leases up to ``limit`` unacknowledged entries, oldest first, that no other
      consumer holds a live lease on; a lease that expires (the consumer died) makes the entry
      claimable again. :meth:`ack` is idempotent.
    """

    def append(self, events: Sequence[Event]) -> None:
        """Append events on their own."""
        ...

    def claim(self, consumer: str, limit: int, now: float, lease_s: float) -> list[OutboxEntry]:
        """Lease the oldest unacknowledged entries."""
        ...

    def ack(self, entry_ids: Sequence[str]) -> None:
        """Acknowledge entries: they are never claimed again."""
        ...

    def pending(self) -> int:
        """How many entries are not acknowledged yet."""
        ...


class TimerStore(Protocol):
    """Deadlines, keyed: scheduling a key again replaces its deadline.

    :meth:`claim_due` leases due timers (their ``due_at`` moves to ``now + lease_s``), so a
    worker that dies before firing leaves them to fire later, and two workers never fire one
    timer at once. It must cost O(k log n) for k due timers, never a scan of all timers.
    """

    def schedule(self, timer: Timer) -> None:
        """Add or replace the timer with ``timer.key``."""
        ...

    def cancel(self, key: str, due_at: float | None = None) -> None:
        """Remove a timer; idempotent. With ``due_at``, only if the timer is still due then
        (so a timer rescheduled in the meantime survives)."""
        ...

    def claim_due(self, now: float, limit: int, lease_s: float) -> list[Timer]:
        """Lease up to ``limit`` timers due at ``now``, earliest first."""
        ...


class RateCounter(Protocol):
    """Sliding-window counters (e.g. moderation hits per sender)."""

    def hit(self, key: str, now: float, window_s: float) -> int:
        """Record one hit and return the hits for ``key`` within the last ``window_s``."""
        ...


class Storage(Protocol):
    """A bundle of every storage port for one namespace (tenant)."""

    @property
    def namespace(self) -> str:
        """The tenant this storage serves."""
        ...

    @property
    def customers(self) -> CustomerStore:
        """The CRM."""
        ...

    @property
    def agents(self) -> AgentStore:
        """Agents and their load."""
        ...

    @property
    def chats(self) -> ChatStore:
        """Chats and messages."""
        ...

    @property
    def queues(self) -> QueueStore:
        """Queues and pools."""
        ...

    @property
    def outbox(self) -> Outbox:
        """The event log."""
        ...

    @property
    def timers(self) -> TimerStore:
        """Deadlines."""
        ...

    @property
    def counters(self) -> RateCounter:
        """Sliding-window counters."""
        ...


class Transport(Protocol):
    """Sends one HTTP POST; never follows redirects; raises DeliveryError on network failure."""

    def send(self, request: HttpRequest) -> HttpResponse:
        """POST ``request`` and return the response."""
        ...


# --------------------------------------------------------------------------- async mirror


class AsyncCustomerStore(Protocol):
    """Async face of :class:`CustomerStore`, same contract."""

    async def get(self, partner_id: str) -> Customer | None:
        """See :meth:`CustomerStore.get`."""
        ...

    async def create(self, customer: Customer, events: Sequence[Event] = ()) -> None:
        """See :meth:`CustomerStore.create`."""
        ...

    async def replace(
        self, customer: Customer, expected_version: int, events: Sequence[Event] = ()
    ) -> None:
        """See :meth:`CustomerStore.replace`."""
        ...


class AsyncAgentStore(Protocol):
    """Async face of :class:`AgentStore`, same contract."""

    async def put(
        self, agent: Agent, now: float, events: Sequence[Event] = (), tiebreak: float = 0.0
    ) -> AgentLoad:
        """See :meth:`AgentStore.put`."""
        ...

    async def census(self, group: str) -> Census:
        """See :meth:`AgentStore.census`."""
        ...

    async def get(self, agent_id: AgentId) -> AgentLoad | None:
        """See :meth:`AgentStore.get`."""
        ...

    async def list(self, group: str | None = None) -> list[AgentLoad]:
        """See :meth:`AgentStore.list`."""
        ...

    async def claim_ranked(
        self,
        group: str,
        ranking: Ranking,
        chat_id: ChatId,
        excluded: frozenset[AgentId],
        now: float,
        tiebreak: float,
    ) -> AgentId | None:
        """See :meth:`AgentStore.claim_ranked`."""
        ...

    async def claim(self, agent_id: AgentId, chat_id: ChatId, now: float, tiebreak: float) -> bool:
        """See :meth:`AgentStore.claim`."""
        ...

    async def release(
        self, agent_id: AgentId, chat_id: ChatId, now: float, tiebreak: float
    ) -> bool:
        """See :meth:`AgentStore.release`."""
        ...

    async def set_inactive(self, agent_id: AgentId, chat_id: ChatId, inactive: bool) -> None:
        """See :meth:`AgentStore.set_inactive`."""
        ...


class AsyncChatStore(Protocol):
    """Async face of :class:`ChatStore`, same contract."""

    async def get(self, chat_id: ChatId) -> Chat | None:
        """See :meth:`ChatStore.get`."""
        ...

    async def create(self, chat: Chat, events: Sequence[Event] = ()) -> None:
        """See :meth:`ChatStore.create`."""
        ...

    async def replace(
        self,
        chat: Chat,
        expected_version: int,
        events: Sequence[Event] = (),
        sticky: Sticky | None = None,
    ) -> None:
        """See :meth:`ChatStore.replace`."""
        ...

    async def append_message(
        self,
        message: Message,
        chat: Chat,
        expected_version: int,
        events: Sequence[Event] = (),
        sticky: Sticky | None = None,
    ) -> None:
        """See :meth:`ChatStore.append_message`."""
        ...

    async def messages(self, chat_id: ChatId) -> list[Message]:
        """See :meth:`ChatStore.messages`."""
        ...

    async def list(
        self, state: ChatState | None = None, agent_id: AgentId | None = None
    ) -> list[Chat]:
        """See :meth:`ChatStore.list`."""
        ...

    async def sticky(self, partner_id: str) -> Sticky | None:
        """See :meth:`ChatStore.sticky`."""
        ...


class AsyncQueueStore(Protocol):
    """Async face of :class:`QueueStore`, same contract."""

    async def push(self, queue: str, chat_id: ChatId, score: float) -> None:
        """See :meth:`QueueStore.push`."""
        ...

    async def remove(self, queue: str, chat_id: ChatId) -> bool:
        """See :meth:`QueueStore.remove`."""
        ...

    async def peek(self, queue: str, limit: int) -> list[tuple[ChatId, float]]:
        """See :meth:`QueueStore.peek`."""
        ...

    async def position(self, queue: str, chat_id: ChatId) -> int | None:
        """See :meth:`QueueStore.position`."""
        ...

    async def length(self, queue: str) -> int:
        """See :meth:`QueueStore.length`."""
        ...


class AsyncOutbox(Protocol):
    """Async face of :class:`Outbox`, same contract."""

    async def append(self, events: Sequence[Event]) -> None:
        """See :meth:`Outbox.append`."""
        ...

    async def claim(
        self, consumer: str, limit: int, now: float, lease_s: float
    ) -> list[OutboxEntry]:
        """See :meth:`Outbox.claim`."""
        ...

    async def ack(self, entry_ids: Sequence[str]) -> None:
        """See :meth:`Outbox.ack`."""
        ...

    async def pending(self) -> int:
        """See :meth:`Outbox.pending`."""
        ...


class AsyncTimerStore(Protocol):
    """Async face of :class:`TimerStore`, same contract."""

    async def schedule(self, timer: Timer) -> None:
        """See :meth:`TimerStore.schedule`."""
        ...

    async def cancel(self, key: str, due_at: float | None = None) -> None:
        """See :meth:`TimerStore.cancel`."""
        ...

    async def claim_due(self, now: float, limit: int, lease_s: float) -> list[Timer]:
        """See :meth:`TimerStore.claim_due`."""
        ...


class AsyncRateCounter(Protocol):
    """Async face of :class:`RateCounter`, same contract."""

    async def hit(self, key: str, now: float, window_s: float) -> int:
        """See :meth:`RateCounter.hit`."""
        ...


class AsyncStorage(Protocol):
    """Async bundle of every storage port for one namespace."""

    @property
    def namespace(self) -> str:
        """The tenant this storage serves."""
        ...

    @property
    def customers(self) -> AsyncCustomerStore:
        """The CRM."""
        ...

    @property
    def agents(self) -> AsyncAgentStore:
        """Agents and their load."""
        ...

    @property
    def chats(self) -> AsyncChatStore:
        """Chats and messages."""
        ...

    @property
    def queues(self) -> AsyncQueueStore:
        """Queues and pools."""
        ...

    @property
    def outbox(self) -> AsyncOutbox:
        """The event log."""
        ...

    @property
    def timers(self) -> AsyncTimerStore:
        """Deadlines."""
        ...

    @property
    def counters(self) -> AsyncRateCounter:
        """Sliding-window counters."""
        ...


class AsyncTransport(Protocol):
    """Async face of :class:`Transport`, same contract."""

    async def send(self, request: HttpRequest) -> HttpResponse:
        """POST ``request`` and return the response."""
        ...
