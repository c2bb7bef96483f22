"""Offers, pure: a chat offered to an agent, accepted, declined or expired.

Modelled on Twilio TaskRouter reservations (a task is *reserved* for one worker, who accepts or
rejects it; a reservation that times out goes to the next worker) and Zendesk's offers (an
agent who declines, or lets the offer run out, is not offered that ticket again). An offer is a
state of its own, :attr:`~chatmgmt.model.ChatState.OFFERED`, in the transition table: the
chat's agent holds its slot (a pending offer counts toward the reception limit), but the chat is
not served yet — no reply reminder, inactivity timeout or auto-transfer runs, and they count
from the acceptance. Its one deadline is the offer's expiry
(:attr:`~chatmgmt.lifecycle.TimerKind.OFFER_EXPIRY`).

Each function takes the chat as stored and returns its new state and events; the core adds the
slot operations (claim on offer, release on decline or expiry) and applies one unit of work.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._plan import Items, Plan
from ..errors import NotAllowedError
from ..model import AgentId, Chat, ChatState, evolve
from ..webhook import _payloads as payloads
from ._deadlines import track
from ._reopen import reopened
from ._state import ChatEvent, transition

__all__ = ["check_offered_to", "plan_accept", "plan_offer", "plan_withdrawn"]


def plan_offer(
    chat: Chat, agent_id: AgentId, reason: Mapping[str, Any], now: float, timeout_s: float
) -> tuple[Chat, Items]:
    """``chat`` offered to ``agent_id`` (the placeholder :data:`~chatmgmt.ports.PICKED` when
    the store picks) until ``now + timeout_s``, and its events.

    ``assigned_at`` is when the offer was made (the acceptance sets it again); ``queued_at``
    is kept, so an offer declined with nobody else free goes back to the place it had.
    """
    items: Items = []
    if chat.state is ChatState.ENDED:  # an ended Always On chat offered: it reopens
        items.append(payloads.chat_reopened("agent", "system", agent_id=agent_id))
        chat = reopened(chat, now)
    state = transition(chat.id, chat.mode, chat.state, ChatEvent.OFFER)
    expires = now + timeout_s
    new = evolve(
        chat,
        state=state,
        agent_id=agent_id,
        assigned_at=now,
        agent_replied=False,
        route_reason=reason,
        queue=None,
        leave_message=None,
        offer_expires_at=expires,
        **track(chat, ChatEvent.OFFER, now),
    )
    items.append(payloads.chat_offered(agent_id, expires, reason))
    return new, items


def check_offered_to(chat: Chat, agent_id: AgentId, event: ChatEvent) -> None:
    """Raise unless ``chat`` is offered to ``agent_id`` now: InvalidTransitionError when it is
    not offered at all, NotAllowedError when it is offered to another agent."""
    transition(chat.id, chat.mode, chat.state, event)
    if chat.agent_id != agent_id:
        raise NotAllowedError(
            chat.id, agent_id, f"the chat is offered to agent {chat.agent_id!r}, not to you"
        )


def plan_accept(chat: Chat, agent_id: AgentId, now: float) -> Plan:
    """``agent_id`` accepts the offer of ``chat``: the chat is theirs (the slot it already
    holds stays), its escalation round and reply timers start now; ``chat.offer_accepted``
    then ``chat.assigned`` (with the reason the chat was offered for)."""
    check_offered_to(chat, agent_id, ChatEvent.ACCEPT)
    offered = chat.assigned_at if chat.assigned_at is not None else now
    new = evolve(
        chat,
        state=ChatState.ACTIVE,
        assigned_at=now,
        served_by=(*chat.served_by, agent_id),
        offer_expires_at=None,
        **track(chat, ChatEvent.ACCEPT, now),
    )
    items = [
        payloads.chat_offer_accepted(agent_id, round(now - offered, 3)),
        payloads.chat_assigned(agent_id, chat.route_reason),
    ]
    return Plan(new, items)


def plan_withdrawn(
    chat: Chat, agent_id: AgentId, now: float, *, expired: bool, decline_reason: str = ""
) -> tuple[Chat, Items]:
    """The offer of ``chat`` to ``agent_id`` ends unanswered (``expired``) or declined: the
    chat waits again (``QUEUED`` or ``UNASSIGNED``), with the agent added to ``excluded`` so
    that it is never offered this chat again, and the event. The core then offers it to the
    next agent, or puts it back where it waited, in the same unit that releases the slot."""
    event = ChatEvent.EXPIRE if expired else ChatEvent.DECLINE
    check_offered_to(chat, agent_id, event)
    state = transition(chat.id, chat.mode, chat.state, event)
    new = evolve(
        chat,
        state=state,
        agent_id=None,
        excluded=chat.excluded | {agent_id},
        offer_expires_at=None,
        **track(chat, event, now),
    )
    if expired:
        return new, [payloads.chat_offer_expired(agent_id)]
    return new, [payloads.chat_offer_declined(agent_id, decline_reason)]
