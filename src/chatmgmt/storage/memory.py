"""The in-memory storage adapter: the default, for one process.

Thread-safe: one lock per :class:`MemoryDatabase` serializes every operation, so each method is
atomic and a change commits with its events. Several tenants may share one database; each
:class:`MemoryStorage` sees only its ``namespace``. ``MemoryStorage.aio()`` gives the async face
for :class:`~chatmgmt.AsyncChatManager` (the operations never block, so it simply awaits them).

Picks cost O(log n): every ranking in use keeps a sorted index of the agents that are eligible
right now (ONLINE and below their limit), updated on every change of an agent's load.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from operator import attrgetter
from typing import Any, TypeVar, cast

import attrs
from sortedcontainers import SortedList

from ..assignment._load import (
    census_category,
    claimed,
    eligible,
    fits_claim,
    forced,
    has_channel_rules,
    in_group,
    moved_inactive,
    rank_entry_function,
    released,
    takes_claim,
    touched,
    updated_agent,
)
from ..errors import ConflictError, NotFoundError, PreconditionFailed
from ..model import (
    Agent,
    AgentId,
    AgentLoad,
    AgentStatus,
    Chat,
    ChatId,
    ChatState,
    Customer,
    Event,
    Message,
    Ranking,
    Sticky,
    Timer,
    evolve,
    maker,
)
from ..ports import (
    Applied,
    AsyncStorage,
    Census,
    Change,
    Claim,
    GroupCensus,
    OutboxEntry,
    QueueHead,
    RankedClaim,
    retention_start,
)

__all__ = ["MemoryDatabase", "MemoryStorage"]

_T = TypeVar("_T")
_ONLINE = AgentStatus.ONLINE  # read on every slot change: a global (cheaper than the member)
_LENGTH = attrgetter("length")  # of a QueueHead


class MemoryDatabase:
    """The shared state behind one or more :class:`MemoryStorage` namespaces."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._spaces: dict[str, _Space] = {}

    def space(self, namespace: str) -> _Space:
        """The state of one namespace (created on first use)."""
        with self.lock:
            space = self._spaces.get(namespace)
            if space is None:
                space = self._spaces[namespace] = _Space()
            return space


