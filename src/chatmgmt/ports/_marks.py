"""The placeholders a plan writes for what only the unit of work knows (the picked agent,
the census counts), and how a store fills them in (:meth:`Change.bind`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..model import AgentId, Chat, Event, Timer, copier, evolve
from ._reads import Census

PICKED: AgentId = AgentId("\x00picked")
"""Placeholder for the agent a :class:`RankedClaim` picks inside the unit of work.

The plan names the agent it cannot know yet with this value (agent ids never contain NUL): in
``chat.agent_id``, in ``chat.served_by``, and as ``data["agent_id"]`` of its events. The store
replaces every such occurrence by the agent it picked (:meth:`Change.bind`); in serialized JSON
the placeholder is the string ``"\\u0000picked"``, so a script can substitute it textually.
"""

CENSUS_MARKS: Mapping[str, str] = {
    field: f"\x00census:{field}" for field in ("eligible", "full", "busy", "away", "offline")
}
"""Placeholders for the counts of a :class:`Census` that the store reads inside the unit of
work (:attr:`Change.census`), by field name.

A plan that explains itself with the census of the group it claims in (``route_reason``'s
``eligible`` and ``ineligible``) cannot know those counts before the unit runs; it writes these
strings instead, at any depth of the chat's ``route_reason``, of its events' ``data`` and of
its timers' ``payload``. The store replaces every value equal to a mark by that field of the
census it read (:meth:`Change.bind`); in serialized JSON a mark is the string
``"\\u0000census:eligible"`` (quotes included), replaced by the bare integer.
"""


def _bound_event(event: Event, agent_id: AgentId) -> Event:
    """A copy of ``event`` whose ``data["agent_id"]`` is ``agent_id``."""
    data = {**event.data, "agent_id": agent_id}
    if type(event) is Event:
        return _COPY_EVENT_DATA(event, data)
    return evolve(event, data=data)


_COPY_BOUND_CHAT = copier(Chat, "agent_id", "served_by", "route_reason")
_COPY_EVENT_DATA = copier(Event, "data")
_SET_AGENT = Chat.__dict__["agent_id"].__set__
_SET_SERVED = Chat.__dict__["served_by"].__set__


def _census_counts(census: Census) -> dict[str, int]:
    """Each :data:`CENSUS_MARKS` placeholder -> the count of ``census`` it stands for."""
    return {mark: getattr(census, field) for field, mark in CENSUS_MARKS.items()}


def _fill_census(
    chat: Chat | None,
    events: tuple[Event, ...],
    schedule: tuple[Timer, ...],
    census: Census,
    in_place: bool,
) -> tuple[Chat | None, tuple[Event, ...], tuple[Timer, ...]]:
    """The chat, events and timers with ``census``'s counts in place of its marks."""
    counts = _census_counts(census)
    if in_place:
        seen: set[int] = set()  # one explanation is shared by the chat and its events
        if chat is not None:
            _fill_dict(chat.route_reason, counts, seen)  # type: ignore[arg-type]
        for event in events:
            _fill_dict(event.data, counts, seen)  # type: ignore[arg-type]
        for timer in schedule:
            _fill_dict(timer.payload, counts, seen)  # type: ignore[arg-type]
        return chat, events, schedule
    if chat is not None:
        reason = _filled(chat.route_reason, counts)
        if reason is not chat.route_reason:
            chat = evolve(chat, route_reason=reason)
    events = tuple(
        e if (data := _filled(e.data, counts)) is e.data else evolve(e, data=data) for e in events
    )
    schedule = tuple(
        t if (payload := _filled(t.payload, counts)) is t.payload else evolve(t, payload=payload)
        for t in schedule
    )
    return chat, events, schedule


#: classes of the values that hold no mark and nothing to walk into, but ``str`` (a mark is
#: an exact ``str``)
_ATOMS = frozenset({int, float, bool, type(None)})


def _fill_dict(values: dict[str, object], counts: Mapping[str, int], seen: set[int]) -> None:
    """Replace the census marks in ``values`` (at any depth), in place."""
    if id(values) in seen:
        return
    seen.add(id(values))
    for key, value in values.items():
        # ``type(x)``, not ``x.__class__``: a specialized call where the attribute is not
        kind = type(value)
        if kind is str:
            if value in counts:
                values[key] = counts[value]  # type: ignore[index]
        elif kind in _ATOMS:
            continue
        elif isinstance(value, (dict, list, tuple)):
            if isinstance(value, dict):
                _fill_dict(value, counts, seen)
            else:
                filled = _filled(value, counts)
                if filled is not value:
                    values[key] = filled


def _filled(value: Any, counts: Mapping[str, int]) -> Any:
    """``value`` with the census marks replaced at any depth; ``value`` itself when it holds
    none (so an unchanged value is never copied)."""
    kind = type(value)
    if kind is tuple or kind is list:  # of atoms and no mark (a deadline's basis): itself
        for item in value:
            kind = type(item)
            if kind is str:
                if item in counts:
                    break
            elif kind not in _ATOMS:
                break
        else:
            return value
    if isinstance(value, str):
        return counts.get(value, value)
    if isinstance(value, Mapping):
        out = {k: _filled(v, counts) for k, v in value.items()}
        return value if all(out[k] is v for k, v in value.items()) else out
    if isinstance(value, (list, tuple)):
        items = [_filled(v, counts) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return type(value)(items)
    return value


def _bind_items(values: dict[str, object], agent_id: AgentId) -> None:
    """``values`` with the picked ``agent_id`` in place of :data:`PICKED`, changed in place."""
    for key, value in values.items():
        if _holds_picked(value):
            values[key] = _bind_value(value, agent_id)


def _payload_holds_picked(payload: Mapping[str, object]) -> bool:
    for value in payload.values():
        if value == PICKED or (isinstance(value, (tuple, list)) and PICKED in value):
            return True
    return False


def _holds_picked(value: object) -> bool:
    if isinstance(value, (tuple, list)):
        return PICKED in value
    return value == PICKED


def _bind_value(value: object, agent_id: AgentId) -> object:
    if value == PICKED:
        return agent_id
    if isinstance(value, (tuple, list)):
        return type(value)(agent_id if v == PICKED else v for v in value)
    return value
