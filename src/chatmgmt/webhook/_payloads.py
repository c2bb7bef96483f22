"""Event payloads, built beside their schema: one function per event type of a chat.

Each returns an *item* ``(type, data)``: the event's type and the fields of its ``data`` that
the catalogue (:mod:`._catalogue`) declares for it, apart from the chat's own ids (``chat_id``,
``channel``, ``skill_group``, ``partner_id``), which the core adds when it numbers the chat's
events. :func:`~chatmgmt.webhook.make_event` checks every payload against the catalogue, so a
builder and its schema cannot drift apart unnoticed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..model import Chat, Message, MessageRole
from ._catalogue import EventType

__all__ = [
    "Item",
    "agent_reminded",
    "chat_abandoned",
    "chat_assigned",
    "chat_bot_started",
    "chat_ended",
    "chat_handed_off",
    "chat_held",
    "chat_inactivity_changed",
    "chat_offer_accepted",
    "chat_offer_declined",
    "chat_offer_expired",
    "chat_offered",
    "chat_queue_position",
    "chat_queued",
    "chat_reopened",
    "chat_resumed",
    "chat_returned",
    "chat_started",
    "chat_tagged",
    "inactivity_warned",
    "message_stored",
    "moderation_alert",
    "moderation_hit",
    "offline_message_assigned",
    "offline_message_created",
    "offline_message_replied",
    "queue_overflowed",
    "satisfaction_invited",
    "satisfaction_submitted",
    "sla_event",
    "supervisor_ended",
    "supervisor_joined",
    "supervisor_took_over",
    "supervisor_whispered",
    "ticket_created",
]

Item = tuple[str, Mapping[str, Any]]
"""An event to raise: its type and its payload (without the chat's ids)."""

_MESSAGE_TYPES = {
    MessageRole.CUSTOMER: EventType.MESSAGE_CUSTOMER,
    MessageRole.AGENT: EventType.MESSAGE_AGENT,
    MessageRole.SYSTEM: EventType.MESSAGE_SYSTEM,
    MessageRole.BOT: EventType.MESSAGE_BOT,
}
_ASSIGNED = EventType.CHAT_ASSIGNED  # a global: cheaper to read on every assignment


def chat_started(mode: str, priority: int) -> Item:
    """``chat.started``: a chat was opened."""
    return EventType.CHAT_STARTED, {"mode": mode, "priority": priority}


def chat_bot_started(bot: str) -> Item:
    """``chat.bot_started``: a new chat starts in the bot stage, handled by ``bot``."""
    return EventType.CHAT_BOT_STARTED, {"bot": bot}


def chat_handed_off(
    bot: str, reason: str, fields: Mapping[str, Any], by: str, bot_s: float
) -> Item:
    """``chat.handed_off``: the bot handed the chat to a human, after ``bot_s`` seconds."""
    data = {"bot": bot, "reason": reason, "fields": dict(fields), "by": by, "bot_s": bot_s}
    return EventType.CHAT_HANDED_OFF, data


def chat_assigned(
    agent_id: str | None,
    reason: Mapping[str, Any],
    *,
    transfer: bool = False,
    from_agent_id: str | None = None,
    automatic: bool = False,
) -> Item:
    """``chat.assigned``, or ``chat.transferred`` (``agent_id`` None: back to the queue)."""
    if not transfer:
        return _ASSIGNED, {"agent_id": agent_id, "reason": reason}  # the usual assignment
    data = {
        "agent_id": agent_id,
        "reason": reason,
        "from_agent_id": from_agent_id,
        "automatic": automatic,
    }
    return EventType.CHAT_TRANSFERRED, data


def chat_offered(agent_id: str, expires_at: float, reason: Mapping[str, Any]) -> Item:
    """``chat.offered``: the chat is offered to ``agent_id`` until ``expires_at``."""
    return EventType.CHAT_OFFERED, {
        "agent_id": agent_id,
        "expires_at": expires_at,
        "reason": reason,
    }


def chat_offer_accepted(agent_id: str, waited_s: float) -> Item:
    """``chat.offer_accepted``: ``agent_id`` accepted the offer after ``waited_s``."""
    return EventType.CHAT_OFFER_ACCEPTED, {"agent_id": agent_id, "waited_s": waited_s}


def chat_offer_declined(agent_id: str, reason: str) -> Item:
    """``chat.offer_declined``: ``agent_id`` declined the offer, saying ``reason``."""
    return EventType.CHAT_OFFER_DECLINED, {"agent_id": agent_id, "decline_reason": reason}


def chat_offer_expired(agent_id: str) -> Item:
    """``chat.offer_expired``: the offer to ``agent_id`` ran out."""
    return EventType.CHAT_OFFER_EXPIRED, {"agent_id": agent_id}


def chat_reopened(
    to: str,
    by: str,
    *,
    agent_id: str | None = None,
    requested: str | None = None,
    fallback: str | None = None,
) -> Item:
    """``chat.reopened``: an ended Always On chat was opened again by ``by``, ``to`` the pool
    or an agent (``agent_id``); ``requested`` where it was asked to go (``to`` unless it fell
    back to the pool, ``fallback`` saying why)."""
    return EventType.CHAT_REOPENED, {
        "to": to,
        "agent_id": agent_id,
        "by": by,
        "requested": to if requested is None else requested,
        "fallback": fallback,
    }


def chat_queued(reason: Mapping[str, Any], position: int | None) -> Item:
    """``chat.queued`` (Real-Time, with its 0-based ``position``) or ``chat.unassigned``
    (Always On: ``position`` None)."""
    if position is None:
        return EventType.CHAT_UNASSIGNED, {"reason": reason}
    return EventType.CHAT_QUEUED, {"reason": reason, "position": position}


def chat_returned(from_agent_id: str, why: str, by: str, queue: str) -> Item:
    """``chat.returned``: the chat left its agent for its queue or pool (the leave policy or an
    admin's unassign)."""
    data = {"from_agent_id": from_agent_id, "why": why, "by": by, "queue": queue}
    return EventType.CHAT_RETURNED, data


def chat_queue_position(
    queue: str, position: int, length: int, estimated_wait_s: float | None
) -> Item:
    """``chat.queue_position``: a waiting chat's place changed."""
    data = {
        "queue": queue,
        "position": position,
        "length": length,
        "estimated_wait_s": estimated_wait_s,
    }
    return EventType.CHAT_QUEUE_POSITION, data


def queue_overflowed(limit: str, action: str, target_group: str | None) -> Item:
    """``queue.overflowed``: a queue limit was reached and ``action`` followed."""
    data = {"limit": limit, "action": action, "target_group": target_group}
    return EventType.QUEUE_OVERFLOWED, data


def chat_ended(
    agent_id: str | None,
    end_reason: str,
    ended_by: str,
    duration_s: float,
    sla: Mapping[str, Any] | None = None,
) -> Item:
    """``chat.ended``: who ended it, why, after how long, its SLA figures (the core fills them
    in for a chat with an SLA, :func:`chatmgmt.lifecycle.track_sla`)."""
    data = {
        "agent_id": agent_id,
        "end_reason": end_reason,
        "ended_by": ended_by,
        "duration_s": duration_s,
        "sla": sla,
    }
    return EventType.CHAT_ENDED, data


def chat_abandoned(waited_s: float) -> Item:
    """``chat.abandoned``: the customer left while waiting."""
    return EventType.CHAT_ABANDONED, {"waited_s": waited_s}


def inactivity_warned(end_at: float | None) -> Item:
    """``chat.inactivity_warned``: the customer was warned; the chat ends at ``end_at``."""
    return EventType.CHAT_INACTIVITY_WARNED, {"end_at": end_at}


def agent_reminded(agent_id: str | None) -> Item:
    """``chat.agent_reminded``: the agent was reminded of an unanswered message."""
    return EventType.CHAT_AGENT_REMINDED, {"agent_id": agent_id}


def message_stored(message: Message, moderation: str = "none") -> Item:
    """``message.<role>``: a message was stored (``moderation``: none, mask or warn)."""
    return _MESSAGE_TYPES[message.role], {
        "message_id": message.id,
        "role": message.role._value_,
        "sender": message.sender,
        "text": message.text,
        "moderation": moderation,
    }


def moderation_hit(
    message_id: str,
    role: str,
    sender: str,
    action: str,
    words: Sequence[str],
    categories: Sequence[str],
    original_text: str | None,
) -> Item:
    """``moderation.hit``: a message matched the sensitive-word list."""
    data = {
        "message_id": message_id,
        "role": role,
        "sender": sender,
        "action": action,
        "words": list(words),
        "categories": list(categories),
        "original_text": original_text,
    }
    return EventType.MODERATION_HIT, data


def moderation_alert(role: str, sender: str, hits: int, window_s: float) -> Item:
    """``moderation.alert``: a sender reached the alert threshold of hits in a window."""
    data = {"role": role, "sender": sender, "hits": hits, "window_s": window_s}
    return EventType.MODERATION_ALERT, data


def offline_message_created(submission_id: str, mode: str, fields: Mapping[str, Any]) -> Item:
    """``offline_message.created``: the customer left a message."""
    data = {"submission_id": submission_id, "mode": mode, "fields": fields}
    return EventType.OFFLINE_MESSAGE_CREATED, data


def offline_message_assigned(submission_id: str, agent_id: str, reason: Mapping[str, Any]) -> Item:
    """``offline_message.assigned``: a left message was handed to an agent."""
    data = {"submission_id": submission_id, "agent_id": agent_id, "reason": reason}
    return EventType.OFFLINE_MESSAGE_ASSIGNED, data


def offline_message_replied(submission_id: str, agent_id: str, text: str) -> Item:
    """``offline_message.replied``: an agent answered a left message."""
    data = {"submission_id": submission_id, "agent_id": agent_id, "text": text}
    return EventType.OFFLINE_MESSAGE_REPLIED, data


def ticket_created(chat: Chat, fields: Mapping[str, Any], now: float) -> Item:
    """``ticket.created``: a left message in ``ticket`` mode, as a ticketing system opens it."""
    customer = chat.customer

    def text(*names: str) -> str:
        for name in names:
            value = fields.get(name)
            if isinstance(value, str) and value.strip():
                return value.strip()
        return ""

    description = text("message", "description")
    first_line = description.splitlines()[0][:80] if description else ""
    raw_tags = fields.get("tags", ())
    if isinstance(raw_tags, str):
        raw_tags = raw_tags.split(",")
    tags = ["chat", chat.channel, *([chat.skill_group] if chat.skill_group else [])]
    for tag in raw_tags:
        if isinstance(tag, str) and tag.strip() and tag.strip() not in tags:
            tags.append(tag.strip())
    data = {
        "ticket_id": chat.id,
        "requester": {
            "name": text("name") or customer.name,
            "email": text("email") or customer.email,
            "phone": text("phone") or customer.phone,
            "partner_id": customer.partner_id,
        },
        "subject": text("subject") or first_line or "Message left in chat",
        "description": description,
        "priority": chat.priority,
        "tags": tags,
        "fields": dict(fields),
        "transcript": {"chat_id": chat.id, "until": now},
        "created_at": now,
    }
    return EventType.TICKET_CREATED, data


def satisfaction_invited(agent_id: str | None, by: str, invitation: int) -> Item:
    """``satisfaction.invited``: the customer was invited to rate the chat."""
    data = {"agent_id": agent_id, "by": by, "invitation": invitation}
    return EventType.SATISFACTION_INVITED, data


def satisfaction_reminded(agent_id: str | None, invited_at: float) -> Item:
    """``satisfaction.reminded``: the customer was reminded to rate the chat."""
    return EventType.SATISFACTION_REMINDED, {"agent_id": agent_id, "invited_at": invited_at}


def satisfaction_submitted(
    agent_id: str | None,
    level: int,
    levels: int,
    label: str,
    tags: Sequence[str],
    resolved: bool | None,
    comment: str,
    overwritten: bool,
) -> Item:
    """``satisfaction.submitted``: the customer rated the chat."""
    data = {
        "agent_id": agent_id,
        "level": level,
        "levels": levels,
        "label": label,
        "tags": list(tags),
        "resolved": resolved,
        "comment": comment,
        "overwritten": overwritten,
    }
    return EventType.SATISFACTION_SUBMITTED, data


def sla_event(
    type_: str,
    policy: str,
    metric: str,
    target_s: float,
    started_at: float | None,
    due_at: float | None,
    *,
    business_hours: bool,
) -> Item:
    """``sla.warning`` or ``sla.breached`` (``type_``): a target of the chat's SLA policy."""
    data = {
        "policy": policy,
        "metric": metric,
        "target_s": target_s,
        "started_at": started_at,
        "due_at": due_at,
        "business_hours": business_hours,
    }
    return type_, data


def chat_tagged(
    tags: Iterable[str], by: str, all_tags: Iterable[str], *, removed: bool = False
) -> Item:
    """``chat.tagged`` (or ``chat.untagged``): the tags added (removed) and the chat's tags now."""
    data = {"tags": sorted(tags), "by": by, "all_tags": sorted(all_tags)}
    return (EventType.CHAT_UNTAGGED if removed else EventType.CHAT_TAGGED), data


def chat_held(by: str, reason: str, counts: bool) -> Item:
    """``chat.held``: who put the chat on hold, why, and whether it still counts."""
    return EventType.CHAT_HELD, {"by": by, "hold_reason": reason, "counts": counts}


def chat_inactivity_changed(agent_id: str | None, inactive: bool, cause: str, counts: bool) -> Item:
    """``chat.inactivity_changed``: the chat went inactive or active again, why, and whether it
    counts toward its agent's limit now."""
    data = {"agent_id": agent_id, "inactive": inactive, "cause": cause, "counts": counts}
    return EventType.CHAT_INACTIVITY_CHANGED, data


def chat_resumed(by: str, held_s: float, counts: bool) -> Item:
    """``chat.resumed``: who resumed the chat on hold, after how long, and whether it counts."""
    return EventType.CHAT_RESUMED, {"by": by, "held_s": held_s, "counts": counts}


def supervisor_joined(
    supervisor: str, supervisor_role: str, observers: Iterable[str], *, left: bool = False
) -> Item:
    """``supervisor.joined`` (or ``supervisor.left``): who observes the chat now."""
    data = {
        "supervisor": supervisor,
        "supervisor_role": supervisor_role,
        "observers": sorted(observers),
    }
    return (EventType.SUPERVISOR_LEFT if left else EventType.SUPERVISOR_JOINED), data


def supervisor_whispered(
    supervisor: str, supervisor_role: str, message_id: str, agent_id: str | None, text: str
) -> Item:
    """``supervisor.whispered``: a note for the agent only."""
    data = {
        "supervisor": supervisor,
        "supervisor_role": supervisor_role,
        "message_id": message_id,
        "agent_id": agent_id,
        "text": text,
    }
    return EventType.SUPERVISOR_WHISPERED, data


def supervisor_took_over(supervisor: str, supervisor_role: str, from_agent_id: str | None) -> Item:
    """``supervisor.took_over``: the chat is now the supervisor's."""
    data = {
        "supervisor": supervisor,
        "supervisor_role": supervisor_role,
        "from_agent_id": from_agent_id,
    }
    return EventType.SUPERVISOR_TOOK_OVER, data


def supervisor_ended(supervisor: str, supervisor_role: str, agent_id: str | None) -> Item:
    """``supervisor.ended``: a supervisor ended the chat."""
    data = {"supervisor": supervisor, "supervisor_role": supervisor_role, "agent_id": agent_id}
    return EventType.SUPERVISOR_ENDED, data
