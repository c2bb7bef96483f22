"""Pure planners of assignment changes: a chat assigned (or transferred) to an agent, or put in
a queue or pool. Each takes the chat as it is and returns its new state and events (or the whole
:class:`~chatmgmt._plan.Plan`); the core adds the claim it makes and applies it as one unit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .. import lifecycle as lc
from .._plan import Items, Plan, leaving
from ..model import AgentId, Chat, ChatState, Message, ReceptionMode, Timer, copier, evolve
from ..ports import Census, QueuePush
from ..settings import ChatSettings
from ..webhook import _payloads as payloads
from ._routing import wait_score

__all__ = ["WAITING", "plan_assignment", "plan_queue"]

WAITING = (ChatState.QUEUED, ChatState.UNASSIGNED)
"""The states of a chat that waits for an agent (Real-Time queue, Always On pool)."""
_ENDED = ChatState.ENDED  # members as globals: cheaper to read than off their enum class
_TRANSFER = lc.ChatEvent.TRANSFER
_ASSIGN = lc.ChatEvent.ASSIGN


def plan_assignment(
    chat: Chat,
    agent_id: AgentId,
    reason: Mapping[str, Any],
    now: float,
    *,
    transfer: bool = False,
    automatic: bool = False,
    from_agent_id: AgentId | None = None,
) -> tuple[Chat, Items]:
    """``chat`` assigned (or transferred) to ``agent_id`` — the placeholder
    :data:`~chatmgmt.ports.PICKED` when the store picks — and its events."""
    items: Items = []
    if chat.state is _ENDED:  # an admin assigns an ended Always On chat: it reopens
        by = str(reason.get("by", "system"))
        items.append(payloads.chat_reopened("agent", by, agent_id=agent_id))
        chat = lc.reopened(chat, now)
    event = _TRANSFER if transfer else _ASSIGN
    state = lc.transition(chat.id, chat.mode, chat.state, event)
    # state, agent_id, assigned_at, agent_replied, served_by, route_reason (one explanation,
    # shared by the chat and its event), queue, leave_message
    values = (state, agent_id, now, False, (*chat.served_by, agent_id), reason, None, None)
    tracked = lc.track(chat, event, now, automatic=automatic)
    if tracked.keys() == _TRACKED:  # the usual assignment: one generated copy, no keywords
        new = _assigned(chat, *values, tracked[lc.ESCALATION_KEY], tracked[lc.QUEUED_AT_KEY])
    else:
        new = evolve(chat, **dict(zip(_ASSIGNED, values, strict=True)), **tracked)
    items.append(
        payloads.chat_assigned(
            agent_id, reason, transfer=transfer, from_agent_id=from_agent_id, automatic=automatic
        )
    )
    return new, items


_ASSIGNED = (
    "state",
    "agent_id",
    "assigned_at",
    "agent_replied",
    "served_by",
    "route_reason",
    "queue",
    "leave_message",
)
_TRACKED = {lc.ESCALATION_KEY, lc.QUEUED_AT_KEY}
"""What :func:`~chatmgmt.lifecycle.track` changes when a chat nobody holds is assigned."""
_assigned = copier(Chat, *_ASSIGNED, lc.ESCALATION_KEY, lc.QUEUED_AT_KEY)


def plan_queue(
    settings: ChatSettings,
    stored: Chat | None,
    chat: Chat,
    queue: str,
    reason: Mapping[str, Any],
    now: float,
    *,
    length: int,
    census: Census | None = None,
    duty: bool = True,
    requeue: bool = False,
    items: Sequence[tuple[str, Mapping[str, Any]]] = (),
    release: AgentId | None = None,
    timer: Timer | None = None,
    message: Message | None = None,
) -> Plan:
    """``chat`` (stored as ``stored``; None: new) waiting in ``queue``, which holds ``length``
    chats: its state, its entry (a chat sent back keeps its place: it is ordered by when it
    arrived), the leave-a-message offer when the rules make one (a full queue always does),
    the slot it gives back, the events, and ``message`` (a system message such as the
    out-of-office reply) stored with it."""
    qsettings = settings.assignment.queue
    realtime = chat.mode is ReceptionMode.REAL_TIME
    reason = dict(reason)
    if realtime:
        event = lc.ChatEvent.REQUEUE if requeue else lc.ChatEvent.QUEUE
    else:
        event = lc.ChatEvent.UNASSIGN if requeue else lc.ChatEvent.QUEUE
    if chat.state in WAITING and event is lc.ChatEvent.QUEUE:
        state = chat.state  # a new chat, or one moving between queues, stays waiting
    else:
        state = lc.transition(chat.id, chat.mode, chat.state, event)
    changes: dict[str, Any] = (
        lc.track(chat, event, now) if chat.state is not ChatState.ENDED else {}
    )
    changes["queue"] = queue
    score = wait_score(chat, qsettings.priority_step_s)  # by when it first waited: a place
    out: Items = [*items]
    if realtime:
        if qsettings.max_length and length >= qsettings.max_length:
            reason["queue_full"] = True
            changes["leave_message"] = reason["leave_message"] = "max_length"
            out.append(payloads.queue_overflowed("max_length", "leave_message", None))
        else:
            offer = lc.should_offer_submission(
                settings.submission,
                chat.mode,
                chat.channel,
                chat.skill_group,
                agents_online=census.online if census is not None else 1,
                off_duty=not duty,
                queue_length=length + 1,
                waited_s=0.0,
            )
            if offer is not None:
                changes["leave_message"] = reason["leave_message"] = offer.value
    new = evolve(chat, state=state, agent_id=None, route_reason=reason, **changes)
    out.append(payloads.chat_queued(reason, length if realtime else None))
    if message is not None:
        out.append(payloads.message_stored(message))
    remove, cancel = leaving(stored, staying=queue)
    return Plan(
        new,
        out,
        release=release,
        remove=remove,
        push=QueuePush(queue, score),
        cancel=cancel,
        schedule=(timer,) if timer is not None else (),
        message=message,
        owned=True,  # ``new`` was built here for this plan alone
    )
