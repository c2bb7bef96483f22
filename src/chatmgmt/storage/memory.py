"""The in-memory storage adapter: the default, for one process.

Thread-safe: one lock per :class:`MemoryDatabase` serializes every operation, so each method is
atomic and a change commits with its events. Several tenants may share one database; each
:class:`MemoryStorage` sees only its ``namespace``. ``MemoryStorage.aio()`` gives the async face
for :class:`~chatmgmt.AsyncChatManager` (the operations never block, so it simply awaits them).

Picks cost O(log n): every ranking in use keeps a sorted index of the agents that are eligible
right now (ONLINE and below their limit), updated on every change of an agent's load.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any, TypeVar, cast

from ..assignment._load import (
    claimed,
    fits_claim,
    forced,
    moved_inactive,
    released,
    takes_claim,
    touched,
)
from ..errors import PreconditionFailed
from ..model import AgentId, maker
from ..ports import Applied, AsyncStorage, Change, Claim, QueueHead, RankedClaim
from ._memory_space import _Space
from ._memory_stores import (
    MemoryAgentStore,
    MemoryChatStore,
    MemoryCustomerStore,
    MemoryOutbox,
    MemoryQueueStore,
    MemoryRateCounter,
    MemoryTimerStore,
)

# The adapter's pieces, each in its own module (users import from here):
#   memory.py            MemoryDatabase, MemoryStorage (the unit of work: apply), the async face
#   _memory_stores.py    one class per port (MemoryCustomerStore, ..., MemoryRateCounter)
#   _memory_space.py     _Space: one namespace's state and the index upkeep every write shares
#   _memory_index.py     _Index (a group's eligible agents by a ranking), _Queue
#   _memory_entries.py   events and timers stored as flat tuples, read back as objects

__all__ = ["MemoryDatabase", "MemoryStorage"]

_T = TypeVar("_T")
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


_new_applied = maker(Applied)


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
            if schedule:
                s.timers_put(schedule)
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
