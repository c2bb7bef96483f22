"""The live snapshot's values and the pure function that builds one from the stores' reads.

:meth:`chatmgmt.ChatManager.monitor` reads three things — every agent's load in account order
(one :meth:`~chatmgmt.ports.AgentStore.list`), every group's agent figures from the store's
counters (one :meth:`~chatmgmt.ports.AgentStore.censuses`) and every group's waiting line at a
glance, with when its oldest chat started waiting (one :meth:`~chatmgmt.ports.QueueStore.heads`)
— and :func:`build_snapshot` folds them into a :class:`Snapshot`. Nothing scans the chats, and
no chat is read: the cost grows with agents and groups, not with chats.
:func:`group_counts` computes the same agent figures from the loads (for a host that holds
loads, and for tests).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from ..lifecycle._hold import on_hold
from ..model import AgentLoad, AgentStatus, Chat, ChatId, Event
from ..ports import GroupCensus, QueueHead

__all__ = ["Alert", "GroupView", "Snapshot", "build_snapshot", "group_counts"]


@attrs.frozen
class Alert:
    """One moderation event kept for the monitor (``moderation.hit`` or ``moderation.alert``):
    when, which chat, who sent what (``role``: customer or agent), the action taken, the words
    and categories matched (a hit) or the hits counted in the window (an alert)."""

    type: str
    at: float
    chat_id: str | None
    role: str
    sender: str
    action: str = ""
    words: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    hits: int = 0

    @classmethod
    def from_event(cls, event: Event) -> Alert:
        """The alert a ``moderation.*`` event describes."""
        data = event.data
        return cls(
            type=event.type,
            at=event.timestamp,
            chat_id=event.chat_id,
            role=str(data.get("role", "")),
            sender=str(data.get("sender", "")),
            action=str(data.get("action", "")),
            words=tuple(data.get("words", ())),
            categories=tuple(data.get("categories", ())),
            hits=int(data.get("hits", 0)),
        )


@attrs.frozen
class GroupView:
    """One skill group right now.

    ``waiting``: chats in its queue (Real-Time) or pool (Always On); ``longest_wait_s``: how
    long the oldest of them has waited (None: nobody waits); ``estimated_wait_s``: the wait a
    chat arriving now can expect (:func:`chatmgmt.assignment.estimate_wait_s`; None when no
    capacity is online); ``online`` (eligible or full), ``busy``, ``away``, ``offline``:
    agents by status; ``free_slots``: slots below the limit of its ONLINE agents;
    ``active_chats``: chats held by its agents (counted and inactive; an agent of two groups
    counts in both); ``on_hold``: those of them on hold (read from the chat records only for
    ``monitor(on_hold=True)``; None otherwise).
    """

    name: str
    waiting: int = 0
    longest_wait_s: float | None = None
    estimated_wait_s: float | None = None
    online: int = 0
    busy: int = 0
    away: int = 0
    offline: int = 0
    free_slots: int = 0
    active_chats: int = 0
    on_hold: int | None = None


@attrs.frozen
class Snapshot:
    """The live view at ``at``: every group (by name, in name order; ``""`` is the chats
    without a group), every agent's load as the store keeps it (``AgentLoad``: status, limit,
    the chats it holds, ``idle_since``), in account order, the most recent moderation
    alerts, newest last, and ``on_hold``: per agent id, how many of its chats are on hold
    (``monitor(on_hold=True)``; None otherwise)."""

    at: float
    groups: Mapping[str, GroupView]
    agents: Sequence[AgentLoad]
    alerts: Sequence[Alert] = ()
    on_hold: Mapping[str, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (per agent: id, name, status, limit, load, inactive, on_hold,
        chats, idle_since, groups)."""
        held = self.on_hold
        return {
            "at": self.at,
            "groups": [attrs.asdict(g) for g in self.groups.values()],
            "agents": [
                {
                    "id": ld.agent.id,
                    "name": ld.agent.display_name,
                    "status": ld.agent.status.value,
                    "limit": ld.agent.reception_limit,
                    "load": len(ld.chats),
                    "inactive": len(ld.inactive),
                    "on_hold": None if held is None else held.get(ld.agent.id, 0),
                    "chats": sorted(ld.chats | ld.inactive),
                    "idle_since": ld.idle_since if not (ld.chats or ld.inactive) else None,
                    "groups": sorted(ld.agent.skill_groups),
                }
                for ld in self.agents
            ],
            "alerts": [
                {**attrs.asdict(a), "words": list(a.words), "categories": list(a.categories)}
                for a in self.alerts
            ],
        }


_ONLINE = AgentStatus.ONLINE
_BUSY = AgentStatus.BUSY
_AWAY = AgentStatus.AWAY


def group_counts(loads: Sequence[AgentLoad], groups: Iterable[str] = ()) -> dict[str, list[int]]:
    """Per skill group (``groups`` plus every agent's): ``[online, busy, away, offline,
    free slots, chats held, capacity]`` from the agents' loads, in one pass."""
    counts: dict[str, list[int]] = {g: [0, 0, 0, 0, 0, 0, 0] for g in groups}
    for load in loads:
        agent = load.agent
        status = agent.status
        held = len(load.chats) + len(load.inactive)
        if status is _ONLINE:
            column = 0
            limit = agent.reception_limit
            free = load.free  # units of the limit (slots, without channel weights)
        else:
            column = 1 if status is _BUSY else 2 if status is _AWAY else 3
            free = limit = 0
        for group in agent.skill_groups:
            c = counts.get(group)
            if c is None:
                c = counts[group] = [0, 0, 0, 0, 0, 0, 0]
            c[column] += 1
            c[4] += free
            c[5] += held
            c[6] += limit
    return counts


