"""The core's shared state and its one effect: plan a chat's change, apply it, retry.

Every change of a chat is a :class:`Plan` (the chat's new state, the events it causes and the
index operations it implies: slot claim or release, queue entries, extra timers, a message, a
sticky mark). :meth:`CoreBase.commit` turns it into one :class:`~chatmgmt.ports.Change` — the
version, the per-chat event sequence and the deadlines the lifecycle plans for the new state —
and applies it through :meth:`~chatmgmt.ports.Storage.apply`. :meth:`CoreBase.update` is the
one compare-and-set retry loop: read, plan, apply, and on a lost version read and plan again.
"""

from __future__ import annotations

import enum
import logging
import os
import random
import secrets
from collections.abc import Callable, Mapping, Sequence
from operator import attrgetter
from typing import Any, TypeVar

from .. import lifecycle as lc
from .._plan import Items, Plan
from ..assignment._live_overflow import overflow_due, overflow_timer, watched
from ..assignment._positions import positions_timer, tracked
from ..assignment._routing import drain_queues
from ..assignment._strategies import Strategy
from ..errors import ConflictError, NotFoundError, PreconditionFailed
from ..model import (
    AgentId,
    AgentLoad,
    Chat,
    ChatId,
    Event,
    Message,
    MessageId,
    MessageRole,
    Timer,
    evolve,
    maker,
    stamp,
    system_message,
)
from ..moderation import FilterHolder, SensitiveWordFilter
from ..ports import (
    AgentStore,
    Applied,
    Change,
    ChatStore,
    EventSink,
    MessageSink,
    RankedClaim,
    Storage,
)
from ..settings import ChatSettings
from ..webhook import make_event
from ..webhook._catalogue import event_owning
from ._ops import Eff, call

__all__ = ["CAS_RETRIES", "RETRY", "STICKY_WAIT", "CoreBase", "Items", "Plan", "Retry"]

log = logging.getLogger("chatmgmt")


CAS_RETRIES = 32
STICKY_WAIT = "sticky_wait"
QUEUE = "queue"


T = TypeVar("T")


class Retry(enum.Enum):
    """The one value of :data:`RETRY`."""

    RETRY = "retry"


RETRY = Retry.RETRY
"""What an attempt of :meth:`CoreBase.retrying` returns when it lost a race."""


def sticky_wait_key(chat_id: str) -> str:
    """The timer key of a chat's sticky wait."""
    return f"{chat_id}:{STICKY_WAIT}"


def queue_of(chat: Chat) -> str | None:
    """The queue or pool the chat waits in, or None."""
    return chat.queue


def queued_at(chat: Chat, now: float) -> float:
    """When the chat last entered a queue (``now`` when unknown)."""
    return now if chat.queued_at is None else chat.queued_at