class _Space:
    def __init__(self) -> None:
        self.customers: dict[str, Customer] = {}
        self.loads: dict[AgentId, AgentLoad] = {}
        self.indexes: dict[tuple[str, Ranking], _Index] = {}
        self.index_memo: dict[tuple[str, int], tuple[Ranking, _Index]] = {}
        self.chats: dict[ChatId, Chat] = {}
        self.messages: dict[ChatId, list[Message]] = {}
        self.sticky: dict[str, Sticky] = {}
        self.queues: dict[str, _Queue] = {}
        # chats ever pushed into a queue, and per watched queues (Change.watch) whose heads
        # were all empty: the pushes then and those heads (still right while nothing was
        # pushed since: no other write makes a queue hold a chat)
        self.pushes = 0
        self.idle_heads: dict[tuple[str, ...], tuple[int, tuple[QueueHead, ...]]] = {}
        # unacknowledged events in append order, each as one flat tuple (_EventEntry: no
        # Event, no data dict; one whose data holds plain values only is then not tracked by
        # the collector), and the leases of those claimed (kept apart: a waiting event costs
        # one entry, no wrapper)
        self.outbox: dict[int, _EventEntry] = {}
        self.leases: dict[int, tuple[float, int]] = {}
        self.outbox_seq = 0
        # per key: its timer as one tuple of plain values (_TimerEntry), which is also its heap
        # entry: an entry is live while it is its key's current one. A tuple of atoms instead
        # of a Timer object: the collector stops tracking it, so stored deadlines cost nothing
        # at each full collection.
        self.timers: dict[str, _TimerEntry] = {}
        self.timer_heap: list[_TimerEntry] = []
        self.timer_seq = 0
        # per key: its hits and when the last one leaves the window; in order of the last hit,
        # so the keys a hit checks for eviction are the least recently hit
        self.counters: dict[str, tuple[deque[float], float]] = {}
        # chats whose retention runs (ports.retention_start): (start, chat id), oldest first
        self.retained: SortedList = SortedList()
        self.retained_at: dict[ChatId, float] = {}
        self.census: dict[str, dict[str, int]] = {}
        # the agent ids in account order (then id) for AgentStore.list; None: to be sorted
        # again (an agent was added or its account order changed)
        self.order: list[AgentId] | None = None
        # agents with capacity per channel: while there is none, a ranked pick is the index's
        # first entry unless the claim has a fairness cap
        self.channel_agents: set[AgentId] = set()

    def count(self, load: AgentLoad, sign: int) -> None:
        agent = load.agent
        category = census_category(load)
        online = agent.status is _ONLINE
        active = len(load.chats)
        held = sign * (active + len(load.inactive))
        limit = agent.reception_limit
        free = sign * load.free
        for group in agent.skill_groups | {""}:
            counts = self.census.get(group)
            if counts is None:
                counts = self.census[group] = dict.fromkeys(_CENSUS_FIELDS, 0)
            counts[category] += sign
            counts["held"] += held
            if online:
                counts["capacity"] += sign * limit
                counts["load"] += sign * active
                counts["free"] += free

    def recount(self, old: AgentLoad, load: AgentLoad) -> None:
        """The census moved from ``old`` to ``load`` of the same agent (same configuration):
        only the chat counts changed, so only their differences are added."""
        agent = load.agent
        limit = agent.reception_limit
        was, now_active = len(old.chats), len(load.chats)
        held = now_active + len(load.inactive) - was - len(old.inactive)
        old_category = census_category(old)
        category = census_category(load)
        online = agent.status is _ONLINE
        load_delta = now_active - was if online else 0
        if not online:
            free = 0
        elif agent.channel_weights:  # free counts units of the limit
            free = load.free - old.free
        else:
            free = (limit - now_active if limit > now_active else 0) - (
                limit - was if limit > was else 0
            )
        if not (held or load_delta or free or old_category != category):
            return
        census = self.census
        groups = agent.skill_groups
        for group in groups if "" in groups else (*groups, ""):
            counts = census[group]
            if old_category != category:
                counts[old_category] -= 1
                counts[category] += 1
            counts["held"] += held
            counts["load"] += load_delta
            counts["free"] += free

    def store_load(self, load: AgentLoad) -> AgentLoad:
        old = self.loads.get(load.agent.id)
        if old is not None and old.agent is load.agent:
            self.recount(old, load)
        else:
            if old is not None:
                self.count(old, -1)
            self.count(load, +1)
            if has_channel_rules(load.agent):
                self.channel_agents.add(load.agent.id)
            else:
                self.channel_agents.discard(load.agent.id)
        self.loads[load.agent.id] = load
        for index in self.indexes.values():
            index.update(load)
        return load

    def index(self, group: str, ranking: Ranking) -> _Index:
        # by the ranking's identity first: the core passes the same Ranking value for every
        # pick, and hashing one (attrs' generated __hash__, then each RankKey's) costs more
        # than the rest of the lookup
        seen = self.index_memo.get((group, id(ranking)))
        if seen is not None and seen[0] is ranking:
            return seen[1]
        index = self.indexes.get((group, ranking))
        if index is None:
            index = self.indexes[(group, ranking)] = _Index(group, ranking, self.loads.values())
        if len(self.index_memo) >= 256:
            self.index_memo.clear()
        self.index_memo[(group, id(ranking))] = (ranking, index)  # holds it: the id stays its
        return index

    def queue_push(self, queue: str, chat_id: ChatId, score: float) -> None:
        q = self.queues.get(queue)
        if q is None:
            q = self.queues[queue] = _Queue()
        if chat_id in q.entries:
            return
        self.pushes += 1
        q.seq += 1
        entry = (score, q.seq, chat_id)
        q.entries[chat_id] = entry
        q.sorted.add(entry)

    def queue_remove(self, queue: str, chat_id: ChatId) -> None:
        q = self.queues.get(queue)
        if q is not None and chat_id in q.entries:
            q.sorted.remove(q.entries.pop(chat_id))

    def timer_put(self, timer: Timer) -> None:
        self.timer_seq = seq = self.timer_seq + 1
        key = timer.key
        entry = (
            timer.due_at,
            seq,
            key,
            timer.chat_id,
            timer.kind,
            timer.version,
            *_flat(timer.payload.items()),
        )
        self.timers[key] = entry
        heapq.heappush(self.timer_heap, entry)

    def timer_cancel(self, key: str, due_at: float | None = None) -> None:
        timers = self.timers
        current = timers.get(key)
        if current is None or (due_at is not None and current[0] != due_at):
            return
        del timers[key]
        heap = self.timer_heap
        if len(heap) > 64 and len(heap) > 4 * len(timers):
            self.timer_heap = [e for e in heap if timers.get(e[2]) is e]
            heapq.heapify(self.timer_heap)

    def retain(self, chat: Chat) -> None:
        """Keep the retention index in step with the stored ``chat``."""
        start = retention_start(chat)
        old = self.retained_at.get(chat.id)
        if old == start:
            return
        if old is not None:
            self.retained.remove((old, chat.id))
            del self.retained_at[chat.id]
        if start is not None:
            self.retained.add((start, chat.id))
            self.retained_at[chat.id] = start

    def purge(self, before: float, limit: int) -> int:
        """Delete up to ``limit`` chats retained since before ``before``, oldest first."""
        purged = 0
        retained = self.retained
        while purged < limit and retained and retained[0][0] < before:
            _start, chat_id = retained.pop(0)
            del self.retained_at[chat_id]
            chat = self.chats.pop(chat_id, None)
            self.messages.pop(chat_id, None)
            partner = None if chat is None else chat.customer.partner_id
            if partner is not None:
                mark = self.sticky.get(partner)
                if mark is not None and mark.at < before:
                    del self.sticky[partner]
            purged += 1
        return purged

    def append_events(self, events: Iterable[Event]) -> None:
        outbox = self.outbox
        seq = self.outbox_seq
        for e in events:
            seq += 1
            outbox[seq] = (
                e.id,
                e.type,
                e.timestamp,
                e.chat_id,
                e.seq,
                e.schema,
                *_flat(e.data.items()),
            )
        self.outbox_seq = seq


