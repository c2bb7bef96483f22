"""A chat's change as the pure planners describe it: :class:`Plan`.

The planners of :mod:`chatmgmt.lifecycle` and :mod:`chatmgmt.assignment` take the current chat
(and the values they need) and return a plan: the chat's new state, the events it causes (as
items, see :mod:`chatmgmt.webhook._payloads`) and the index operations it implies. The core
turns a plan into one :class:`~chatmgmt.ports.Change` (the version, the per-chat event sequence,
the deadlines of the new state) and applies it as one unit of work.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from .model import AgentId, Chat, Message, Sticky, Timer, maker
from .ports import Claim, QueuePush, RankedClaim

__all__ = ["STICKY_WAIT", "Items", "Plan", "leaving", "new_plan", "sticky_wait_key"]

Items = list[tuple[str, Mapping[str, Any]]]
"""Events to raise, as ``(type, data)``: the chat's ids are added and a sequence number given."""


@attrs.frozen
class Plan:
    """A chat's change (pure data): ``chat`` is the new state (its version and event sequence
    are set on commit); the other fields are the index operations of
    :class:`~chatmgmt.ports.Change`."""

    chat: Chat
    items: Sequence[tuple[str, Mapping[str, Any]]] = ()
    claim: Claim | RankedClaim | None = None
    release: AgentId | None = None
    inactive: tuple[AgentId, bool] | None = None
    require_empty: str | None = None
    remove: tuple[str, ...] = ()
    push: QueuePush | None = None
    cancel: tuple[str, ...] = ()
    schedule: tuple[Timer, ...] = ()
    message: Message | None = None
    sticky: Sticky | None = None
    owned: bool = False
    """``chat`` was built for this plan alone (a fresh value nobody else holds): the commit
    sets its version, event sequence and update time in place instead of copying it."""
    more_messages: tuple[Message, ...] = ()
    """Messages stored after ``message``, in order (``Change.more_messages``)."""
    census: str | None = None
    """The group whose census the store reads in the unit and fills into the explanation's
    :data:`~chatmgmt.ports.CENSUS_MARKS` (``Change.census``)."""


new_plan = maker(Plan, defaults=True)
"""``Plan(chat, items, **fields)`` without attrs' ``__init__`` (Plan has no validators, see
:func:`~chatmgmt.model.maker`): for the hot paths; give the fields after ``items`` by keyword."""


STICKY_WAIT = "sticky_wait"
"""The timer kind of a chat waiting for its sticky agent."""


def sticky_wait_key(chat_id: str) -> str:
    """The timer key of a chat's sticky wait."""
    return f"{chat_id}:{STICKY_WAIT}"


def leaving(
    stored: Chat | None, staying: str | None = None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The queue entry and sticky-wait timer a chat stored as ``stored`` leaves (unless it
    stays in ``staying``): ``(remove, cancel)`` for its next unit of work."""
    if stored is None or stored.queue is None or stored.queue == staying:
        return (), ()
    return (stored.queue,), (sticky_wait_key(stored.id),)
