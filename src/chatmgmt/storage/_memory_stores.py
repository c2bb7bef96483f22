"""The read ports of :class:`~chatmgmt.storage.memory.MemoryStorage` (and the writes outside
the unit of work: customers, agents, the outbox, timers, counters), one class per port."""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from ..assignment._load import in_group, updated_agent
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
    evolve,
)
from ..ports import Census, GroupCensus, OutboxEntry, QueueHead
from ._memory_entries import _event, _timer
from ._memory_space import _CENSUS_BASE, _NO_CENSUS, _new_census

if TYPE_CHECKING:
    from .memory import MemoryDatabase


class _Base:
    def __init__(self, db: MemoryDatabase, namespace: str) -> None:
        self._db = db
        self._lock = db.lock
        self._s = db.space(namespace)


class MemoryCustomerStore(_Base):
    """In-memory :class:`~chatmgmt.ports.CustomerStore`."""

    def get(self, partner_id: str) -> Customer | None:
        """See the port."""
        with self._lock:
            return self._s.customers.get(partner_id)

    def create(self, customer: Customer, events: Sequence[Event] = ()) -> None:
        """See the port."""
        with self._lock:
            existing = self._s.customers.get(customer.partner_id)
            if existing is not None:
                raise ConflictError("customer", customer.partner_id, None, existing.version)
            self._s.customers[customer.partner_id] = customer
            self._s.append_events(events)

    def replace(
        self, customer: Customer, expected_version: int, events: Sequence[Event] = ()
    ) -> None:
        """See the port."""
        with self._lock:
            existing = self._s.customers.get(customer.partner_id)
            if existing is None:
                raise NotFoundError("customer", customer.partner_id)
            if existing.version != expected_version:
                raise ConflictError(
                    "customer", customer.partner_id, expected_version, existing.version
                )
            self._s.customers[customer.partner_id] = customer
            self._s.append_events(events)


class MemoryAgentStore(_Base):
    """In-memory :class:`~chatmgmt.ports.AgentStore` with sorted ranking indexes."""

    def __init__(self, db: MemoryDatabase, namespace: str) -> None:
        super().__init__(db, namespace)
        # per group: the counters last read by censuses() and the value made of them
        self._censuses: dict[str, tuple[tuple[int, ...], GroupCensus]] = {}

    def put(
        self,
        agent: Agent,
        now: float,
        events: Sequence[Event] = (),
        tiebreak: float = 0.0,
        expected_version: int | None = None,
    ) -> AgentLoad:
        """See the port."""
        with self._lock:
            old = self._s.loads.get(agent.id)
            actual = None if old is None else old.version
            if expected_version != actual:
                raise ConflictError("agent", agent.id, expected_version, actual)
            if old is None or old.agent.account_order != agent.account_order:
                self._s.order = None
            load = updated_agent(old, agent, now, tiebreak)
            self._s.append_events(events)
            return self._s.store_load(load)

    def census(self, group: str) -> Census:
        """See the port."""
        with self._lock:
            c = self._s.census.get(group)
            if c is None:
                return Census()
            return _new_census(*list(c.values())[:_CENSUS_BASE])  # held and free left out

    def censuses(self, groups: Sequence[str]) -> list[GroupCensus]:
        """See the port (O(1) per group: the counters kept on every change of a load; a
        group whose counters did not move since the last read gets the same value back)."""
        out = []
        with self._lock:
            census = self._s.census
            memo = self._censuses
            for group in groups:
                c = census.get(group)
                if c is None:
                    out.append(_NO_CENSUS)
                    continue
                values = tuple(c.values())
                seen = memo.get(group)
                if seen is None or seen[0] != values:
                    seen = memo[group] = (values, GroupCensus(*values))
                out.append(seen[1])
        return out

    def get(self, agent_id: AgentId) -> AgentLoad | None:
        """See the port."""
        with self._lock:
            return self._s.loads.get(agent_id)

    def list(self, group: str | None = None) -> list[AgentLoad]:
        """See the port."""
        with self._lock:
            s = self._s
            order = s.order
            if order is None:
                order = s.order = sorted(
                    s.loads, key=lambda aid: (s.loads[aid].agent.account_order, aid)
                )
            loads = s.loads
            if group is None:
                return [loads[aid] for aid in order]
            return [loads[aid] for aid in order if in_group(loads[aid].agent, group)]


class MemoryChatStore(_Base):
    """In-memory :class:`~chatmgmt.ports.ChatStore`."""

    def get(self, chat_id: ChatId) -> Chat | None:
        """See the port."""
        with self._lock:
            return self._s.chats.get(chat_id)

    def messages(self, chat_id: ChatId) -> list[Message]:
        """See the port."""
        with self._lock:
            return list(self._s.messages.get(chat_id, ()))

    def list(self, state: ChatState | None = None, agent_id: AgentId | None = None) -> list[Chat]:
        """See the port."""
        with self._lock:
            return [
                c
                for c in self._s.chats.values()
                if (state is None or c.state is state)
                and (agent_id is None or c.agent_id == agent_id)
            ]

    def sticky(self, partner_id: str) -> Sticky | None:
        """See the port."""
        with self._lock:
            return self._s.sticky.get(partner_id)

    def purge(self, before: float, limit: int) -> int:
        """See the port: under the lock, O(log n) per chat purged."""
        with self._lock:
            return self._s.purge(before, limit)