_CENSUS_FIELDS = tuple(a.name for a in attrs.fields(GroupCensus))  # Census's fields first
_CENSUS_BASE = len(attrs.fields(Census))
_NO_CENSUS = GroupCensus()
_new_census = maker(Census)
_new_applied = maker(Applied)


class _Index:
    """Eligible agents of one group sorted by one ranking."""

    def __init__(self, group: str, ranking: Ranking, loads: Iterable[AgentLoad]) -> None:
        self.group = group
        self.ranking = ranking
        self.entry = rank_entry_function(ranking)  # rank_entry(load, ranking), one call
        self.sorted: SortedList = SortedList()
        self.keys: dict[AgentId, tuple[Any, ...]] = {}  # flat: (*key, agent id)
        for load in loads:
            self.update(load)

    def update(self, load: AgentLoad) -> None:
        aid = load.agent.id
        old = self.keys.pop(aid, None)
        if old is not None:
            self.sorted.remove(old)
        if in_group(load.agent, self.group) and eligible(load):
            entry = self.entry(load)
            self.keys[aid] = entry
            self.sorted.add(entry)

    def first(
        self, excluded: frozenset[AgentId], fit: Callable[[AgentId], bool] | None = None
    ) -> AgentId | None:
        """The first agent by the ranking not in ``excluded`` and, with ``fit``, for which
        ``fit(agent)`` holds (a claim's channel and fairness terms); agents passed over are
        skipped in order."""
        if not excluded and fit is None:
            try:
                head: AgentId = self.sorted[0][-1]  # one call into SortedList, no cast()
            except IndexError:
                return None
            return head
        for entry in self.sorted:
            aid = entry[-1]
            if aid not in excluded and (fit is None or fit(aid)):
                return cast(AgentId, aid)
        return None


_EventEntry = tuple[Any, ...]
"""An event waiting in the outbox: ``(id, type, timestamp, chat_id, seq, schema, key1, value1,
key2, value2, ...)``, its data's items flattened in order."""
_flat = itertools.chain.from_iterable
"""Items flattened: ``(k1, v1), (k2, v2)`` -> ``k1, v1, k2, v2``."""


def _unflat(entry: tuple[Any, ...]) -> dict[str, Any]:
    """The dict flattened (by :data:`_flat`) after the first six fields of ``entry``."""
    return dict(zip(entry[6::2], entry[7::2], strict=True))


