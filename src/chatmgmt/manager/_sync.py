"""The sync manager, :class:`ChatManager`: it runs each operation's core generator, calling the
sync ports it yields (re-exported by :mod:`chatmgmt.manager`)."""

from __future__ import annotations

import random
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any, Literal, TypeVar

from .._core import Op, QueueStatus, resolve
from .._core._pick import check_sync_strategies
from ..assignment import RouteRequest
from ..assignment._strategies import Strategy
from ..lifecycle import agent_view
from ..model import (
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
from ..moderation import SensitiveWordFilter
from ..monitoring import Snapshot
from ..ports import Clock, EventSink, MessageSink, Storage
from ..settings import ChatSettings
from ._base import _Base

T = TypeVar("T")


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

    Every operation's ``now`` (seconds; ``clock.now()`` when left out) must be a finite
    number: anything else (a string, a bool, NaN, an infinity) raises
    :class:`~chatmgmt.errors.ValidationError` before anything is read or stored.
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
            from ..storage.memory import MemoryStorage

            storage = MemoryStorage()
        self.storage: Storage = storage
        self._stores_in(storage)
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
        return self._run(self._register_agent(agent, now))

    def set_agent_status(
        self, agent_id: str, status: AgentStatus, *, now: float | None = None
    ) -> AgentLoad:
        """Change an agent's status; coming ONLINE drains the queues it serves."""
        return self._run(self._set_agent_status(agent_id, status, now))

    def set_reception_limit(
        self, agent_id: str, limit: int, *, now: float | None = None
    ) -> AgentLoad:
        """Change an agent's reception limit; a higher limit drains the queues."""
        return self._run(self._set_reception_limit(agent_id, limit, now))

    def agent(self, agent_id: str) -> AgentLoad:
        """An agent and its live load (NotFoundError if unknown)."""
        return self._run(self._agent(agent_id))

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
        return self._run(
            self._open_chat(
                customer,
                skill_group,
                request,
                designated_agent,
                designated_group,
                strict,
                queue_first,
                identity_signature,
                chat_id,
                attributes,
                bot,
                now,
            )
        )

    def get_chat(self, chat_id: str) -> Chat:
        """A chat (NotFoundError if unknown)."""
        return self._run(self._get_chat(chat_id))

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
        return self._run(self._queue_status(chat_id, now))

    def end_chat(
        self,
        chat_id: str,
        *,
        reason: EndReason = EndReason.AGENT,
        by: str = "system",
        now: float | None = None,
    ) -> Chat:
        """End a chat, recording who and why; frees the agent's slot and drains the queue."""
        return self._run(self._end_chat(chat_id, reason, by, now))

    def abandon(self, chat_id: str, *, now: float | None = None) -> Chat:
        """The customer left the queue before an agent took the chat."""
        return self._run(self._abandon(chat_id, now))

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
        return self._run(self._transfer(chat_id, to_agent, to_group, by, now))

    def assign(
        self, chat_id: str, agent_id: str, *, by: str = "admin", now: float | None = None
    ) -> Chat:
        """An admin assigns a queued or unassigned chat to an agent explicitly."""
        return self._run(self._assign(chat_id, agent_id, by, now))

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
        return self._run(self._unassign(chat_id, by, exclude, now))

    def accept_offer(self, chat_id: str, agent_id: str, *, now: float | None = None) -> Chat:
        """The agent accepts the chat offered to them (offers on): it becomes ACTIVE with them.

        InvalidTransitionError when the chat is not offered (any more: it expired, or the
        customer left); NotAllowedError when it is offered to another agent."""
        return self._run(self._accept_offer(chat_id, agent_id, now))

    def decline_offer(
        self, chat_id: str, agent_id: str, *, reason: str = "", now: float | None = None
    ) -> Chat:
        """The agent declines the chat offered to them, saying ``reason``: it goes to the next
        agent of its group (never back to this one) or waits again at the place it had."""
        return self._run(self._decline_offer(chat_id, agent_id, reason, now))

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
        return self._run(self._take_chat(agent_id, group, chat_id, now))

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
        return self._run(self._send_message(chat_id, text, role, sender, now))

    def set_inactive(
        self, chat_id: str, inactive: bool = True, *, now: float | None = None
    ) -> Chat:
        """Mark a chat inactive (both sides silent) or active again.

        With ``assignment.inactive_chats_count`` off, an inactive chat stops counting toward
        its agent's reception limit (the freed slot drains the queue); when it becomes active
        again it counts again, even if that takes the agent over the limit for a while.
        """
        return self._run(self._set_inactive(chat_id, inactive, now))

    def hold_chat(
        self, chat_id: str, *, by: str, reason: str = "", now: float | None = None
    ) -> Chat:
        """Put an active chat on hold (``chat.held``): its inactivity deadlines stop, only
        ``end_of_chat.hold_close_after_s`` runs; with ``assignment.on_hold_chats_count`` off
        its slot frees in the same unit. It resumes by :meth:`resume_chat` or when the customer
        writes. On hold already: nothing changes."""
        return self._run(self._hold_chat(chat_id, by, reason, now))

    def resume_chat(self, chat_id: str, *, by: str, now: float | None = None) -> Chat:
        """Resume a chat on hold (``chat.resumed``); a freed slot counts again (even above
        the limit, see ``docs/lifecycle.md#hold``). Not on hold: nothing changes."""
        return self._run(self._resume_chat(chat_id, by, now))

    def submit_message(
        self, chat_id: str, values: Mapping[str, Any], *, now: float | None = None
    ) -> Chat:
        """Leave a message instead of waiting (Real-Time Reception Mode only).

        Validates the form (one FormValidationError lists every bad field), moves the chat to
        ``left_message``, pushes ``offline_message.created`` and assigns the message to an
        agent of the chat's group by its strategy (or keeps it in the submission pool).
        """
        return self._run(self._submit_message(chat_id, values, now))

    def reply_offline_message(
        self, chat_id: str, agent_id: str, text: str, *, now: float | None = None
    ) -> Message:
        """An agent answers a left message (pushed by webhook); opens the sticky window."""
        return self._run(self._reply_offline_message(chat_id, agent_id, text, now))

    def invite_rating(self, chat_id: str, *, by: str, now: float | None = None) -> Chat:
        """The agent invites the customer to rate the chat, storing ``invite_prompt`` and
        scheduling the reminder with it (InvalidTransitionError ``invite:<refusal>`` if the
        chat's rules refuse, e.g. ``invite:min_interval``)."""
        return self._run(self._invite_rating(chat_id, by, now))

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
        return self._run(self._rate(chat_id, level, tags, comment, resolved, now))

    def agent_view(self, chat_id: str) -> Chat:
        """The chat as its agent may see it (the rating hidden when not visible to agents)."""
        return agent_view(self.settings.satisfaction, self.get_chat(chat_id))

    def tick(self, now: float | None = None, *, limit: int = 1000) -> int:
        """Fire the deadlines due at ``now`` (at most ``limit``); returns how many fired.
        Also purges a bounded batch of chats whose retention ran out, when one is due
        (``retention.purge_on_tick``, see :meth:`purge`)."""
        return self._run(self._tick(now, limit))

    def purge(self, *, now: float | None = None, limit: int | None = None) -> int:
        """Delete the chats that are over (ended, abandoned, answered left messages) whose
        last change is older than ``retention.ended_chats_s`` at ``now``, with their messages:
        up to ``limit`` (default ``retention.purge_batch``) of them, oldest first; returns how
        many. Nothing when the setting is 0 (keep forever). Open chats and unacknowledged
        outbox events are never touched. ``tick()`` does this by itself unless
        ``retention.purge_on_tick`` is False (see ``docs/deployment.md``)."""
        return self._run(self._purge(now, limit))

    def reconcile(self, *, now: float | None = None) -> dict[str, int]:
        """Repair every disagreement between chats and their indexes, then drain; safe at any
        moment, during traffic. Returns how many slots were released and claimed, chats
        requeued, entries removed, chats drained (see ``docs/deployment.md``)."""
        return self._run(self._reconcile(now))

    # Chat Monitoring: the live snapshot and the supervisor's actions (docs/monitoring.md).
    # Who may act is the host's decision: ``role`` is recorded in the event, never checked.
    def monitor(
        self, *, alerts: int = 20, on_hold: bool = False, now: float | None = None
    ) -> Snapshot:
        """The live snapshot: per skill group its waiting line (length, longest and estimated
        wait), agents by status, free slots and active chats; every agent's load; the last
        ``alerts`` moderation alerts. Read from the stores' indexes, never a scan of chats.
        With ``on_hold``, also how many chats are on hold per agent (``Snapshot.on_hold``)
        and per group (``GroupView.on_hold``), read from the records of the chats the agents
        hold: one more read per held chat."""
        return self._run(self._monitor(alerts, on_hold, now))

    def observe(self, sink: EventSink) -> None:
        """Feed every committed event to ``sink`` too (e.g. :class:`chatmgmt.monitoring.
        ChatMetrics`), after the host's event sink; a failing sink is logged and skipped."""
        self._observe(sink)
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
        return self._run(self._handoff(chat_id, reason, fields, by, skill_group, now))

    def tag_chat(self, chat_id: str, *tags: str, by: str, now: float | None = None) -> Chat:
        """Add ``tags`` to the chat (``chat.tagged``; tags it has already change nothing).
        ValidationError names a bad tag (``tags[i]``)."""
        return self._run(self._tag_chat(chat_id, tags, by, now))

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
        return self._run(self._reopen(chat_id, to, by, now))

    def untag_chat(self, chat_id: str, *tags: str, by: str, now: float | None = None) -> Chat:
        """Remove ``tags`` from the chat (``chat.untagged``; tags it lacks change nothing)."""
        return self._run(self._untag_chat(chat_id, tags, by, now))

    def join_chat(
        self, chat_id: str, supervisor: str, *, role: str, now: float | None = None
    ) -> Chat:
        """A supervisor joins an open chat as an observer (``supervisor.joined``)."""
        return self._run(self._join_chat(chat_id, supervisor, role, now))

    def leave_chat(
        self, chat_id: str, supervisor: str, *, role: str, now: float | None = None
    ) -> Chat:
        """A supervisor stops observing a chat (``supervisor.left``)."""
        return self._run(self._leave_chat(chat_id, supervisor, role, now))

    def whisper(
        self, chat_id: str, supervisor: str, text: str, *, role: str, now: float | None = None
    ) -> Message:
        """A note for the agent only (role ``whisper``, ``supervisor.whispered``): never sent to
        the customer, never the agent's reply, no timer moves."""
        return self._run(self._whisper(chat_id, supervisor, text, role, now))

    def take_over(
        self, chat_id: str, supervisor: str, *, role: str, now: float | None = None
    ) -> Chat:
        """The supervisor (a registered agent, ONLINE, below its limit) takes the chat
        (``supervisor.took_over`` with the transfer or assignment, one unit)."""
        return self._run(self._take_over(chat_id, supervisor, role, now))

    def supervisor_end(
        self, chat_id: str, supervisor: str, *, role: str, now: float | None = None
    ) -> Chat:
        """A supervisor ends the chat (``supervisor.ended`` with ``chat.ended``, one unit)."""
        return self._run(self._supervisor_end(chat_id, supervisor, role, now))
