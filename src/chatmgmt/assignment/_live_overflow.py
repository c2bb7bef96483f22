"""Live overflow, pure: when a waiting chat moves on to an overflow layer.

Routing tries the overflow layers once, when a chat arrives. Live overflow looks again while it
waits: every ``assignment.overflow_check_s`` a queue holding chats is checked (its *overflow
timer*, one per queue, kept under a pseudo chat id like the leave grace timer; a change that
pushes a chat into the queue sets it in the same unit, on a fixed grid so that pushes never
postpone it). Its head chat moves to the first layer, in chain order, whose condition holds now
for the previous target (``no_agent_online``, ``all_busy``, ``off_duty``), that it has waited
``after_wait_s`` for, and whose target can take it now — an agent freed up there, the group went
off duty, the wait passed. Then the next head, in queue order; the first head that cannot move
stops the check, so no chat overtakes another. A chat moves only by being assigned (one unit of
work: the claim and the queue entry it leaves); it never changes queue, so it keeps its place.
"""

from __future__ import annotations

import math

from ..model import Timer
from ..settings import AssignmentSettings
from ._leave import owner_of, owner_timer

__all__ = ["OVERFLOW_TIMER", "overflow_due", "overflow_timer", "queue_of_overflow_timer", "watched"]

OVERFLOW_TIMER = "queue_overflow"
"""The timer kind of a queue's live overflow check."""

_WATCHED = ("queue/", "pool/")


def watched(settings: AssignmentSettings, queue: str) -> bool:
    """Whether chats waiting in ``queue`` are checked for live overflow."""
    return bool(settings.overflow) and settings.overflow_check_s > 0 and queue.startswith(_WATCHED)


def overflow_due(now: float, every_s: float) -> float:
    """The next check after ``now`` on the grid of ``every_s`` (the same for every push within
    one interval, so frequent pushes never postpone the check)."""
    return (math.floor(now / every_s) + 1) * every_s


def overflow_timer(queue: str, due_at: float) -> Timer:
    """The live overflow timer of ``queue``."""
    return owner_timer(OVERFLOW_TIMER, queue, due_at, {"queue": queue})


def queue_of_overflow_timer(timer: Timer) -> str | None:
    """The queue a live overflow timer belongs to, or None when ``timer`` is not one."""
    return owner_of(timer, OVERFLOW_TIMER)