def build_snapshot(
    now: float,
    counts: Mapping[str, Sequence[int]],
    loads: Sequence[AgentLoad],
    heads: Mapping[str, QueueHead],
    oldest: Mapping[ChatId, Chat],
    handle_s: float,
    alerts: Sequence[Alert] = (),
) -> Snapshot:
    """Fold the reads into a :class:`Snapshot` (pure).

    ``counts`` are the groups' agent figures (:func:`group_counts`, or the same from
    :class:`~chatmgmt.ports.GroupCensus`); ``heads`` maps a group to the head of its waiting
    line (groups only there, e.g. ``""`` while chats without a group wait, are shown too); the
    longest wait is from the head's ``oldest_at``, else from the chat in ``oldest`` (the oldest
    waiting chat of the line, for its ``queued_at``); ``handle_s`` is the mean handle time of
    the wait estimate (as :func:`chatmgmt.assignment.estimate_wait_s` for a chat arriving now).
    """
    empty = (0, 0, 0, 0, 0, 0, 0)
    views: dict[str, GroupView] = {}
    names = counts.keys() | heads.keys() if heads else counts.keys()
    for group in sorted(names):
        c = counts.get(group, empty)
        head = heads.get(group)
        waiting = 0
        longest = None
        if head is not None:
            waiting = head.length
            since = head.oldest_at
            if since is None and head.oldest is not None:
                chat = oldest.get(head.oldest)
                if chat is not None:
                    since = chat.queued_at if chat.queued_at is not None else chat.created_at
            if since is not None:
                longest = now - since if now > since else 0.0
        capacity = c[6]
        estimate = None
        if capacity > 0:
            estimate = (waiting + 1) * handle_s / capacity
            if math.isinf(estimate):
                estimate = None
        views[group] = GroupView(
            group, waiting, longest, estimate, c[0], c[1], c[2], c[3], c[4], c[5]
        )
    return Snapshot(now, views, loads, tuple(alerts))


def fold_snapshot(
    now: float,
    censuses: Mapping[str, GroupCensus],
    lines: Sequence[str],
    heads: Sequence[QueueHead],
    loads: Sequence[AgentLoad],
    oldest: Mapping[ChatId, Chat],
    handle_s: float,
    alerts: Sequence[Alert] = (),
) -> Snapshot:
    """:func:`build_snapshot` from the monitor's reads as they come (pure): ``censuses`` per
    group (:meth:`~chatmgmt.ports.AgentStore.censuses`), ``heads[i]`` the head of the waiting
    line of group ``lines[i]`` (``lines`` in name order, holding every group of ``censuses``;
    one without a census is shown only while chats wait in it); ``oldest`` the waiting chats
    read for a head without ``oldest_at``."""
    views: dict[str, GroupView] = {}
    for group, head in zip(lines, heads, strict=True):
        c = censuses.get(group)
        waiting = head.length
        if c is None:
            if not waiting:
                continue
            c = _NO_CENSUS
        longest = None
        if waiting:
            since = head.oldest_at
            if since is None and head.oldest is not None:
                chat = oldest.get(head.oldest)
                if chat is not None:
                    since = chat.queued_at if chat.queued_at is not None else chat.created_at
            if since is not None:
                longest = now - since if now > since else 0.0
        capacity = c.capacity
        estimate = None
        if capacity > 0:
            estimate = (waiting + 1) * handle_s / capacity
            if math.isinf(estimate):
                estimate = None
        views[group] = GroupView(
            group,
            waiting,
            longest,
            estimate,
            c.eligible + c.full,
            c.busy,
            c.away,
            c.offline,
            c.free,
            c.held,
        )
    return Snapshot(now, views, loads, tuple(alerts))


_NO_CENSUS = GroupCensus()


def hold_counts(
    loads: Sequence[AgentLoad], chats: Mapping[ChatId, Chat]
) -> tuple[dict[str, int], dict[str, int]]:
    """Per agent id and per skill group, the chats on hold its agents hold (pure): a chat of
    an agent's load (counted or inactive) whose record in ``chats`` names that agent and is on
    hold (:func:`chatmgmt.lifecycle.on_hold`); an agent of two groups counts in both, as for
    ``active_chats``."""
    agents: dict[str, int] = {}
    groups: dict[str, int] = {}
    for load in loads:
        aid = load.agent.id
        held = 0
        for cid in load.chats | load.inactive:
            chat = chats.get(cid)
            if chat is not None and chat.agent_id == aid and on_hold(chat):
                held += 1
        agents[aid] = held
        for group in load.agent.skill_groups:
            groups[group] = groups.get(group, 0) + held
    return agents, groups


def with_holds(
    snapshot: Snapshot, loads: Sequence[AgentLoad], chats: Mapping[ChatId, Chat]
) -> Snapshot:
    """``snapshot`` with its on-hold counts (:func:`hold_counts` of ``loads`` over the chat
    records ``chats``), per agent and per group (pure)."""
    agents, groups = hold_counts(loads, chats)
    views = {
        name: attrs.evolve(view, on_hold=groups.get(name, 0))
        for name, view in snapshot.groups.items()
    }
    return attrs.evolve(snapshot, groups=views, on_hold=agents)
