"""The state of one namespace of a :class:`~chatmgmt.storage.memory.MemoryDatabase` and the
index upkeep every write shares (loads, censuses, queues, timers, retention, the outbox)."""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable

import attrs
from sortedcontainers import SortedList

from ..assignment._load import census_category, has_channel_rules
from ..model import (
    AgentId,
    AgentLoad,
    AgentStatus,
    Chat,
    ChatId,
    Customer,
    Event,
    Message,
    Ranking,
    Sticky,
    Timer,
    maker,
)
from ..ports import Census, GroupCensus, QueueHead, retention_start
from ._memory_entries import _EventEntry, _flat, _TimerEntry
from ._memory_index import _Index, _Queue

_ONLINE = AgentStatus.ONLINE  # read on every slot change: a global (cheaper than the member)


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
        # per agent, the census category its stored load counts under (census_category)
        self.categories: dict[AgentId, str] = {}
        # the agent ids in account order (then id) for AgentStore.list; None: to be sorted
        # again (an agent was added or its account order changed)
        self.order: list[AgentId] | None = None
        # agents with capacity per channel: while there is none, a ranked pick is the index's
        # first entry unless the claim has a fairness cap
        self.channel_agents: set[AgentId] = set()

    def count(self, load: AgentLoad, sign: int) -> None:
        agent = load.agent
        category = census_category(load)
        if sign > 0:  # the category it counts under now (recount reads it back)
            self.categories[agent.id] = category
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
        # census_category(old), as counted when ``old`` was stored: one call less per change
        old_category = self.categories[agent.id]
        category = census_category(load)
        if category != old_category:
            self.categories[agent.id] = category
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
        self.timers_put((timer,))

    def timers_put(self, timers: Iterable[Timer]) -> None:
        """Store ``timers`` in order (one call for a unit's whole schedule)."""
        seq = self.timer_seq
        stored = self.timers
        heap = self.timer_heap
        for timer in timers:
            seq += 1
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
            stored[key] = entry
            heapq.heappush(heap, entry)
        self.timer_seq = seq

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
