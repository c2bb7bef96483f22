"""The async storage ports: the async face of each sync port, same contracts."""

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
        self,
        agent: Agent,
        now: float,
        events: Sequence[Event] = (),
        tiebreak: float = 0.0,
        expected_version: int | None = None,
    ) -> AgentLoad:
        """See :meth:`AgentStore.put`."""
        ...

    async def census(self, group: str) -> Census:
        """See :meth:`AgentStore.census`."""
        ...

    async def censuses(self, groups: Sequence[str]) -> list[GroupCensus]:
        """See :meth:`AgentStore.censuses`."""
        ...

    async def get(self, agent_id: AgentId) -> AgentLoad | None:
        """See :meth:`AgentStore.get`."""
        ...

    async def list(self, group: str | None = None) -> list[AgentLoad]:
        """See :meth:`AgentStore.list`."""
        ...


class AsyncChatStore(Protocol):
    """Async face of :class:`ChatStore`, same contract."""

    async def get(self, chat_id: ChatId) -> Chat | None:
        """See :meth:`ChatStore.get`."""
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

    async def purge(self, before: float, limit: int) -> int:
        """See :meth:`ChatStore.purge`."""
        ...


class AsyncQueueStore(Protocol):
    """Async face of :class:`QueueStore`, same contract."""

    async def peek(self, queue: str, limit: int) -> list[tuple[ChatId, float]]:
        """See :meth:`QueueStore.peek`."""
        ...

    async def position(self, queue: str, chat_id: ChatId) -> int | None:
        """See :meth:`QueueStore.position`."""
        ...

    async def length(self, queue: str) -> int:
        """See :meth:`QueueStore.length`."""
        ...

    async def heads(self, queues: Sequence[str]) -> list[QueueHead]:
        """See :meth:`QueueStore.heads`."""
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
    """Async bundle of every storage port for one namespace, and the unit of work."""

    async def apply(self, change: Change) -> Applied:
        """See :meth:`Storage.apply`."""
        ...

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