class MemoryQueueStore(_Base):
    """In-memory :class:`~chatmgmt.ports.QueueStore` (sorted lists, O(log n) per operation)."""

    def __init__(self, db: MemoryDatabase, namespace: str) -> None:
        super().__init__(db, namespace)
        # per queue: the head last read by heads() and the value made of it
        self._heads: dict[str, tuple[tuple[Any, ...], QueueHead]] = {}
        self._empty_heads: dict[str, QueueHead] = {}  # QueueHead(queue) of an empty queue

    def peek(self, queue: str, limit: int) -> list[tuple[ChatId, float]]:
        """See the port."""
        with self._lock:
            q = self._s.queues.get(queue)
            if q is None:
                return []
            return [(cast(ChatId, e[2]), float(e[0])) for e in q.sorted.islice(0, limit)]

    def position(self, queue: str, chat_id: ChatId) -> int | None:
        """See the port."""
        with self._lock:
            q = self._s.queues.get(queue)
            if q is None or chat_id not in q.entries:
                return None
            return int(q.sorted.index(q.entries[chat_id]))

    def length(self, queue: str) -> int:
        """See the port."""
        with self._lock:
            q = self._s.queues.get(queue)
            return 0 if q is None else len(q.entries)

    def heads(self, queues: Sequence[str]) -> list[QueueHead]:
        """See the port (O(1) per queue: the entries keep their insertion order, and the
        oldest entry's chat is one lookup; a queue whose head did not change since the last
        read, an empty one too, gets the same value back)."""
        out = []
        memo = self._heads
        empties = self._empty_heads
        with self._lock:
            all_queues = self._s.queues
            chats = self._s.chats
            for queue in queues:
                q = all_queues.get(queue)
                if q is None or not q.entries:
                    empty = empties.get(queue)
                    if empty is None:
                        empty = empties[queue] = QueueHead(queue)
                    out.append(empty)
                    continue
                oldest = next(iter(q.entries))
                chat = chats.get(oldest)
                since = None
                if chat is not None:
                    since = chat.queued_at if chat.queued_at is not None else chat.created_at
                values = (len(q.entries), cast(ChatId, q.sorted[0][2]), oldest, since)
                seen = memo.get(queue)
                if seen is None or seen[0] != values:
                    seen = memo[queue] = (values, QueueHead(queue, *values))
                out.append(seen[1])
        return out


class MemoryOutbox(_Base):
    """In-memory :class:`~chatmgmt.ports.Outbox` with leases."""

    def append(self, events: Sequence[Event]) -> None:
        """See the port."""
        with self._lock:
            self._s.append_events(events)

    def claim(self, consumer: str, limit: int, now: float, lease_s: float) -> list[OutboxEntry]:
        """See the port."""
        out: list[OutboxEntry] = []
        with self._lock:
            leases = self._s.leases
            for entry_id, fields in self._s.outbox.items():
                if len(out) >= limit:
                    break
                until, deliveries = leases.get(entry_id, (0.0, 0))
                if until > now:
                    continue
                leases[entry_id] = (now + lease_s, deliveries + 1)
                out.append(OutboxEntry(str(entry_id), _event(fields), deliveries + 1))
        return out

    def ack(self, entry_ids: Sequence[str]) -> None:
        """See the port."""
        with self._lock:
            for entry_id in entry_ids:
                key = int(entry_id)
                self._s.outbox.pop(key, None)
                self._s.leases.pop(key, None)

    def pending(self) -> int:
        """See the port."""
        with self._lock:
            return len(self._s.outbox)

    def events(self) -> list[Event]:
        """Every unacknowledged event, oldest first (a testing convenience)."""
        with self._lock:
            return [_event(fields) for fields in self._s.outbox.values()]


class MemoryTimerStore(_Base):
    """In-memory :class:`~chatmgmt.ports.TimerStore`: a heap with lazy deletion.

    ``timers`` maps a key to its entry (a tuple, also pushed on the heap); a heap entry that
    is not its key's current one is stale and skipped.
    """

    def cancel(self, key: str, due_at: float | None = None) -> None:
        """See the port."""
        with self._lock:
            self._s.timer_cancel(key, due_at)

    def get(self, key: str) -> Timer | None:
        """The timer with ``key``, or None (a testing convenience)."""
        with self._lock:
            entry = self._s.timers.get(key)
            return None if entry is None else _timer(entry)

    def claim_due(self, now: float, limit: int, lease_s: float) -> list[Timer]:
        """See the port."""
        out: list[Timer] = []
        with self._lock:
            s = self._s
            timers = s.timers
            while s.timer_heap and len(out) < limit and s.timer_heap[0][0] <= now:
                entry = heapq.heappop(s.timer_heap)
                if timers.get(entry[2]) is not entry:
                    continue
                timer = _timer(entry)
                out.append(timer)
                s.timer_put(evolve(timer, due_at=now + lease_s))
        return out

    def __len__(self) -> int:
        with self._lock:
            return len(self._s.timers)


_EVICT_PER_HIT = 4


class MemoryRateCounter(_Base):
    """In-memory :class:`~chatmgmt.ports.RateCounter`: a deque of hit times per key.

    Keys are kept in the order of their last hit; every hit also looks at the
    (up to 4) least recently hit keys and drops those whose last hit left its window, so
    keys nobody hits any more are forgotten and memory follows the live senders only."""

    def hit(self, key: str, now: float, window_s: float) -> int:
        """See the port."""
        with self._lock:
            counters = self._s.counters
            entry = counters.pop(key, None)
            hits = deque() if entry is None else entry[0]
            hits.append(now)
            while hits and hits[0] <= now - window_s:
                hits.popleft()
            counters[key] = (hits, now + window_s)  # re-inserted: now the most recent key
            for _ in range(_EVICT_PER_HIT):
                oldest = next(iter(counters))
                if oldest == key or counters[oldest][1] > now:
                    break
                del counters[oldest]
            return len(hits)

    def __len__(self) -> int:
        """How many keys are kept (a testing convenience)."""
        with self._lock:
            return len(self._s.counters)
