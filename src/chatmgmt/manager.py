"""``ChatManager`` (sync) and ``AsyncChatManager`` (async): the library's front door.

Both run the same orchestration (:mod:`chatmgmt._core`), which yields port calls; the sync
manager calls sync ports, the async one awaits async ports. No business rule exists twice.

>>> from chatmgmt import ChatManager, Agent, AgentStatus, CustomerInfo
>>> manager = ChatManager()
>>> _ = manager.register_agent(Agent("ann", status=AgentStatus.ONLINE, reception_limit=2))
>>> chat = manager.open_chat(CustomerInfo(partner_id="u_1", name="Ada"))
>>> chat.state.value, chat.agent_id
('active', 'ann')
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any, Literal, TypeVar

from ._clock import SystemClock
from ._core import Core, Op, QueueStatus, resolve
from ._core._pick import check_sync_strategies, pick_async, pick_sync
from .assignment import RouteRequest
from .assignment._strategies import Strategy
from .lifecycle import agent_view
from .model import (
    Agent,
    AgentId,
    AgentLoad,
    AgentStatus,
    Chat,
    ChatId,
    ChatState,
    Customer,
    CustomerInfo,
    EndReason,
    Message,
    MessageRole,
)
from .moderation import SensitiveWordFilter
from .monitoring import Snapshot, fan_out
from .ports import AsyncStorage, Clock, EventSink, MessageSink, Storage
from .settings import ChatSettings

__all__ = ["AsyncChatManager", "ChatManager", "QueueStatus", "SystemClock"]

log = logging.getLogger("chatmgmt")
T = TypeVar("T")
_SINK_CALLS = frozenset({EventSink.emit, MessageSink.deliver})  # the host's sinks are sync


class _Sinks:
    def __init__(self, events: EventSink | None, messages: MessageSink | None) -> None:
        self.events = events
        self.messages = messages

    def emit(self, event: Any) -> None:
        if self.events is not None:
            try:
                self.events.emit(event)
            except Exception:
                log.exception("event sink failed on %s", getattr(event, "type", event))

    def deliver(self, message: Any) -> None:
        if self.messages is not None:
            try:
                self.messages.deliver(message)
            except Exception:
                log.exception("message sink failed")

    pick = staticmethod(pick_sync)  # a custom strategy, called where the core yields it


class _AsyncSinks(_Sinks):
    pick = staticmethod(pick_async)  # type: ignore[assignment]  # awaited by the async driver


class _Base:
    """What both managers share: settings, clock, RNG, sinks and the public method surface."""

    def __init__(
        self,
        settings: ChatSettings | None,
        clock: Clock | None,
        rng: random.Random | None,
        strategies: Mapping[str, Strategy] | None,
        event_sink: EventSink | None,
        message_sink: MessageSink | None,
        word_filter: SensitiveWordFilter | None = None,
        ids: Callable[[], str] | None = None,
    ) -> None:
        self.settings = ChatSettings.coerce(settings)
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._core = Core(
            self.settings,
            rng if rng is not None else random.Random(),
            strategies,
            word_filter,
            ids,
        )
        self._sinks = _Sinks(event_sink, message_sink)
        self._core.emits = event_sink is not None
        self._core.delivers = message_sink is not None

    def reload_words(self, word_filter: SensitiveWordFilter) -> None:
        """Swap in a new compiled word filter atomically; messages in flight keep the old one."""
        if self._core.filter is None:
            from .moderation import FilterHolder

            self._core.filter = FilterHolder(word_filter)
        else:
            self._core.filter.reload(word_filter)

    def _now(self, now: float | None) -> float:
        return self.clock.now() if now is None else now

    @staticmethod
    def _request(
        request: RouteRequest | None,
        designated_agent: str | None,
        designated_group: str | None,
        strict: bool,
        queue_first: bool,
    ) -> RouteRequest:
        if request is not None:
            return request
        if not designated_agent and designated_group is None and not strict and not queue_first:
            return _NO_REQUEST  # the usual open: one shared value, nothing to build
        return RouteRequest(
            AgentId(designated_agent) if designated_agent else None,
            designated_group,
            strict,
            queue_first,
        )


_NO_REQUEST = RouteRequest()


class ChatManager(_Base):
    """The sync manager over sync ports (in-memory storage by default).

    ``clock`` and ``rng`` are injected so that every decision is reproducible in a test;
    ``strategies`` maps skill groups (``"*"``: all) to a custom ranking or callable;
    ``event_sink`` receives every event after it committed (monitoring, alerts);
    ``message_sink`` receives system messages (prompts) to show in a chat;
    ``word_filter`` overrides the sensitive-word filter built from the settings;
    ``ids`` is where new ids (chats, messages, events) come from: a function returning a fresh
    unique string (by default 24 random hex digits from the OS, never from ``rng``, so a seeded
    host re-run on persistent storage does not reuse ids; inject a counter in tests).
    """

    def __init__(
        self,
        storage: Storage | None = None,
        settings: ChatSettings | None = None,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        strategies: Mapping[str, Strategy] | None = None,
        event_sink: EventSink | None = None,
        message_sink: MessageSink | None = None,
        word_filter: SensitiveWordFilter | None = None,
        ids: Callable[[], str] | None = None,
    ) -> None:
        check_sync_strategies(strategies)
        super().__init__(
            settings, clock, rng, strategies, event_sink, message_sink, word_filter, ids
        )
        if storage is None:
            from .storage.memory import MemoryStorage

            storage = MemoryStorage()
        self.storage: Storage = storage
        self._core.census_in_unit = getattr(storage, "reports_census", False) is True
        self._methods: dict[Any, Any] = {}

    def _run(self, gen: Generator[Op, Any, T]) -> T:
        methods = self._methods
        send = gen.send
        try:
            fn, args, kwargs = next(gen)
            while True:
                bound = methods.get(fn)
                if bound is None:
                    bound = methods[fn] = resolve(fn, self.storage, self._sinks)
                try:
                    result = bound(*args, **kwargs)
                except Exception as exc:  # handed to the orchestration, which may handle it
                    fn, args, kwargs = gen.throw(exc)
                    continue
                fn, args, kwargs = send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    # agents
    def register_agent(self, agent: Agent, *, now: float | None = None) -> AgentLoad:
        """Register or update an agent; an ONLINE agent with free slots drains the queues."""
        return self._run(self._core.put_agent(agent, self._now(now)))

    def set_agent_status(
        self, agent_id: str, status: AgentStatus, *, now: float | None = None
    ) -> AgentLoad:
        """Change an agent's status; coming ONLINE drains the queues it serves."""
        return self._run(
            self._core.set_agent_status(AgentId(agent_id), AgentStatus(status), self._now(now))
        )

    def set_reception_limit(
        self, agent_id: str, limit: int, *, now: float | None = None
    ) -> AgentLoad:
        """Change an agent's reception limit; a higher limit drains the queues."""
        return self._run(self._core.set_reception_limit(AgentId(agent_id), limit, self._now(now)))

    def agent(self, agent_id: str) -> AgentLoad:
        """An agent and its live load (NotFoundError if unknown)."""
        return self._run(self._core.load(AgentId(agent_id)))

    # chats
    def open_chat(
        self,
        customer: CustomerInfo,
        *,
        skill_group: str = "",
        request: RouteRequest | None = None,
        designated_agent: str | None = None,
        designated_group: str | None = None,
        strict: bool = False,
        queue_first: bool = False,
        identity_signature: str | None = None,
        chat_id: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        bot: str | None = None,
        now: float | None = None,
    ) -> Chat:
        """Open a chat: auto-save the customer, then assign it, queue it or pool it.

        Returns the chat as it stands after routing; ``chat.route_reason`` says why. With
        ``bot`` (the bot's id) the chat starts in the bot stage instead: stored in state
        ``bot``, not routed, holding no agent's capacity, until :meth:`handoff` (or an end).
        """
        req = self._request(request, designated_agent, designated_group, strict, queue_first)
        return self._run(
            self._core.open_chat(
                customer,
                req,
                skill_group=skill_group,
                signature=identity_signature,
                chat_id=chat_id,
                attributes=attributes,
                now=self._now(now),
                bot=bot,
            )
        )

    def get_chat(self, chat_id: str) -> Chat:
        """A chat (NotFoundError if unknown)."""
        return self._run(self._core.get_chat(ChatId(chat_id)))

    def list_chats(
        self, *, state: ChatState | None = None, agent_id: str | None = None
    ) -> list[Chat]:
        """Chats by state and/or agent (a maintenance query)."""
        return self.storage.chats.list(state, AgentId(agent_id) if agent_id else None)

    def messages(self, chat_id: str) -> list[Message]:
        """A chat's messages in order."""
        return self.storage.chats.messages(ChatId(chat_id))

    def customer(self, partner_id: str) -> Customer | None:
        """The CRM record of a customer, or None."""
        return self.storage.customers.get(partner_id)

    def queue_status(self, chat_id: str, *, now: float | None = None) -> QueueStatus | None:
        """Position, estimated wait and leave-a-message offer of a waiting chat, or None."""
        return self._run(self._core.queue_status(ChatId(chat_id), self._now(now)))

    def end_chat(
        self,
        chat_id: str,
        *,
        reason: EndReason = EndReason.AGENT,
        by: str = "system",
        now: float | None = None,
    ) -> Chat:
        """End a chat, recording who and why; frees the agent's slot and drains the queue."""
        if reason.__class__ is not EndReason:  # a member needs no enum call
            reason = EndReason(reason)
        return self._run(self._core.end_chat(ChatId(chat_id), reason, by, self._now(now)))

    def abandon(self, chat_id: str, *, now: float | None = None) -> Chat:
        """The customer left the queue before an agent took the chat."""
        return self._run(
            self._core.end_chat(
                ChatId(chat_id),
                EndReason.CUSTOMER,
                "customer",
                self._now(now),
                abandon=True,
            )
        )

    def transfer(
        self,
        chat_id: str,
        *,
        to_agent: str | None = None,
        to_group: str | None = None,
        by: str = "system",
        now: float | None = None,
    ) -> Chat:
        """Transfer an active chat to an agent (AssignmentError if unavailable) or a group."""
        return self._run(
            self._core.transfer(
                ChatId(chat_id),
                to_agent=AgentId(to_agent) if to_agent else None,
                to_group=to_group,
                by=by,
                now=self._now(now),
            )
        )

    def assign(
        self, chat_id: str, agent_id: str, *, by: str = "admin", now: float | None = None
    ) -> Chat:
        """An admin assigns a queued or unassigned chat to an agent explicitly."""
        return self._run(self._core.assign(ChatId(chat_id), AgentId(agent_id), by, self._now(now)))

    def unassign(
        self,
        chat_id: str,
        *,
        by: str = "admin",
        exclude: bool = False,
        now: float | None = None,
    ) -> Chat:
        """An admin takes an active chat from its agent back to its queue (Real-Time) or pool
        (Always On), keeping its place; the queue then drains (the chat may go to a free agent
        at once, the same one unless ``exclude``). A chat that is not ACTIVE raises
        InvalidTransitionError."""
        return self._run(self._core.unassign(ChatId(chat_id), by, self._now(now), exclude=exclude))

    def accept_offer(self, chat_id: str, agent_id: str, *, now: float | None = None) -> Chat:
        """The agent accepts the chat offered to them (offers on): it becomes ACTIVE with them.

        InvalidTransitionError when the chat is not offered (any more: it expired, or the
        customer left); NotAllowedError when it is offered to another agent."""
        return self._run(
            self._core.accept_offer(ChatId(chat_id), AgentId(agent_id), self._now(now))
        )

    def decline_offer(
        self, chat_id: str, agent_id: str, *, reason: str = "", now: float | None = None
    ) -> Chat:
        """The agent declines the chat offered to them, saying ``reason``: it goes to the next
        agent of its group (never back to this one) or waits again at the place it had."""
        return self._run(
            self._core.decline_offer(ChatId(chat_id), AgentId(agent_id), reason, self._now(now))
        )

    def take_chat(
        self,
        agent_id: str,
        *,
        group: str | None = None,
        chat_id: str | None = None,
        now: float | None = None,
    ) -> Chat | None:
        """Pull mode: the agent takes ``chat_id``, or the next waiting chat of ``group`` (None:
        of every pull-mode group they serve); None when none waits. One unit of work: a chat
        two agents take at once goes to one of them (AssignmentError for the other when they
        chose it), and the agent's reception limit holds."""
        return self._run(
            self._core.take_chat(
                AgentId(agent_id),
                group,
                ChatId(chat_id) if chat_id is not None else None,
                self._now(now),
            )
        )

    def send_message(
        self,
        chat_id: str,
        text: str,
        *,
        role: MessageRole = MessageRole.CUSTOMER,
        sender: str = "",
        now: float | None = None,
    ) -> Message:
        """Store a message in a chat and emit its event."""
        return self._run(
            self._core.send_message(
                ChatId(chat_id), MessageRole(role), sender, text, self._now(now)
            )
        )

    def set_inactive(
        self, chat_id: str, inactive: bool = True, *, now: float | None = None
    ) -> Chat:
        """Mark a chat inactive (both sides silent) or active again.

        With ``assignment.inactive_chats_count`` off, an inactive chat stops counting toward
        its agent's reception limit (the freed slot drains the queue); when it becomes active
        again it counts again, even if that takes the agent over the limit for a while.
        """
        return self._run(self._core.set_inactive(ChatId(chat_id), inactive, self._now(now)))

    def hold_chat(
        self, chat_id: str, *, by: str, reason: str = "", now: float | None = None
    ) -> Chat:
        """Put an active chat on hold (``chat.held``): its inactivity deadlines stop, only
        ``end_of_chat.hold_close_after_s`` runs; with ``assignment.on_hold_chats_count`` off
        its slot frees in the same unit. It resumes by :meth:`resume_chat` or when the customer
        writes. On hold already: nothing changes."""
        return self._run(self._core.hold_chat(ChatId(chat_id), by, reason, self._now(now)))

    def resume_chat(self, chat_id: str, *, by: str, now: float | None = None) -> Chat:
        """Resume a chat on hold (``chat.resumed``); a freed slot counts again (even above
        the limit, see ``docs/lifecycle.md#hold``). Not on hold: nothing changes."""
        return self._run(self._core.resume_chat(ChatId(chat_id), by, self._now(now)))

    def submit_message(
        self, chat_id: str, values: Mapping[str, Any], *, now: float | None = None
    ) -> Chat:
        """Leave a message instead of waiting (Real-Time Reception Mode only).

        Validates the form (one FormValidationError lists every bad field), moves the chat to
        ``left_message``, pushes ``offline_message.created`` and assigns the message to an
        agent of the chat's group by its strategy (or keeps it in the submission pool).
        """
        return self._run(self._core.submit_message(ChatId(chat_id), values, self._now(now)))

    def reply_offline_message(
        self, chat_id: str, agent_id: str, text: str, *, now: float | None = None
    ) -> Message:
        """An agent answers a left message (pushed by webhook); opens the sticky window."""
        return self._run(
            self._core.reply_offline_message(
                ChatId(chat_id), AgentId(agent_id), text, self._now(now)
            )
        )

    def invite_rating(self, chat_id: str, *, by: str, now: float | None = None) -> Chat:
        """The agent invites the customer to rate the chat, storing ``invite_prompt`` and
        scheduling the reminder with it (InvalidTransitionError ``invite:<refusal>`` if the
        chat's rules refuse, e.g. ``invite:min_interval``)."""
        return self._run(self._core.invite_rating(ChatId(chat_id), by, self._now(now)))

    def rate(
        self,
        chat_id: str,
        level: int,
        *,
        tags: Sequence[str] = (),
        comment: str = "",
        resolved: bool | None = None,
        now: float | None = None,
    ) -> Chat:
        """The customer rates the chat (RatingRefusedError / FormValidationError if refused)."""
        return self._run(
            self._core.rate(
                ChatId(chat_id),
                level=level,
                tags=tags,
                comment=comment,
                resolved=resolved,
                now=self._now(now),
            )
        )

    def agent_view(self, chat_id: str) -> Chat:
        """The chat as its agent may see it (the rating hidden when not visible to agents)."""
        return agent_view(self.settings.satisfaction, self.get_chat(chat_id))

    def tick(self, now: float | None = None, *, limit: int = 1000) -> int:
        """Fire the deadlines due at ``now`` (at most ``limit``); returns how many fired.
        Also purges a bounded batch of chats whose retention ran out, when one is due
        (``retention.purge_on_tick``, see :meth:`purge`)."""
        return self._run(self._core.tick(self._now(now), limit))

    def purge(self, *, now: float | None = None, limit: int | None = None) -> int:
        """Delete the chats that are over (ended, abandoned, answered left messages) whose
        last change is older than ``retention.ended_chats_s`` at ``now``, with their messages:
        up to ``limit`` (default ``retention.purge_batch``) of them, oldest first; returns how
        many. Nothing when the setting is 0 (keep forever). Open chats and unacknowledged
        outbox events are never touched. ``tick()`` does this by itself unless
        ``retention.purge_on_tick`` is False (see ``docs/deployment.md``)."""
        return self._run(self._core.purge(self._now(now), limit))

    def reconcile(self, *, now: float | None = None) -> dict[str, int]:
        """Repair every disagreement between chats and their indexes, then drain; safe at any
        moment, during traffic. Returns how many slots were released and claimed, chats
        requeued, entries removed, chats drained (see ``docs/deployment.md``)."""
        return self._run(self._core.reconcile(self._now(now)))

    # Chat Monitoring: the live snapshot and the supervisor's actions (docs/monitoring.md).
    # Who may act is the host's decision: ``role`` is recorded in the event, never checked.
    def monitor(self, *, alerts: int = 20, now: float | None = None) -> Snapshot:
        """The live snapshot: per skill group its waiting line (length, longest and estimated
        wait), agents by status, free slots and active chats; every agent's load; the last
        ``alerts`` moderation alerts. Read from the stores' indexes, never a scan of chats."""
        return self._run(self._core.monitor(self._now(now), alerts))

    def observe(self, sink: EventSink) -> None:
        """Feed every committed event to ``sink`` too (e.g. :class:`chatmgmt.monitoring.
        ChatMetrics`), after the host's event sink; a failing sink is logged and skipped."""
        self._sinks.events = fan_out(self._sinks.events, sink)
        self._core.emits = True
        bind = getattr(sink, "bind", None)
        if callable(bind):
            bind(self.monitor)

    def handoff(
        self,
        chat_id: str,
        *,
        reason: str,
        fields: Mapping[str, Any] | None = None,
        by: str = "bot",
        skill_group: str | None = None,
        now: float | None = None,
    ) -> Chat:
        """The bot hands a chat in the bot stage to a human: it waits for an agent from now
        on (``chat.handed_off`` with ``reason`` and ``fields``) and is routed at once, the
        bot's context in ``route_reason["handoff"]``. ``skill_group`` routes it to that group.
        InvalidTransitionError when the chat is not in the bot stage (it ended meanwhile, or
        was handed off already); ValidationError names a bad ``reason`` or ``fields`` part."""
        return self._run(
            self._core.handoff(
                ChatId(chat_id), reason, fields, by, self._now(now), skill_group=skill_group
            )
        )

    def tag_chat(self, chat_id: str, *tags: str, by: str, now: float | None = None) -> Chat:
        """Add ``tags`` to the chat (``chat.tagged``; tags it has already change nothing).
        ValidationError names a bad tag (``tags[i]``)."""
        return self._run(self._core.tag_chat(ChatId(chat_id), tags, by, self._now(now)))

    def reopen(
        self,
        chat_id: str,
        *,
        to: Literal["pool", "last_agent"] = "pool",
        by: str,
        now: float | None = None,
    ) -> Chat:
        """Reopen an ended Always On chat into its group's pool (then routed like any waiting
        chat) or to its last agent (below its limit; the pool when the agent is full, offline
        or gone, ``chat.reopened`` saying why). ReopenRefusedError: a Real-Time chat, a chat
        not ended, or one whose retention ran out."""
        return self._run(self._core.reopen(ChatId(chat_id), to, by, self._now(now)))

    def untag_chat(self, chat_id: str, *tags: str, by: str, now: float | None = None) -> Chat:
        """Remove ``tags`` from the chat (``chat.untagged``; tags it lacks change nothing)."""
        return self._run(
            self._core.tag_chat(ChatId(chat_id), tags, by, self._now(now), remove=True)
        )

    def join_chat(
        self, chat_id: str, supervisor: str, *, role: str, now: float | None = None
    ) -> Chat:
        """A supervisor joins an open chat as an observer (``supervisor.joined``)."""
        return self._run(self._core.join_chat(ChatId(chat_id), supervisor, role, self._now(now)))

    def leave_chat(
        self, chat_id: str, supervisor: str, *, role: str, now: float | None = None
    ) -> Chat:
        """A supervisor stops observing a chat (``supervisor.left``)."""
        return self._run(
            self._core.join_chat(ChatId(chat_id), supervisor, role, self._now(now), leave=True)
        )

    def whisper(
        self, chat_id: str, supervisor: str, text: str, *, role: str, now: float | None = None
    ) -> Message:
        """A note for the agent only (role ``whisper``, ``supervisor.whispered``): never sent to
        the customer, never the agent's reply, no timer moves."""
        return self._run(
            self._core.whisper(ChatId(chat_id), supervisor, role, text, self._now(now))
        )

    def take_over(
        self, chat_id: str, supervisor: str, *, role: str, now: float | None = None
    ) -> Chat:
        """The supervisor (a registered agent, ONLINE, below its limit) takes the chat
        (``supervisor.took_over`` with the transfer or assignment, one unit)."""
        return self._run(self._core.take_over(ChatId(chat_id), supervisor, role, self._now(now)))

    def supervisor_end(
        self, chat_id: str, supervisor: str, *, role: str, now: float | None = None
    ) -> Chat:
        """A supervisor ends the chat (``supervisor.ended`` with ``chat.ended``, one unit)."""
        return self._run(
            self._core.supervisor_end(ChatId(chat_id), supervisor, role, self._now(now))
        )


