"""Queue position events, pure: when a waiting chat is told its new place.

A change that takes a chat out of a queue or puts one in (``remove`` / ``push``) sets, in the
same unit of work, that queue's *positions timer* (due at once, one per queue, kept under a
pseudo chat id like the leave grace timer, see :func:`~chatmgmt.assignment._leave.owner_timer`).
``tick()`` fires it: each of the first :data:`POSITION_LIMIT` waiting chats whose place differs
from the one its last ``chat.queue_position`` event gave gets a new event, in a unit of work of
its own that records ``(position, time)`` in ``Chat.position_event`` — unless its last event is
younger than ``assignment.queue.position_events_s``; then the timer is set again for when it
may be sent, so the latest place always reaches the host in the end (a trailing throttle).
"""

from __future__ import annotations

import math

from .._plan import Plan
from ..model import Chat, ChatState, Timer, evolve
from ..webhook import _payloads as payloads
from ._leave import owner_of, owner_timer

__all__ = [
    "POSITIONS_TIMER",
    "POSITION_LIMIT",
    "plan_position",
    "positions_timer",
    "queue_of_positions_timer",
    "tracked",
]

POSITIONS_TIMER = "queue_positions"
"""The timer kind of a queue's position events."""

POSITION_LIMIT = 100
"""Only the first this many chats of a queue get position events (the ones a customer would
watch count down); the others learn their place when they get there."""

_TRACKED = ("queue/", "pool/", "agent/")
_WAITING = (ChatState.QUEUED, ChatState.UNASSIGNED)


def tracked(queue: str) -> bool:
    """Whether chats waiting in ``queue`` get position events (queues and pools, not the
    left-message pool)."""
    return queue.startswith(_TRACKED)


def positions_timer(queue: str, due_at: float) -> Timer:
    """The positions timer of ``queue``, due at ``due_at``."""
    return owner_timer(POSITIONS_TIMER, queue, due_at, {"queue": queue})


def queue_of_positions_timer(timer: Timer) -> str | None:
    """The queue a positions timer belongs to, or None when ``timer`` is not one."""
    return owner_of(timer, POSITIONS_TIMER)


def plan_position(
    chat: Chat,
    queue: str,
    position: int,
    length: int,
    wait_s: float,
    now: float,
    every_s: float,
) -> Plan | float | None:
    """The position event of ``chat`` at 0-based ``position`` of ``queue``: a :class:`Plan`
    (send it now), the time it may be sent (its last event is younger than ``every_s``), or
    None (it does not wait in ``queue`` any more, or its last event gave this place)."""
    if chat.state not in _WAITING or chat.queue != queue:
        return None
    last = chat.position_event
    if last is not None:
        if last[0] == position:
            return None
        if now < last[1] + every_s:
            return last[1] + every_s
    wait = wait_s if math.isfinite(wait_s) else None
    item = payloads.chat_queue_position(queue, position, length, wait)
    return Plan(evolve(chat, position_event=(position, now)), [item])