class CoreBase:
    """Settings, randomness, the moderation filter and custom strategies; the one effect."""

    def __init__(
        self,
        settings: ChatSettings,
        rng: random.Random,
        strategies: Mapping[str, Strategy] | None = None,
        word_filter: SensitiveWordFilter | None = None,
        ids: Callable[[], str] | None = None,
    ) -> None:
        self.settings = settings
        self.rng = rng
        self.strategies = dict(strategies or {})
        words = settings.sensitive_words
        if word_filter is None and words.enabled and (words.customer or words.agent or words.both):
            word_filter = SensitiveWordFilter.from_settings(words)
        self.filter = FilterHolder(word_filter) if word_filter is not None else None
        # ids come from their own source, never from the policy RNG: a seeded host re-run on
        # persistent storage must not reuse ids
        self._ids = ids if ids is not None else _random_ids
        # deadlines planned per (chat, creation, version): a change compares its new plan with
        # the old. The creation time is part of the key because a chat id can be used again (a
        # host-supplied ``chat_id`` after the chat was purged), and its versions start again
        # at 0: keyed by (chat, version) alone, the plan of the purged chat was taken for the
        # new one's (a deadline of the new chat left uncancelled). The creation never changes.
        self._plans: dict[tuple[str, float, int], dict[str, Timer]] = {}
        # per (chat, creation, version) of a new chat claimed by ranking: the keys of its
        # deadlines, for a next change that leaves the chat none (its end; see commit)
        self._opened: dict[tuple[str, float, int], tuple[str, ...]] = {}
        self._groups: dict[str, Any] = {}  # per group, its settings resolved once (_targets)
        # per group and channel, without exclusions
        self._claims: dict[tuple[str, str], RankedClaim] = {}
        # each agent's skill groups as last seen, for the queues a freed slot drains (a guess:
        # a drain checks it against the agent's load the unit reports)
        self.agent_groups: dict[AgentId, frozenset[str]] = {}
        self._drain_queues: dict[tuple[AgentId, Any], tuple[str, ...]] = {}
        # AssignmentSettings.fairness_keep_s of the settings value it was computed for
        self._keep_s: tuple[object, float] = (None, 0.0)
        self.emits = True  # the manager turns this off when the host gave no event sink
        self.delivers = True  # the same for the message sink (system messages)
        # the storage reads a claim's census in its unit (``Change.census``; the manager sets
        # it from the storage's ``reports_census``): else the core reads it before
        self.census_in_unit = False
        self.positions = settings.assignment.queue.position_events_s > 0
        self.overflow_watch = bool(settings.assignment.overflow) and (
            settings.assignment.overflow_check_s > 0
        )
        # partner ids known to have a CRM record: an unknown one is created first
        self._known_partners: set[str] = set()
        # SLA clocks move on every change only when a policy exists (lifecycle/_sla.py)
        self.sla_on = settings.sla.configured
        # the state every new chat starts in (the reception mode never changes under a core)
        self.initial_state = lc.initial_state(settings.reception_mode)

    # ----------------------------------------------------------------- values

    def new_id(self, prefix: str) -> str:
        """A fresh id (``prefix_`` + 24 hex digits) from the id source."""
        return f"{prefix}_{self._ids()}"

    def event(self, type_: str, data: Mapping[str, Any], now: float) -> Event:
        """An event not tied to a chat."""
        return make_event(self.new_id("evt"), type_, now, data)

    def chat_events(
        self, chat: Chat, items: Sequence[tuple[str, Mapping[str, Any]]], now: float
    ) -> tuple[list[Event], int]:
        """The events of ``items`` for ``chat``, numbered after its last sequence number."""
        seq = chat.event_seq
        if not items:
            return [], seq
        base = {
            "chat_id": chat.id,
            "channel": chat.channel,
            "skill_group": chat.skill_group,
            "partner_id": chat.customer.partner_id,
        }
        events = []
        ids = self._ids  # new_id("evt") without its Python call per event
        chat_id = chat.id
        for type_, data in items:
            seq += 1
            events.append(event_owning(f"evt_{ids()}", type_, now, {**base, **data}, chat_id, seq))
        return events, seq

    def system_message(self, chat: Chat, text: str, now: float) -> Message:
        """A system message (a prompt) for ``chat``."""
        return system_message(MessageId(self.new_id("msg")), chat.id, text, now)

    # ----------------------------------------------------------------- reads

    def get_chat(self, chat_id: ChatId) -> Eff[Chat]:
        """Read a chat or raise NotFoundError."""
        chat = yield from call(ChatStore.get, chat_id)
        if chat is None:
            raise NotFoundError("chat", chat_id)
        return chat

    def load(self, agent_id: AgentId) -> Eff[AgentLoad]:
        """Read an agent's load or raise NotFoundError."""
        load = yield from call(AgentStore.get, agent_id)
        if load is None:
            raise NotFoundError("agent", agent_id)
        return load

    # ----------------------------------------------------------------- the effect

    def _planned(self, chat: Chat) -> tuple[Timer, ...]:
        """The deadlines ``chat`` has, in planning order (one per key: the SLA timer's kind is
        none of the lifecycle's)."""
        settings = self.settings
        timers = lc.planned_timers(
            chat,
            end_of_chat=settings.end_of_chat,
            assignment=settings.assignment,
            bot=settings.bot,
        )
        if self.sla_on and (sla := lc.sla_timer(chat)) is not None:
            timers = (*timers, sla)
        return timers

    def _timers_of(self, chat: Chat) -> dict[str, Timer]:
        return {t.key: t for t in self._planned(chat)}

    def _timer_plan(self, chat: Chat | None) -> dict[str, Timer]:
        """The deadlines a stored chat has (cached per committed version)."""
        if chat is None:
            return {}
        cached = self._plans.get((chat.id, chat.created_at, chat.version))
        return cached if cached is not None else self._timers_of(chat)

    def commit(
        self, old: Chat | None, plan: Plan, now: float, *, drains: bool = False
    ) -> Eff[Applied]:
        """Apply ``plan`` to the chat stored as ``old`` (None: create it) in one unit of work.

        ``drains``: the caller drains the queues of the slot the plan releases, from what the
        unit reports of them (:meth:`release_watch`).

        Raises :class:`~chatmgmt.errors.PreconditionFailed` when a precondition failed; then
        nothing was committed.
        """
        planned = plan.chat
        items = plan.items
        if self.sla_on:  # the SLA clocks move with the change (lifecycle/_sla.py)
            planned, items = lc.track_sla(self.settings, old, planned, items, now)
        events, seq = self.chat_events(planned, items, now)
        version = 0 if old is None else old.version + 1
        if plan.owned:
            new = stamp(planned, version, seq, now)
        else:
            new = evolve(planned, version=version, event_seq=seq, updated_at=now)
        ranked = isinstance(plan.claim, RankedClaim)  # then planned with the placeholder agent
        timers = self._planned(new)
        if old is None and ranked:
            after = None
        else:  # no comprehension (a call on 3.11) for a state without deadlines (an end's)
            after = {t.key: t for t in timers} if timers else {}
        if old is None:  # a new chat: every deadline is new, none to cancel
            schedule = list(timers)
            cancel = []
        elif (
            not timers
            and (opened := self._opened.get((old.id, old.created_at, old.version))) is not None
        ):
            # a ranked open's chat leaving every deadline (its end): cancel what it has
            schedule = []
            cancel = list(opened)
        else:
            assert after is not None
            before = self._timer_plan(old)
            schedule = [
                t
                for k, t in after.items()
                if (p := before.get(k)) is None or p.due_at != t.due_at or p.payload != t.payload
            ]
            cancel = [k for k in before if k not in after]
        if plan.cancel:
            cancel.extend(plan.cancel)
        if plan.schedule:
            schedule.extend(plan.schedule)
        push = plan.push
        if (
            push is not None
            and self.overflow_watch
            and watched(self.settings.assignment, push.queue)
        ):
            # the queue's live overflow check, in the same unit
            every_s = self.settings.assignment.overflow_check_s
            schedule.append(overflow_timer(push.queue, overflow_due(now, every_s)))
        if self.positions and (plan.remove or plan.push is not None):
            # the queue's positions timer, in the same unit (chat.queue_position events)
            for queue in (*plan.remove, *((plan.push.queue,) if plan.push else ())):
                if tracked(queue):
                    schedule.append(positions_timer(queue, now))
        change = _new_change(  # Change's fields in order (no validators: see model.maker)
            new.id,
            None if old is None else old.version,
            now,
            new,
            plan.claim,
            plan.release,
            plan.inactive,
            plan.require_empty,
            plan.remove,
            plan.push,
            tuple(cancel),
            tuple(schedule),
            plan.message,
            plan.sticky,
            tuple(events),
            self.rng.random(),
            True,  # ``new``, the events and the timers were built here for this change alone
            plan.more_messages,
            plan.census,
            self.release_watch(plan.release, new) if drains and plan.release else (),
        )
        applied = yield from call(_APPLY, change)
        if not ranked:  # the plan the chat's next change starts from
            plans = self._plans
            if len(plans) >= 4096:  # the previous state of a chat is what gets reused
                plans.clear()
            plans[(new.id, new.created_at, version)] = after  # type: ignore[assignment]
        elif old is None:
            # a new chat's deadlines were planned with the placeholder agent (the store binds
            # it in a basis): their keys alone are kept, for an end to cancel them without
            # planning them again. Not the timers: with their payload and the tuple holding
            # them, five objects per open the collector kept walking (+2.6 % instructions
            # per open over 20,000 opens with it on); a tuple of keys (strings) is untracked
            # at the first collection that sees it, and so is its (chat id, creation,
            # version) key
            kept = self._opened
            if len(kept) >= 4096:
                kept.clear()
            kept[(new.id, new.created_at, version)] = tuple(map(_TIMER_KEY, timers))
        if self.emits:
            yield from self.emit(applied.events)
        else:  # the same, without a generator per change
            self.observe(applied.events)
        if not self.delivers:  # no message sink: nothing to hand the system messages to
            return applied
        message = plan.message
        if message is not None and message.role is _SYSTEM:
            yield from call(MessageSink.deliver, message)
        for message in plan.more_messages:
            if message.role is _SYSTEM:
                yield from call(MessageSink.deliver, message)
        return applied

    def retrying(self, kind: str, key: str, attempt: Callable[[], Eff[T | Retry]]) -> Eff[T]:
        """The compare-and-set retry loop, once: run ``attempt`` (which reads, plans and
        applies) until it returns something other than :data:`RETRY` (it lost a race: read and
        plan again), a bounded number of times; then ConflictError naming ``kind`` ``key``."""
        for _ in range(CAS_RETRIES):
            result = yield from attempt()
            if result is not RETRY:
                return result
        raise ConflictError(kind, key)

    def update(
        self, chat_id: ChatId, planner: Callable[[Chat], Plan | None], now: float
    ) -> Eff[tuple[Chat, Chat]]:
        """Read the chat, plan, apply; on a lost version read and plan again
        (:meth:`retrying`). ``planner`` returning None means nothing to change.

        Returns ``(old, new)``: the chat as read and as committed.
        """
        old, applied = yield from self.update_applied(chat_id, planner, now)
        assert applied.chat is not None
        return old, applied.chat

    def update_applied(
        self,
        chat_id: ChatId,
        planner: Callable[[Chat], Plan | None],
        now: float,
        *,
        drains: bool = False,
    ) -> Eff[tuple[Chat, Applied]]:
        """:meth:`update`, returning the chat as read and what the unit reported
        (:class:`~chatmgmt.ports.Applied`: an unchanged chat as ``Applied(chat)``);
        ``drains``: see :meth:`commit`."""

        def attempt() -> Eff[tuple[Chat, Applied] | Retry]:
            chat = yield from call(_GET, chat_id)  # get_chat without its generator's frame
            if chat is None:
                raise NotFoundError("chat", chat_id)
            plan = planner(chat)
            if plan is None:
                return chat, Applied(chat)
            try:
                applied = yield from self.commit(chat, plan, now, drains=drains)
            except PreconditionFailed as exc:
                if exc.reason == "version":
                    return RETRY
                raise
            return chat, applied

        return (yield from self.retrying("chat", chat_id, attempt))

    def release_watch(self, agent_id: AgentId, chat: Chat) -> tuple[str, ...]:
        """The queues a slot freed at ``agent_id`` may drain, as far as this core knows the
        agent's groups (else the chat's group): the unit reports their heads
        (``Change.watch``) so that the drain after it needs no read."""
        known = self.agent_groups.get(agent_id)
        return self.drain_queues(agent_id, (chat.skill_group,) if known is None else known)

    def drain_queues(
        self, agent_id: AgentId, groups: frozenset[str] | tuple[str, ...]
    ) -> tuple[str, ...]:
        """:func:`~chatmgmt.assignment._routing.drain_queues`, remembered per agent and
        groups (bounded): every end asks it twice."""
        key = (agent_id, groups)
        queues = self._drain_queues.get(key)
        if queues is None:
            if len(self._drain_queues) >= 65_536:
                self._drain_queues.clear()
            queues = self._drain_queues[key] = drain_queues(agent_id, groups)
        return queues

    def observe(self, events: Sequence[Event]) -> None:
        """Look at committed events before they go to the sink (the monitor keeps its alerts
        here); nothing by default."""

    def emit(self, events: Sequence[Event]) -> Eff[None]:
        """Hand committed events to :meth:`observe` and to the host's event sink (when it gave
        one)."""
        self.observe(events)
        if not self.emits:
            return
        for event in events:
            yield from call(EventSink.emit, event)


_new_change = maker(Change)
_TIMER_KEY = attrgetter("key")
_SYSTEM = MessageRole.SYSTEM
_APPLY = Storage.apply  # a global: cheaper to read than the Protocol's attribute
_GET = ChatStore.get


class _RandomIds:
    """96 random bits as 24 hex digits from a generator seeded by the OS (and seeded again in
    every forked child, so two processes never share a sequence); never the policy RNG."""

    def __init__(self) -> None:
        self._bits = random.Random(secrets.randbits(128)).getrandbits
        os.register_at_fork(after_in_child=self._reseed)

    def _reseed(self) -> None:
        self._bits = random.Random(secrets.randbits(128)).getrandbits

    def __call__(self) -> str:
        return f"{self._bits(96):024x}"


_random_ids = _RandomIds()
