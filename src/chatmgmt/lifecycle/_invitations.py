"""What an invitation to rate brings with it, pure: the chat's own invitation rules, the
invitation's system message, the one reminder (its timer and its firing).

* :func:`satisfaction_rules` — the satisfaction rules of a chat (channel > group > global);
* :func:`invitation_extras` — the ``invite_prompt`` message and the reminder timer that go in
  the invitation's unit of work;
* :func:`plan_reminder` — the reminder when its timer fires, or None when it no longer applies.

The reminder is a timer of kind :data:`SATISFACTION_REMINDER` keyed by :func:`reminder_key`,
scheduled in the invitation's unit; the rating's unit cancels it. A timer that fires for a
chat rated, reminded, purged or out of its rating window changes nothing.
"""

from __future__ import annotations

import attrs

from .._plan import Items, Plan
from ..model import Chat, ChatState, Message, MessageId, Timer, evolve, system_message
from ..settings import ChatSettings, SatisfactionSettings, resolve_satisfaction
from ..webhook import _payloads as payloads
from ._satisfaction import _window_closed, attributed_agent, satisfaction_of

__all__ = [
    "SATISFACTION_REMINDER",
    "invitation_extras",
    "plan_reminder",
    "reminder_key",
    "satisfaction_rules",
]

SATISFACTION_REMINDER = "satisfaction_reminder"
"""The timer kind of a rating reminder."""


def reminder_key(chat_id: str) -> str:
    """The timer key of a chat's rating reminder."""
    return f"{chat_id}:{SATISFACTION_REMINDER}"


def satisfaction_rules(settings: ChatSettings, chat: Chat) -> SatisfactionSettings:
    """The satisfaction rules of ``chat``: ``satisfaction.channels.<its channel>`` over
    ``satisfaction.group_rules.<its group>`` over the global section
    (:func:`~chatmgmt.settings.resolve_satisfaction`)."""
    section = settings.satisfaction
    if not section.group_rules and not section.channels:
        return section
    return resolve_satisfaction(section, channel=chat.channel, group=chat.skill_group or None)


def invitation_extras(
    settings: SatisfactionSettings, chat: Chat, now: float, *, message_id: MessageId
) -> tuple[Message | None, Items, tuple[Timer, ...]]:
    """What goes with an invitation made ``now`` (``settings`` are the chat's rules): the
    ``invite_prompt`` system message (None when ``""``) and its event, and the reminder timer
    (none when ``reminder_after_s`` is 0 or the chat was reminded already)."""
    message = None
    items: Items = []
    if settings.invite_prompt:
        text = settings.invite_prompt
        message = system_message(message_id, chat.id, text, now)
        items.append(payloads.message_stored(message))
    timers: tuple[Timer, ...] = ()
    if settings.reminder_after_s and satisfaction_of(chat).reminded_at is None:
        key = reminder_key(chat.id)
        due = now + settings.reminder_after_s
        payload = {"invited_at": now}
        timers = (Timer(key, due, chat.id, SATISFACTION_REMINDER, chat.version, payload),)
    return message, items, timers


def plan_reminder(
    settings: ChatSettings, chat: Chat, timer: Timer, now: float, *, message_id: MessageId
) -> Plan | None:
    """The reminder of ``timer`` fired: the ``reminder_prompt`` system message, the
    ``satisfaction.reminded`` event, the chat's state marked reminded — or None (nothing to
    do) when the chat is rated, was reminded, is neither active nor ended, its rating window
    closed, the invitation it follows is not the chat's last, or reminders are off now."""
    rules = satisfaction_rules(settings, chat)
    state = satisfaction_of(chat)
    invited_at = timer.payload.get("invited_at")
    if (
        not rules.enabled
        or not rules.reminder_after_s
        or not rules.reminder_prompt
        or state.rating is not None
        or state.reminded_at is not None
        or not state.invitations  # a reopened conversation: a new period, not invited yet
        or state.last_invited_at is None
        or state.last_invited_at != invited_at
        or chat.state not in (ChatState.ACTIVE, ChatState.ENDED)
        or _window_closed(rules, chat, now)
    ):
        return None
    text = rules.reminder_prompt
    message = system_message(message_id, chat.id, text, now)
    reminded = attrs.evolve(state, reminded_at=now)
    items: Items = [
        payloads.message_stored(message),
        payloads.satisfaction_reminded(attributed_agent(chat), state.last_invited_at),
    ]
    return Plan(evolve(chat, satisfaction=reminded.to_dict()), items, message=message)
