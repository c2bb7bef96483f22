"""The agent leave policy, pure: who has left, which policy a chat follows, the grace timer.

An agent *leaves* when its status becomes OFFLINE, or AWAY where ``away_counts`` says so. The
chats it holds then follow the leave policy of their skill group (``assignment.leave``, with
per-group overrides): once ``grace_s`` has passed without the agent coming back they are
requeued keeping their place, forwarded to the group, returned to the Always On pool, or kept.

The grace time is one timer per agent in the timer store (set and cancelled inside
:meth:`~chatmgmt.ports.Storage.apply`, like every timer). It is not a chat's timer, so it is
kept under a pseudo chat id that no host chat id can equal (ids never hold control characters,
see :func:`leave_timer_chat`); the change that sets or cancels it touches no chat and is guarded
by "that chat does not exist".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..model import AgentId, AgentStatus, Timer
from ..settings import LeaveAction, LeaveSettings, resolve

__all__ = [
    "LEAVE_TIMER",
    "agent_of_leave_timer",
    "first_grace_s",
    "has_left",
    "leave_policy",
    "leave_timer",
    "leave_timer_chat",
    "leave_timer_key",
    "leaves",
    "owner_of",
    "owner_timer",
    "owner_timer_chat",
]

LEAVE_TIMER = "agent_left"
"""The timer kind of an agent's leave grace time."""

_MARK = "\x1f"


def owner_timer_chat(kind: str, owner: str) -> str:
    """The pseudo chat id of a timer that belongs to no chat (an agent's grace time, a queue's
    position events): ``\x1f<kind>:<owner>``, a control character no chat id holds."""
    return f"{_MARK}{kind}:{owner}"


def owner_timer(kind: str, owner: str, due_at: float, payload: dict[str, Any]) -> Timer:
    """The one timer of ``kind`` for ``owner`` (an agent id, a queue), due at ``due_at``."""
    chat_id = owner_timer_chat(kind, owner)
    return Timer(f"{chat_id}:{kind}", due_at, chat_id, kind, 0, payload)


def owner_of(timer: Timer, kind: str) -> str | None:
    """The owner of ``timer`` when it is an :func:`owner_timer` of ``kind``, else None."""
    prefix = f"{_MARK}{kind}:"
    if timer.kind != kind or not timer.chat_id.startswith(prefix):
        return None
    return timer.chat_id[len(prefix) :]


def leave_timer_chat(agent_id: str) -> str:
    """The pseudo chat id an agent's grace timer is kept under."""
    return owner_timer_chat(LEAVE_TIMER, agent_id)


def leave_timer_key(agent_id: str) -> str:
    """The timer key of an agent's grace timer."""
    return f"{leave_timer_chat(agent_id)}:{LEAVE_TIMER}"


def agent_of_leave_timer(timer: Timer) -> AgentId | None:
    """The agent a grace timer belongs to, or None when ``timer`` is not one."""
    owner = owner_of(timer, LEAVE_TIMER)
    return None if owner is None else AgentId(owner)


def leave_timer(agent_id: str, since: float, due_at: float) -> Timer:
    """The grace timer of ``agent_id``, who left at ``since``, due at ``due_at``."""
    return owner_timer(LEAVE_TIMER, agent_id, due_at, {"agent_id": agent_id, "since": since})


def leave_policy(leave: LeaveSettings, group: str) -> LeaveSettings:
    """The policy a chat of skill group ``group`` follows (the group's override, or global)."""
    if not leave.groups:
        return leave
    return resolve(leave, group=group or None)


def has_left(status: AgentStatus, policy: LeaveSettings) -> bool:
    """Whether an agent of ``status`` has left under ``policy``: OFFLINE always, AWAY when
    ``away_counts``."""
    return status is AgentStatus.OFFLINE or (status is AgentStatus.AWAY and policy.away_counts)


def _policies(leave: LeaveSettings) -> Iterator[LeaveSettings]:
    yield leave
    for group in leave.groups:
        yield resolve(leave, group=group)


def leaves(leave: LeaveSettings, status: AgentStatus) -> bool:
    """Whether an agent going to ``status`` has left under some policy that moves chats (so a
    grace timer is worth setting)."""
    return any(p.action is not LeaveAction.KEEP and has_left(status, p) for p in _policies(leave))


def first_grace_s(leave: LeaveSettings, status: AgentStatus) -> float:
    """The shortest grace time among the policies that move chats of an agent of ``status``
    (the grace timer is due then; its firing reschedules it for the chats still waiting)."""
    return min(
        (
            p.grace_s
            for p in _policies(leave)
            if p.action is not LeaveAction.KEEP and has_left(status, p)
        ),
        default=0.0,
    )
