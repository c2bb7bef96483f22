"""The sync storage ports: one protocol per store, and :class:`Storage`, their bundle and
the unit of work."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

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
from ._change import Applied, Change
from ._reads import Census, GroupCensus, OutboxEntry, QueueHead


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
    """Agents and their live load.

    * Slots (which chats an agent holds) change only inside :meth:`Storage.apply`, with the
      chat they belong to; the rules are :mod:`chatmgmt.assignment`'s load functions.
    * :meth:`put` is a compare-and-set on the agent's configuration ``version``: with
      ``expected_version`` it stores ``agent`` only if the stored version is that one (None: the
      agent must not exist), else raises :class:`~chatmgmt.errors.ConflictError`; so a status
      change and a limit change made at once never undo each other. Its load is kept.
    * ``tiebreak`` is a fresh random number the caller drew from its injected RNG; a new agent
      keeps it as ``AgentLoad.tiebreak`` for rankings that break ties at random.
    """

    def put(
        self,
        agent: Agent,
        now: float,
        events: Sequence[Event] = (),
        tiebreak: float = 0.0,
        expected_version: int | None = None,
    ) -> AgentLoad:
        """Register (``expected_version=None``) or update an agent (status, limit, groups,
        tier) by compare-and-set; returns the stored load. A new agent starts with
        ``idle_since = now``."""
        ...

    def census(self, group: str) -> Census:
        """Counts of the group's agents by availability; O(1) or a cheap aggregate."""
        ...

    def censuses(self, groups: Sequence[str]) -> list[GroupCensus]:
        """One :class:`GroupCensus` per name of ``groups``, in that order, read at once (the
        live monitor's bulk read; an unknown group is all zeros). Memory answers from its
        counters, O(1) per group; an adapter may aggregate over the groups' agents."""
        ...

    def get(self, agent_id: AgentId) -> AgentLoad | None:
        """An agent and its load, or None."""
        ...

    def list(self, group: str | None = None) -> list[AgentLoad]:
        """Every agent (of ``group`` when given), in account order."""
        ...


class ChatStore(Protocol):
    """Chats, their messages and the sticky-agent marks (read side; every write is a
    :class:`Change` given to :meth:`Storage.apply`)."""

    def get(self, chat_id: ChatId) -> Chat | None:
        """The chat, or None."""
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

    def purge(self, before: float, limit: int) -> int:
        """Delete up to ``limit`` chats whose retention started before ``before``
        (:func:`retention_start` < ``before``), oldest first; returns how many.

        Each chat goes whole, atomically (memory: under the lock; SQL: one transaction per
        call; Redis: one script per call): the record, its messages, its entries in the chat
        lists, and its customer's sticky mark when that mark was recorded before ``before``.
        An open chat, a left message nobody answered, a chat that changed since (its retention
        start is no longer before ``before``) is never touched. Queue entries, slots and
        timers are not touched either (an ended chat has none; one left over by a broken
        adapter is removed by ``reconcile()`` or dropped when it fires); nor is the outbox
        (unacknowledged events belong to the dispatcher). ``limit <= 0`` purges nothing.
        """
        ...


class QueueStore(Protocol):
    """Ordered waiting lines: the real-time queue and the Always On pool, per skill group
    (read side; entries move only inside :meth:`Storage.apply`).

    Entries are ordered by ``score`` (smaller first), then by insertion.
    """

    def peek(self, queue: str, limit: int) -> list[tuple[ChatId, float]]:
        """The first ``limit`` chats with their scores, in order."""
        ...

    def position(self, queue: str, chat_id: ChatId) -> int | None:
        """0-based position of ``chat_id``, or None."""
        ...

    def length(self, queue: str) -> int:
        """How many chats wait in ``queue``."""
        ...

    def heads(self, queues: Sequence[str]) -> list[QueueHead]:
        """One :class:`QueueHead` per name of ``queues``, in that order, read at once (the
        live monitor's bulk read; an unknown queue is empty). Memory answers in O(1) per
        queue; an adapter may cost O(log n) or, for ``oldest``, O(length) per queue, never a
        scan of every chat."""
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
    """Deadlines, keyed by chat and kind; set and cancelled inside :meth:`Storage.apply`.

    :meth:`claim_due` leases due timers (their ``due_at`` moves to ``now + lease_s``), so a
    worker that dies before firing leaves them to fire later, and two workers never fire one
    timer at once. It must cost O(k log n) for k due timers, never a scan of all timers.
    """

    def cancel(self, key: str, due_at: float | None = None) -> None:
        """Drop a fired timer's lease; idempotent. With ``due_at``, only if the timer is still
        due then (so a timer the firing rescheduled survives)."""
        ...

    def claim_due(self, now: float, limit: int, lease_s: float) -> list[Timer]:
        """Lease up to ``limit`` timers due at ``now``, earliest first."""
        ...


class RateCounter(Protocol):
    """Sliding-window counters (e.g. moderation hits per sender).

    Memory stays bounded: a key whose last hit left its window is forgotten (by later hits,
    a bounded number at a time), so one-off senders do not accumulate."""

    def hit(self, key: str, now: float, window_s: float) -> int:
        """Record one hit and return the hits for ``key`` within the last ``window_s``."""
        ...


class Storage(Protocol):
    """A bundle of every storage port for one namespace (tenant), and the unit of work."""

    def apply(self, change: Change) -> Applied:
        """Apply ``change`` atomically (see :class:`Change`): all of it or nothing.

        Raises :class:`~chatmgmt.errors.PreconditionFailed` (committing nothing) when a
        precondition does not hold."""
        ...

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
