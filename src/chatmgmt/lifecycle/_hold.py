"""Hold and inactivity, pure: a chat put on hold by its agent, resumed, or gone quiet.

Modelled on Rocket.Chat's on-hold chats. A chat on hold stays ``active`` with its agent (hold
is a sub-state, recorded in the typed field ``Chat.hold`` as a :class:`Hold`'s plain values):
its inactivity deadlines stop, and only the on-hold auto-close
(``end_of_chat.hold_close_after_s``) runs. It resumes explicitly (``resume_chat``) or when the
customer writes; an agent's message does not resume it (the agent may write while waiting).

Whether a held chat counts toward its agent's limit is ``assignment.on_hold_chats_count``; an
inactive chat (``Chat.inactive``, set by ``set_inactive`` or the ``inactivity_release``
deadline) follows ``assignment.inactive_chats_count``. Both meet in one rule,
:func:`chatmgmt.assignment._load.counts_toward_limit`; :func:`slot_move` turns a change of
either into the slot operation of the same unit of work (``Change.inactive``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from .._plan import Items, Plan
from ..assignment._load import counts_toward_limit
from ..errors import ValidationError
from ..model import AgentId, Chat, ChatState, evolve
from ..settings import AssignmentSettings
from ..webhook import _payloads as payloads
from ._state import ChatEvent, transition

__all__ = [
    "Hold",
    "counts",
    "on_hold",
    "plan_hold",
    "plan_inactive",
    "plan_resume",
    "resumed_at",
    "slot_move",
    "wake",
]


@attrs.frozen
class Hold:
    """A hold of a chat: when it started, who put it on hold and why; ``resumed_at`` and
    ``resumed_by`` once it resumed (None: still on hold)."""

    since: float
    by: str
    reason: str = ""
    resumed_at: float | None = None
    resumed_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values, for ``Chat.hold``."""
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Hold:
        """Inverse of :meth:`to_dict`; raise :class:`~chatmgmt.errors.ValidationError`."""
        try:
            return cls(**dict(data))
        except TypeError:
            raise ValidationError(f"hold: expected the fields of Hold, got {data!r}") from None


def on_hold(chat: Chat) -> bool:
    """Whether ``chat`` is on hold now: active, with a hold that has not resumed."""
    hold = chat.hold
    return hold is not None and hold.get("resumed_at") is None and chat.state is ChatState.ACTIVE


def resumed_at(chat: Chat) -> float | None:
    """When the chat's last hold (in its current assignment) resumed, or None."""
    hold = chat.hold
    return None if hold is None else hold.get("resumed_at")


def counts(chat: Chat, assignment: AssignmentSettings) -> bool:
    """Whether the (active) chat counts toward its agent's limit now."""
    return counts_toward_limit(
        chat.inactive,
        on_hold(chat),
        inactive_count=assignment.inactive_chats_count,
        on_hold_count=assignment.on_hold_chats_count,
    )


def slot_move(
    before: Chat, after: Chat, assignment: AssignmentSettings
) -> tuple[AgentId, bool] | None:
    """The ``Change.inactive`` move of an active chat that stays with its agent while it goes
    (un)counted: ``(agent, True)`` frees the slot, ``(agent, False)`` counts it again (even
    above the limit, see :func:`~chatmgmt.assignment._load.counts_toward_limit`); None when
    nothing moves."""
    agent = after.agent_id
    if (
        agent is None
        or after.state is not ChatState.ACTIVE
        or before.state is not ChatState.ACTIVE
        or before.agent_id != agent
    ):
        return None
    was, now = counts(before, assignment), counts(after, assignment)
    return None if was == now else (agent, not now)


def plan_hold(
    chat: Chat, by: str, reason: str, now: float, assignment: AssignmentSettings
) -> Plan | None:
    """Put the active chat on hold (None: it is on hold already; InvalidTransitionError when
    it is not active): ``chat.held`` and, when held chats do not count, the slot freed."""
    transition(chat.id, chat.mode, chat.state, ChatEvent.HOLD)
    if on_hold(chat):
        return None
    new = evolve(chat, hold=Hold(now, by, reason).to_dict())
    move = slot_move(chat, new, assignment)
    items: Items = [payloads.chat_held(by, reason, counts(new, assignment))]
    return Plan(new, items, inactive=move)


def _resumed(chat: Chat, by: str, now: float, assignment: AssignmentSettings) -> tuple[Chat, Items]:
    hold = chat.hold
    assert hold is not None
    new = evolve(chat, hold={**hold, "resumed_at": now, "resumed_by": by})
    held_s = now - float(hold["since"])
    return new, [payloads.chat_resumed(by, held_s, counts(new, assignment))]


def plan_resume(chat: Chat, by: str, now: float, assignment: AssignmentSettings) -> Plan | None:
    """Resume the chat on hold (None: it is not on hold; InvalidTransitionError when it is not
    active): ``chat.resumed``, its inactivity deadlines from ``now`` on, and its slot counted
    again if it was freed."""
    transition(chat.id, chat.mode, chat.state, ChatEvent.RESUME)
    if not on_hold(chat):
        return None
    new, items = _resumed(chat, by, now, assignment)
    return Plan(new, items, inactive=slot_move(chat, new, assignment))


def plan_inactive(
    chat: Chat,
    inactive: bool,
    cause: str,
    assignment: AssignmentSettings,
    **changes: Any,
) -> Plan | None:
    """Mark the chat inactive (or active again) for ``cause`` (``silence``: the inactivity
    release; ``set_inactive``): ``chat.inactivity_changed`` for an active chat, and its slot
    moved when inactive chats do not count. None when it is so already. ``changes``: more
    fields to store with it (the fired deadline)."""
    if chat.inactive == inactive:
        return None
    new = evolve(chat, inactive=inactive, **changes)
    items: Items = []
    if chat.state is ChatState.ACTIVE:
        counted = counts(new, assignment)
        items.append(payloads.chat_inactivity_changed(chat.agent_id, inactive, cause, counted))
    return Plan(new, items, inactive=slot_move(chat, new, assignment))


def wake(
    before: Chat, after: Chat, customer: bool, now: float, assignment: AssignmentSettings
) -> tuple[Chat, Items, tuple[AgentId, bool] | None]:
    """A message in a chat that is inactive or on hold (``before``; ``after`` is the chat
    with the message, already active again): ``chat.inactivity_changed`` (cause ``message``)
    for an inactive one; a customer's message resumes a held chat (``chat.resumed`` by
    ``"customer"``); the slot move of the same unit."""
    items: Items = []
    if before.inactive and before.state is ChatState.ACTIVE and not after.inactive:
        counted = counts(after, assignment)
        items.append(payloads.chat_inactivity_changed(after.agent_id, False, "message", counted))
    if customer and on_hold(before) and after.state is ChatState.ACTIVE:
        after, resumed = _resumed(after, "customer", now, assignment)
        items.extend(resumed)
    return after, items, slot_move(before, after, assignment)