def _event(entry: _EventEntry) -> Event:
    id_, type_, timestamp, chat_id, seq, schema = entry[:6]
    return Event(id_, type_, timestamp, _unflat(entry), chat_id, seq, schema)


_TimerEntry = tuple[Any, ...]
"""A stored timer: ``(due_at, seq, key, chat_id, kind, version, key1, value1, ...)``, its
payload's items flattened in order (a dict, or a tuple nested in a tuple, keeps a tuple tracked
by the collector). ``seq`` orders entries due at the same time and is unique, so comparing two
entries never looks further."""


def _timer(entry: _TimerEntry) -> Timer:
    due_at, _seq, key, chat_id, kind, version = entry[:6]
    return Timer(key, due_at, chat_id, kind, version, _unflat(entry))


class _Queue:
    def __init__(self) -> None:
        self.sorted: SortedList = SortedList()
        self.entries: dict[ChatId, tuple[float, int, ChatId]] = {}
        self.seq = 0


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


class MemoryStorage:
    """Every storage port in memory, for one namespace (tenant).

    >>> storage = MemoryStorage()
    >>> storage.namespace
    'default'
    """

    reports_census = False
    """:meth:`apply` reads :attr:`~chatmgmt.ports.Change.census` in the unit when asked, but
    does not ask the core to use it: here a census is a read of counters in the same process,
    cheaper than filling the census marks into the plan (a store across a network saves a
    round trip with it)."""

    def __init__(self, namespace: str = "default", database: MemoryDatabase | None = None) -> None:
        self._namespace = namespace
        self.database = database if database is not None else MemoryDatabase()
        db = self.database
        self._customers = MemoryCustomerStore(db, namespace)
        self._agents = MemoryAgentStore(db, namespace)
        self._chats = MemoryChatStore(db, namespace)
        self._queues = MemoryQueueStore(db, namespace)
        self._outbox = MemoryOutbox(db, namespace)
        self._timers = MemoryTimerStore(db, namespace)
        self._counters = MemoryRateCounter(db, namespace)
        self._lock = db.lock
        self._space = db.space(namespace)

    @property
    def namespace(self) -> str:
        """The tenant this storage serves."""
        return self._namespace

    @property
    def customers(self) -> MemoryCustomerStore:
        """The CRM."""
        return self._customers

    @property
    def agents(self) -> MemoryAgentStore:
        """Agents and their load."""
        return self._agents

    @property
    def chats(self) -> MemoryChatStore:
        """Chats and messages."""
        return self._chats

    @property
    def queues(self) -> MemoryQueueStore:
        """Queues and pools."""
        return self._queues

    @property
    def outbox(self) -> MemoryOutbox:
        """The event log."""
        return self._outbox

    @property
    def timers(self) -> MemoryTimerStore:
        """Deadlines."""
        return self._timers

    @property
    def counters(self) -> MemoryRateCounter:
        """Sliding-window counters."""
        return self._counters

    def apply(self, change: Change) -> Applied:
        """See :meth:`chatmgmt.ports.Storage.apply`: under the database's one lock, every
        precondition is checked before anything is written."""
        change.check()
        s = self._space
        chat_id = change.chat_id
        with self._lock:
            stored = s.chats.get(chat_id)
            expected = change.expected_version
            if expected is None:
                if stored is not None:
                    raise PreconditionFailed("exists", chat_id, None, stored.version)
            elif stored is None:
                raise PreconditionFailed("missing", chat_id)
            elif stored.version != expected:
                raise PreconditionFailed("version", chat_id, expected, stored.version)
            if change.require_empty is not None:
                q = s.queues.get(change.require_empty)
                if q is not None and q.entries and (len(q.entries) > 1 or chat_id not in q.entries):
                    raise PreconditionFailed("queue_not_empty", chat_id, queue=change.require_empty)
            loads = s.loads
            claim = change.claim
            picked: AgentId | None = None
            chat, events, schedule = change.chat, change.events, change.schedule
            census = None if change.census is None else self._agents.census(change.census)
            pick: AgentId | None = None  # the ranked claim's pick, bound into the plan
            if claim is not None:
                release = change.release
                if isinstance(claim, Claim):
                    picked = claim.agent_id
                    load = loads.get(picked)
                    if load is None or not takes_claim(load, claim, chat_id, release, change.now):
                        raise PreconditionFailed(
                            "agent_unavailable", chat_id, agent_id=picked, census=census
                        )
                else:
                    excluded = claim.excluded
                    if release is not None:
                        excluded = excluded | {release}
                    fit = None
                    if claim.hold and (claim.cap > 0 or s.channel_agents):
                        ranked, now = claim, change.now

                        def fit(aid: AgentId) -> bool:
                            return fits_claim(loads[aid], ranked, now)

                    picked = s.index(claim.group, claim.ranking).first(excluded, fit)
                    if picked is None:
                        raise PreconditionFailed(
                            "no_agent", chat_id, queue=claim.group, census=census
                        )
                    pick = picked
            if pick is not None or census is not None:
                # nothing can fail from here on: an owned change is bound in place
                chat, events, schedule = change.bound(pick, census, in_place=change.owned)
            # every precondition held: write
            now = change.now
            if change.release is not None:
                load = loads.get(change.release)
                if load is not None:
                    s.store_load(released(load, chat_id, now, change.tiebreak))
            if picked is not None:
                assert claim is not None
                if isinstance(claim, RankedClaim) and not claim.hold:
                    s.store_load(touched(loads[picked], now, change.tiebreak))
                elif isinstance(claim, Claim) and claim.force:
                    s.store_load(
                        forced(loads[picked], chat_id, now, change.tiebreak, claim.channel)
                    )
                else:
                    s.store_load(
                        claimed(
                            loads[picked],
                            chat_id,
                            now,
                            change.tiebreak,
                            claim.channel,
                            claim.keep_s,
                        )
                    )
            if change.inactive is not None:
                aid, flag = change.inactive
                load = loads.get(aid)
                if load is not None:
                    s.store_load(moved_inactive(load, chat_id, flag))
            for queue in change.remove:
                s.queue_remove(queue, chat_id)
            if change.push is not None:
                s.queue_push(change.push.queue, chat_id, change.push.score)
            for key in change.cancel:
                s.timer_cancel(key)
            for timer in schedule:
                s.timer_put(timer)
            if chat is not None:
                s.chats[chat_id] = chat
                s.retain(chat)
            if change.message is not None or change.more_messages:
                messages = s.messages.get(chat_id)
                if messages is None:
                    messages = s.messages[chat_id] = []
                if change.message is not None:
                    messages.append(change.message)
                messages.extend(change.more_messages)
            if change.sticky is not None:
                s.sticky[change.sticky.partner_id] = change.sticky
            s.append_events(events)
            heads = self._watched(s, change.watch) if change.watch else ()
            gone = None if change.release is None else loads.get(change.release)
        return _new_applied(chat, picked, events, census, heads, gone)

    def _watched(self, s: _Space, watch: Sequence[str]) -> tuple[QueueHead, ...]:
        """The heads of the ``watch`` queues (under the lock): those of the last read when
        they were all empty and no chat was pushed into any queue since (an end with nobody
        waiting reads no queue)."""
        key = watch if type(watch) is tuple else tuple(watch)
        idle = s.idle_heads.get(key)
        if idle is not None and idle[0] == s.pushes:
            return idle[1]
        heads = tuple(self._queues.heads(key))
        if not any(map(_LENGTH, heads)):
            if len(s.idle_heads) >= 4096:
                s.idle_heads.clear()
            s.idle_heads[key] = (s.pushes, heads)
        return heads

    def aio(self) -> AsyncStorage:
        """The async face of this storage, sharing its state."""
        return cast(AsyncStorage, _AsyncFacade(self))


class _AsyncFacade:
    """Wraps every port of a sync storage whose calls never block into awaitables."""

    def __init__(self, sync: Any) -> None:
        self._sync = sync
        self.namespace = sync.namespace
        self.reports_census = getattr(sync, "reports_census", False)
        for name in ("customers", "agents", "chats", "queues", "outbox", "timers", "counters"):
            setattr(self, name, _AsyncPort(getattr(sync, name)))
        apply = sync.apply

        async def apply_async(change: Change) -> Applied:
            result: Applied = apply(change)
            return result

        self.apply = apply_async

    @property
    def sync(self) -> Any:
        """The wrapped sync storage."""
        return self._sync


class _AsyncPort:
    def __init__(self, port: Any) -> None:
        self._port = port

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._port, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return method(*args, **kwargs)

        call.__name__ = name
        return call
