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
]

LEAVE_TIMER = "agent_left"
"""The timer kind of an agent's leave grace time."""

_PREFIX = "\x1fagent:"


def leave_timer_chat(agent_id: str) -> str:
    """The pseudo chat id an agent's grace timer is kept under (``\\x1fagent:<id>``: a control
    character, which no chat id holds)."""
    return f"{_PREFIX}{agent_id}"


def leave_timer_key(agent_id: str) -> str:
    """The timer key of an agent's grace timer."""
    return f"{_PREFIX}{agent_id}:{LEAVE_TIMER}"


def agent_of_leave_timer(timer: Timer) -> AgentId | None:
    """The agent a grace timer belongs to, or None when ``timer`` is not one."""
    if timer.kind != LEAVE_TIMER or not timer.chat_id.startswith(_PREFIX):
        return None
    return AgentId(timer.chat_id[len(_PREFIX) :])


def leave_timer(agent_id: str, since: float, due_at: float) -> Timer:
    """The grace timer of ``agent_id``, who left at ``since``, due at ``due_at``."""
    return Timer(
        leave_timer_key(agent_id),
        due_at,
        leave_timer_chat(agent_id),
        LEAVE_TIMER,
        0,
        {"agent_id": agent_id, "since": since},
    )


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