class AsyncChatManager(_Base):
    """The async manager over async ports; the same operations as :class:`ChatManager`."""

    def __init__(
        self,
        storage: AsyncStorage | None = None,
        settings: ChatSettings | None = None,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        strategies: Mapping[str, Strategy] | None = None,
        event_sink: EventSink | None = None,
        message_sink: MessageSink | None = None,
        word_filter: SensitiveWordFilter | None = None,
        ids: Callable[[], str] | None = None,
    ) -> None:
        super().__init__(
            settings, clock, rng, strategies, event_sink, message_sink, word_filter, ids
        )
        self._sinks = _AsyncSinks(event_sink, message_sink)
        if storage is None:
            from .storage.memory import MemoryStorage

            storage = MemoryStorage().aio()
        self.storage: AsyncStorage = storage
        self._core.census_in_unit = getattr(storage, "reports_census", False) is True

    async def _run(self, gen: Generator[Op, Any, T]) -> T:
        storage = self.storage
        sinks = self._sinks
        try:
            fn, args, kwargs = next(gen)
            while True:
                bound = resolve(fn, storage, sinks)
                try:
                    result = bound(*args, **kwargs)
                    if fn not in _SINK_CALLS:
                        result = await result
                except Exception as exc:
                    fn, args, kwargs = gen.throw(exc)
                    continue
                fn, args, kwargs = gen.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    async def register_agent(self, agent: Agent, *, now: float | None = None) -> AgentLoad:
        """See :meth:`ChatManager.register_agent`."""
        return await self._run(self._core.put_agent(agent, self._now(now)))

    async def set_agent_status(
        self, agent_id: str, status: AgentStatus, *, now: float | None = None
    ) -> AgentLoad:
        """See :meth:`ChatManager.set_agent_status`."""
        return await self._run(
            self._core.set_agent_status(AgentId(agent_id), AgentStatus(status), self._now(now))
        )

    async def set_reception_limit(
        self, agent_id: str, limit: int, *, now: float | None = None
    ) -> AgentLoad:
        """See :meth:`ChatManager.set_reception_limit`."""
        return await self._run(
            self._core.set_reception_limit(AgentId(agent_id), limit, self._now(now))
        )

    async def agent(self, agent_id: str) -> AgentLoad:
        """See :meth:`ChatManager.agent`."""
        return await self._run(self._core.load(AgentId(agent_id)))

    async def open_chat(
        self,
        customer: CustomerInfo,
        *,
        skill_group: str = "",
        request: RouteRequest | None = None,
        designated_agent: str | None = None,
        designated_group: str | None = None,
        strict: bool = False,
        queue_first: bool = False,
        identity_signature: str | None = None,
        chat_id: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        bot: str | None = None,
        now: float | None = None,
    ) -> Chat:
        """See :meth:`ChatManager.open_chat`."""
        req = self._request(request, designated_agent, designated_group, strict, queue_first)
        return await self._run(
            self._core.open_chat(
                customer,
                req,
                skill_group=skill_group,
                signature=identity_signature,
                chat_id=chat_id,
                attributes=attributes,
                now=self._now(now),
                bot=bot,
            )
        )

    async def get_chat(self, chat_id: str) -> Chat:
        """See :meth:`ChatManager.get_chat`."""
        return await self._run(self._core.get_chat(ChatId(chat_id)))

    async def list_chats(
        self, *, state: ChatState | None = None, agent_id: str | None = None
    ) -> list[Chat]:
        """See :meth:`ChatManager.list_chats`."""
        return await self.storage.chats.list(state, AgentId(agent_id) if agent_id else None)

    async def messages(self, chat_id: str) -> list[Message]:
        """See :meth:`ChatManager.messages`."""
        return await self.storage.chats.messages(ChatId(chat_id))

    async def customer(self, partner_id: str) -> Customer | None:
        """See :meth:`ChatManager.customer`."""
        return await self.storage.customers.get(partner_id)

    async def queue_status(self, chat_id: str, *, now: float | None = None) -> QueueStatus | None:
        """See :meth:`ChatManager.queue_status`."""
        return await self._run(self._core.queue_status(ChatId(chat_id), self._now(now)))

    async def end_chat(
        self,
        chat_id: str,
        *,
        reason: EndReason = EndReason.AGENT,
        by: str = "system",
        now: float | None = None,
    ) -> Chat:
        """See :meth:`ChatManager.end_chat`."""
        if reason.__class__ is not EndReason:  # a member needs no enum call
            reason = EndReason(reason)
        return await self._run(self._core.end_chat(ChatId(chat_id), reason, by, self._now(now)))

    async def abandon(self, chat_id: str, *, now: float | None = None) -> Chat:
        """See :meth:`ChatManager.abandon`."""
        return await self._run(
            self._core.end_chat(
                ChatId(chat_id),
                EndReason.CUSTOMER,
                "customer",
                self._now(now),
                abandon=True,
            )
        )

    async def transfer(
        self,
        chat_id: str,
        *,
        to_agent: str | None = None,
        to_group: str | None = None,
        by: str = "system",
        now: float | None = None,
    ) -> Chat:
        """See :meth:`ChatManager.transfer`."""
        return await self._run(
            self._core.transfer(
                ChatId(chat_id),
                to_agent=AgentId(to_agent) if to_agent else None,
                to_group=to_group,
                by=by,
                now=self._now(now),
            )
        )

    async def assign(
        self, chat_id: str, agent_id: str, *, by: str = "admin", now: float | None = None
    ) -> Chat:
        """See :meth:`ChatManager.assign`."""
        return await self._run(
            self._core.assign(ChatId(chat_id), AgentId(agent_id), by, self._now(now))
        )

    async def unassign(
        self,
        chat_id: str,
        *,
        by: str = "admin",
        exclude: bool = False,
        now: float | None = None,
    ) -> Chat:
        """See :meth:`ChatManager.unassign`."""
        return await self._run(
            self._core.unassign(ChatId(chat_id), by, self._now(now), exclude=exclude)
        )

    async def accept_offer(self, chat_id: str, agent_id: str, *, now: float | None = None) -> Chat:
        """See :meth:`ChatManager.accept_offer`."""
        return await self._run(
            self._core.accept_offer(ChatId(chat_id), AgentId(agent_id), self._now(now))
        )

    async def decline_offer(
        self, chat_id: str, agent_id: str, *, reason: str = "", now: float | None = None
    ) -> Chat:
        """See :meth:`ChatManager.decline_offer`."""
        return await self._run(
            self._core.decline_offer(ChatId(chat_id), AgentId(agent_id), reason, self._now(now))
        )

    async def take_chat(
        self,
        agent_id: str,
        *,
        group: str | None = None,
        chat_id: str | None = None,
        now: float | None = None,
    ) -> Chat | None:
        """See :meth:`ChatManager.take_chat`."""
        return await self._run(
            self._core.take_chat(
                AgentId(agent_id),
                group,
                ChatId(chat_id) if chat_id is not None else None,
                self._now(now),
            )
        )

    async def send_message(
        self,
        chat_id: str,
        text: str,
        *,
        role: MessageRole = MessageRole.CUSTOMER,
        sender: str = "",
        now: float | None = None,
    ) -> Message:
        """See :meth:`ChatManager.send_message`."""
        return await self._run(
            self._core.send_message(
                ChatId(chat_id), MessageRole(role), sender, text, self._now(now)
            )
        )

    async def set_inactive(
        self, chat_id: str, inactive: bool = True, *, now: float | None = None
    ) -> Chat:
        """See :meth:`ChatManager.set_inactive`."""
        return await self._run(self._core.set_inactive(ChatId(chat_id), inactive, self._now(now)))

    async def hold_chat(
        self, chat_id: str, *, by: str, reason: str = "", now: float | None = None
    ) -> Chat:
        """See :meth:`ChatManager.hold_chat`."""
        return await self._run(self._core.hold_chat(ChatId(chat_id), by, reason, self._now(now)))

    async def resume_chat(self, chat_id: str, *, by: str, now: float | None = None) -> Chat:
        """See :meth:`ChatManager.resume_chat`."""
        return await self._run(self._core.resume_chat(ChatId(chat_id), by, self._now(now)))

    async def submit_message(
        self, chat_id: str, values: Mapping[str, Any], *, now: float | None = None
    ) -> Chat:
        """See :meth:`ChatManager.submit_message`."""
        return await self._run(self._core.submit_message(ChatId(chat_id), values, self._now(now)))

    async def reply_offline_message(
        self, chat_id: str, agent_id: str, text: str, *, now: float | None = None
    ) -> Message:
        """See :meth:`ChatManager.reply_offline_message`."""
        return await self._run(
            self._core.reply_offline_message(
                ChatId(chat_id), AgentId(agent_id), text, self._now(now)
            )
        )

    async def invite_rating(self, chat_id: str, *, by: str, now: float | None = None) -> Chat:
        """See :meth:`ChatManager.invite_rating`."""
        return await self._run(self._core.invite_rating(ChatId(chat_id), by, self._now(now)))

    async def rate(
        self,
        chat_id: str,
        level: int,
        *,
        tags: Sequence[str] = (),
        comment: str = "",
        resolved: bool | None = None,
        now: float | None = None,
    ) -> Chat:
        """See :meth:`ChatManager.rate`."""
        return await self._run(
            self._core.rate(
                ChatId(chat_id),
                level=level,
                tags=tags,
                comment=comment,
                resolved=resolved,
                now=self._now(now),
            )
        )

    async def agent_view(self, chat_id: str) -> Chat:
        """See :meth:`ChatManager.agent_view`."""
        return agent_view(self.settings.satisfaction, await self.get_chat(chat_id))

    async def tick(self, now: float | None = None, *, limit: int = 1000) -> int:
        """See :meth:`ChatManager.tick`."""
        return await self._run(self._core.tick(self._now(now), limit))

    async def purge(self, *, now: float | None = None, limit: int | None = None) -> int:
        """See :meth:`ChatManager.purge`."""
        return await self._run(self._core.purge(self._now(now), limit))

    async def reconcile(self, *, now: float | None = None) -> dict[str, int]:
        """See :meth:`ChatManager.reconcile`."""
        return await self._run(self._core.reconcile(self._now(now)))

    async def monitor(self, *, alerts: int = 20, now: float | None = None) -> Snapshot:
        """See :meth:`ChatManager.monitor`."""
        return await self._run(self._core.monitor(self._now(now), alerts))

    def observe(self, sink: EventSink) -> None:
        """See :meth:`ChatManager.observe` (gauges: feed ``record_snapshot`` yourself)."""
        self._sinks.events = fan_out(self._sinks.events, sink)
        self._core.emits = True

    async def handoff(
        self,
        chat_id: str,
        *,
        reason: str,
        fields: Mapping[str, Any] | None = None,
        by: str = "bot",
        skill_group: str | None = None,
        now: float | None = None,
    ) -> Chat:
        """See :meth:`ChatManager.handoff`."""
        return await self._run(
            self._core.handoff(
                ChatId(chat_id), reason, fields, by, self._now(now), skill_group=skill_group
            )
        )

    async def tag_chat(self, chat_id: str, *tags: str, by: str, now: float | None = None) -> Chat:
        """See :meth:`ChatManager.tag_chat`."""
        return await self._run(self._core.tag_chat(ChatId(chat_id), tags, by, self._now(now)))

    async def reopen(
        self,
        chat_id: str,
        *,
        to: Literal["pool", "last_agent"] = "pool",
        by: str,
        now: float | None = None,
    ) -> Chat:
        """See :meth:`ChatManager.reopen`."""
        return await self._run(self._core.reopen(ChatId(chat_id), to, by, self._now(now)))

    async def untag_chat(self, chat_id: str, *tags: str, by: str, now: float | None = None) -> Chat:
        """See :meth:`ChatManager.untag_chat`."""
        return await self._run(
            self._core.tag_chat(ChatId(chat_id), tags, by, self._now(now), remove=True)
        )

    async def join_chat(
        self, chat_id: str, supervisor: str, *, role: str, now: float | None = None
    ) -> Chat:
        """See :meth:`ChatManager.join_chat`."""
        return await self._run(
            self._core.join_chat(ChatId(chat_id), supervisor, role, self._now(now))
        )

    async def leave_chat(
        self, chat_id: str, supervisor: str, *, role: str, now: float | None = None
    ) -> Chat:
        """See :meth:`ChatManager.leave_chat`."""
        return await self._run(
            self._core.join_chat(ChatId(chat_id), supervisor, role, self._now(now), leave=True)
        )

    async def whisper(
        self, chat_id: str, supervisor: str, text: str, *, role: str, now: float | None = None
    ) -> Message:
        """See :meth:`ChatManager.whisper`."""
        return await self._run(
            self._core.whisper(ChatId(chat_id), supervisor, role, text, self._now(now))
        )

    async def take_over(
        self, chat_id: str, supervisor: str, *, role: str, now: float | None = None
    ) -> Chat:
        """See :meth:`ChatManager.take_over`."""
        return await self._run(
            self._core.take_over(ChatId(chat_id), supervisor, role, self._now(now))
        )

    async def supervisor_end(
        self, chat_id: str, supervisor: str, *, role: str, now: float | None = None
    ) -> Chat:
        """See :meth:`ChatManager.supervisor_end`."""
        return await self._run(
            self._core.supervisor_end(ChatId(chat_id), supervisor, role, self._now(now))
        )
