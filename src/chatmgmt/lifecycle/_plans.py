"""Pure planners of a chat's lifecycle changes: end, messages, invitations, prompts, left
messages. Each takes the chat as stored now and returns the change (:class:`~chatmgmt._plan.
Plan`, or the new chat and its events); the core applies it as one unit of work."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._plan import Items, Plan, leaving, new_plan
from ..errors import InvalidTransitionError
from ..model import (
    _OPEN_STATES,
    AgentId,
    Chat,
    ChatState,
    EndReason,
    Message,
    MessageId,
    MessageRole,
    ReceptionMode,
    Sticky,
    Timer,
    copier,
    evolve,
    system_message,
)
from ..ports import QueuePush
from ..settings import ChatSettings, SatisfactionSettings, SubmissionMode, resolve
from ..webhook import _payloads as payloads
from ._bot import skips_satisfaction
from ._deadlines import ESCALATION_KEY, QUEUED_AT_KEY, TimerKind, mark_fired, track
from ._forms import validate_submission
from ._invitations import invitation_extras, satisfaction_rules
from ._reopen import reopened
from ._satisfaction import InviteTrigger, attributed_agent, invite, satisfaction_of
from ._state import ChatEvent, check_end, transition

__all__ = [
    "plan_end",
    "plan_invite",
    "plan_left_message",
    "plan_message",
    "plan_prompt",
    "submission_pool",
]


def submission_pool(group: str) -> str:
    """The pool of left messages of a skill group."""
    return f"submissions/{group}"


def plan_invite(
    settings: SatisfactionSettings,
    chat: Chat,
    trigger: InviteTrigger,
    by: str,
    now: float,
    *,
    customer_invited_at: float | None = None,
) -> tuple[Chat, Items]:
    """``chat`` with the invitation recorded and its event, when the rules invite
    (``settings``: the chat's rules, :func:`satisfaction_rules`)."""
    invited = invite(
        settings,
        chat,
        satisfaction_of(chat),
        trigger=trigger,
        now=now,
        customer_invited_at=customer_invited_at,
    )
    if invited is None:
        return chat, []
    item = payloads.satisfaction_invited(attributed_agent(chat), by, invited.invitations)
    return evolve(chat, satisfaction=invited.to_dict()), [item]


_ended = copier(
    Chat,
    "state",
    "ended_at",
    "end_reason",
    "ended_by",
    "queue",
    "offer_expires_at",
    QUEUED_AT_KEY,
    ESCALATION_KEY,
)
"""plan_end's copy of the ending chat, when :func:`track` changes exactly these two fields."""
_ENDED_TRACKED = {QUEUED_AT_KEY, ESCALATION_KEY}
# read on every end: module globals (3.11 does not specialize class attribute reads)
_ABANDON_EVENT = ChatEvent.ABANDON
_END_EVENT = ChatEvent.END
_OFFERED = ChatState.OFFERED
_BOT = ChatState.BOT
_INACTIVITY_END = EndReason.CUSTOMER_INACTIVITY
_HOLD_TIMEOUT = EndReason.HOLD_TIMEOUT
_CHAT_END = InviteTrigger.CHAT_END


def plan_end(
    settings: ChatSettings,
    chat: Chat,
    reason: EndReason,
    by: str,
    now: float,
    *,
    message_id: MessageId,
    extra: Sequence[tuple[str, Mapping[str, Any]]] = (),
    abandon: bool = False,
    customer_invited_at: float | None = None,
) -> Plan:
    """The chat ended (or abandoned) by ``by`` for ``reason``, with everything it implies in
    the same unit: its slot released, its queue entry and sticky wait dropped, the end prompt
    (a system message with ``message_id``), the satisfaction invitation (with its
    ``invite_prompt`` after the end prompt, id ``message_id + "-rate"``, and its reminder
    timer; ``customer_invited_at`` as for :func:`~chatmgmt.lifecycle.invitation_refusal`;
    none for a chat ending in the bot stage when ``bot.skip_satisfaction``), the sticky
    mark, the events."""
    if abandon:
        state = transition(chat.id, chat.mode, chat.state, _ABANDON_EVENT)
        event = _ABANDON_EVENT
    else:
        state = check_end(chat.id, chat.mode, chat.state, reason)
        event = _END_EVENT
    tracked = track(chat, event, now)
    if tracked.keys() == _ENDED_TRACKED:  # the usual case: one generated copy, no keywords
        new = _ended(
            chat,
            state,
            now,
            reason,
            by,
            None,
            None,
            tracked[QUEUED_AT_KEY],
            tracked[ESCALATION_KEY],
        )
    else:
        new = evolve(
            chat,
            state=state,
            ended_at=now,
            end_reason=reason,
            ended_by=by,
            queue=None,
            offer_expires_at=None,
            **tracked,
        )
    sticky = None
    pid = chat.customer.partner_id
    agent = chat.agent_id if chat.state is not _OFFERED else None  # offered: unserved
    if pid and agent and settings.assignment.sticky.after_close_s:
        sticky = Sticky(pid, agent, now, "closed")
    items: Items
    if abandon:
        waited = now - (chat.queued_at if chat.queued_at is not None else now)
        items = [payloads.chat_abandoned(waited)]
    else:
        duration = now - chat.created_at
        # ``_value_``: the member's value without the ``value`` property's Python call
        items = [payloads.chat_ended(chat.agent_id, reason._value_, by, duration)]
    items.extend(extra)
    message = None
    more: tuple[Message, ...] = ()
    timers: tuple[Timer, ...] = ()
    if not abandon:
        eoc = settings.end_of_chat
        if eoc.channels or eoc.groups:  # overrides exist: this chat's section
            eoc = resolve(eoc, channel=chat.channel, group=chat.skill_group or None)
        prompt = eoc.timeout_prompt if reason is _INACTIVITY_END else eoc.end_prompt
        if reason is _HOLD_TIMEOUT:
            prompt = eoc.hold_close_prompt
        if prompt:
            message = system_message(message_id, chat.id, prompt, now)
            items.append(payloads.message_stored(message))
        if chat.state is not _BOT or not skips_satisfaction(settings.bot, chat):
            rules = satisfaction_rules(settings, new)
            new, invited = plan_invite(
                rules,
                new,
                _CHAT_END,
                "system",
                now,
                customer_invited_at=customer_invited_at,
            )
            if invited:
                items.extend(invited)
                rate_id = MessageId(f"{message_id}-rate")
                prompted, prompt_items, timers = invitation_extras(
                    rules, new, now, message_id=rate_id
                )
                items.extend(prompt_items)
                if prompted is not None and message is None:
                    message = prompted
                elif prompted is not None:
                    more = (prompted,)
    remove, cancel = leaving(chat)
    return new_plan(
        new,
        items,
        release=chat.agent_id if chat.state in _OPEN_STATES else None,  # state.is_open
        remove=remove,
        cancel=cancel,
        schedule=timers,
        message=message,
        sticky=sticky,
        owned=True,  # ``new`` is a copy made here (plan_invite copies it again or keeps it)
        more_messages=more,
    )


def plan_message(chat: Chat, message: Message, moderation: str, now: float) -> tuple[Chat, Items]:
    """The chat's new state and the events of one message. A customer's message to an ended
    Always On chat reopens it (:func:`~chatmgmt.lifecycle._reopen.reopened`: ``UNASSIGNED``;
    the caller checked :func:`~chatmgmt.lifecycle._reopen.check_reopen` and adds where it
    goes and its ``chat.reopened`` event)."""
    role = message.role
    event = {
        MessageRole.CUSTOMER: ChatEvent.CUSTOMER_MESSAGE,
        MessageRole.AGENT: ChatEvent.AGENT_MESSAGE,
    }.get(role)
    items: Items = [payloads.message_stored(message, moderation)]
    changes: dict[str, Any] = {}
    if event is ChatEvent.CUSTOMER_MESSAGE and chat.state is ChatState.ENDED:
        chat = reopened(chat, now)
    if event is not None:
        changes["state"] = transition(chat.id, chat.mode, chat.state, event)
    elif not chat.state.is_open and not (
        chat.state is ChatState.ENDED and chat.mode is ReceptionMode.ALWAYS_ON
    ):
        raise InvalidTransitionError(chat.id, chat.state.value, f"{role.value}_message")
    if role is MessageRole.CUSTOMER:
        changes["last_customer_message_at"] = now
        changes["inactive"] = False
    elif role is MessageRole.AGENT:
        changes["last_agent_message_at"] = now
        changes["agent_replied"] = True
        changes["inactive"] = False
    elif role is MessageRole.BOT and chat.bot is not None and not chat.bot.get("replied"):
        changes["bot"] = {**chat.bot, "replied": True}  # the bot answered (satisfaction)
    return evolve(chat, **changes), items


def plan_prompt(
    settings: ChatSettings, chat: Chat, timer: Timer, now: float, *, message_id: MessageId
) -> Plan:
    """A fired inactivity warning (to the customer) or no-reply reminder (to the agent): the
    system message, its event, and the deadline marked as fired."""
    eoc = resolve(settings.end_of_chat, channel=chat.channel, group=chat.skill_group or None)
    if timer.kind == TimerKind.INACTIVITY_WARN.value:
        text = eoc.warn_prompt
        end_at = float(timer.payload["basis"][0]) + eoc.end_after_s if eoc.end_after_s else None
        extra = payloads.inactivity_warned(end_at)
    else:
        text = eoc.agent_reminder_prompt
        extra = payloads.agent_reminded(chat.agent_id)
    message = system_message(message_id, chat.id, text, now)
    new = evolve(chat, **mark_fired(chat, timer))
    return Plan(new, [payloads.message_stored(message), extra], message=message)


def plan_left_message(
    settings: ChatSettings, chat: Chat, values: Mapping[str, Any], now: float
) -> Plan:
    """The customer leaves a message instead of waiting: the form validated, the chat in the
    group's submission pool, its slot and queue entry given up, the event."""
    submission = settings.submission
    state = transition(chat.id, chat.mode, chat.state, ChatEvent.LEAVE_MESSAGE)
    cleaned = validate_submission(submission, values, channel=chat.channel, group=chat.skill_group)
    mode = resolve(submission, channel=chat.channel, group=chat.skill_group or None).mode
    fields = {k: list(v) if isinstance(v, tuple) else v for k, v in cleaned.items()}
    new = evolve(
        chat,
        state=state,
        agent_id=None,
        queue=None,
        leave_message=None,
        submission={"mode": mode.value, "fields": fields, "at": now},
        **track(chat, ChatEvent.LEAVE_MESSAGE, now),
    )
    remove, cancel = leaving(chat)
    release: AgentId | None = chat.agent_id if chat.state.is_open else None
    items: Items = [payloads.offline_message_created(chat.id, mode.value, fields)]
    if mode is SubmissionMode.TICKET:
        items.append(payloads.ticket_created(chat, fields, now))
    return Plan(
        new,
        items,
        release=release,
        remove=remove,
        cancel=cancel,
        push=QueuePush(submission_pool(new.skill_group), now),
    )
