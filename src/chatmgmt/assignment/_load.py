"""The agent-load rules, once: eligibility, claim, release, inactive chats, census and rank values.

Capacity per channel and the fairness cap live here too: a chat of channel ``c`` costs
:func:`weight` units of the reception limit, at most ``Agent.channel_limits[c]`` chats of ``c``
are held at once, and an agent with ``cap`` assignments within the last ``window_s`` seconds
takes no more (:func:`fits`). :func:`eligible` is an agent's membership in a ranking index
(ONLINE, a unit left); the claim of one chat also needs :func:`fits`, which the stores check
while they walk the index.

Pure functions over :class:`~chatmgmt.model.AgentLoad`. The in-memory and SQLite adapters call
them; the Redis adapter's Lua scripts implement the same rules and a contract test
(``chatmgmt.testing``) pins every adapter's answers to these functions.

>>> from chatmgmt.model import Agent, AgentLoad, AgentStatus, ChatId
>>> load = AgentLoad(Agent("ann", status=AgentStatus.ONLINE, reception_limit=1))
>>> eligible(load)
True
>>> eligible(claimed(load, ChatId("c1"), now=5.0, tiebreak=0.5))
False
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..model import (
    Agent,
    AgentId,
    AgentLoad,
    AgentStatus,
    ChatId,
    Ranking,
    copier,
    entry_function,
    evolve,
)

if TYPE_CHECKING:
    from ..ports import Claim, RankedClaim

__all__ = [
    "CENSUS_CATEGORIES",
    "assignments_within",
    "census_category",
    "channel_count",
    "claimed",
    "cost",
    "counts_toward_limit",
    "eligible",
    "fits",
    "fits_claim",
    "forced",
    "has_channel_rules",
    "in_group",
    "moved_inactive",
    "rank_entry",
    "rank_entry_function",
    "released",
    "takes_claim",
    "touched",
    "updated_agent",
    "weight",
]

_ONLINE = AgentStatus.ONLINE  # a global: cheaper to read than an enum class's attribute
CENSUS_CATEGORIES = ("eligible", "full", "busy", "away", "offline")
"""The availability classes of :class:`~chatmgmt.ports.Census`, one per agent."""


def in_group(agent: Agent, group: str) -> bool:
    """Whether ``agent`` serves ``group`` (``""`` is every agent)."""
    return group == "" or group in agent.skill_groups


def eligible(load: AgentLoad) -> bool:
    """ONLINE and below the reception limit (a unit left): in the ranking indexes, and may be
    given one more chat of weight 1 (any chat, without capacity per channel)."""
    agent = load.agent
    if agent.status is not _ONLINE:
        return False
    # ``load.used`` without the property's call when there are no channel weights
    used = load.used if agent.channel_weights else len(load.chats)
    return used < agent.reception_limit


def weight(agent: Agent, channel: str) -> int:
    """Units of the reception limit one chat of ``channel`` takes at ``agent`` (default 1)."""
    return agent.channel_weights.get(channel, 1) if agent.channel_weights else 1


def cost(agent: Agent, channels: Iterable[str]) -> int:
    """Units of ``agent``'s reception limit that chats of ``channels`` (one entry per chat)
    take: the sum of their :func:`weight` (their number, without channel weights)."""
    return sum(weight(agent, ch) for ch in channels)


def channel_count(load: AgentLoad, channel: str) -> int:
    """Counted chats of ``channel`` the agent holds (by its recorded ``channels``)."""
    channels = load.channels
    return sum(1 for c in load.chats if channels.get(c) == channel)


def assignments_within(load: AgentLoad, now: float, window_s: float) -> int:
    """The agent's assignments within the ``window_s`` seconds before ``now`` (by its
    recorded ``recent`` times: those later than ``now - window_s``)."""
    start = now - window_s
    return sum(1 for t in load.recent if t > start)


def fits(load: AgentLoad, channel: str, now: float, cap: int = 0, window_s: float = 0.0) -> bool:
    """Whether the agent may take one more chat of ``channel`` at ``now``: :func:`eligible`,
    the chat's :func:`weight` fits below the reception limit, fewer than
    ``channel_limits[channel]`` chats of that channel held, and (``cap`` > 0) fewer than ``cap``
    assignments within the last ``window_s`` seconds. Without capacity per channel and cap it is
    :func:`eligible`."""
    agent = load.agent
    if agent.status is not _ONLINE:
        return False
    if has_channel_rules(agent):
        if load.used + weight(agent, channel) > agent.reception_limit:
            return False
        most = agent.channel_limits.get(channel)
        if most is not None and channel_count(load, channel) >= most:
            return False
    elif len(load.chats) >= agent.reception_limit:
        return False
    return cap <= 0 or assignments_within(load, now, window_s) < cap


def fits_claim(load: AgentLoad, claim: Claim | RankedClaim, now: float) -> bool:
    """:func:`fits` with the terms of ``claim`` (its channel and fairness cap)."""
    return fits(load, claim.channel, now, claim.cap, claim.window_s)


def takes_claim(
    load: AgentLoad, claim: Claim, chat_id: ChatId, release: AgentId | None, now: float
) -> bool:
    """Whether the agent of ``load`` takes the named ``claim`` of ``chat_id``: forced, holding
    the chat already (active or inactive), or fitting the claim's terms and not the agent the
    same change releases."""
    return (
        claim.force
        or chat_id in load.chats
        or chat_id in load.inactive
        or (fits_claim(load, claim, now) and claim.agent_id != release)
    )


def has_channel_rules(agent: Agent) -> bool:
    """Whether ``agent`` has capacity per channel (weights or limits)."""
    return bool(agent.channel_weights or agent.channel_limits)


def census_category(load: AgentLoad) -> str:
    """Which :data:`CENSUS_CATEGORIES` entry the agent counts under."""
    agent = load.agent
    status = agent.status
    if status is _ONLINE:
        # ``load.used`` without the property's call when there are no channel weights
        used = load.used if agent.channel_weights else len(load.chats)
        return "eligible" if used < agent.reception_limit else "full"
    return str(status.value)


def claimed(
    load: AgentLoad,
    chat_id: ChatId,
    now: float,
    tiebreak: float,
    channel: str = "",
    keep_s: float = 0.0,
) -> AgentLoad:
    """The load after the agent takes ``chat_id`` (a counted chat; idempotent per chat).

    Taking a chat moves ``last_assigned_at`` to ``now`` and draws a new ``tiebreak``. An agent
    with capacity per channel records the chat's ``channel`` (when given); with ``keep_s`` > 0
    (a fairness cap is set) ``now`` joins the assignment times in ``recent``, which keep only
    the last ``keep_s`` seconds; with ``keep_s`` = 0 none are kept.
    """
    if keep_s > 0:
        start = now - keep_s
        recent: tuple[float, ...] = (*(t for t in load.recent if t > start), now)
    else:
        recent = ()
    return _take(load, chat_id, now, tiebreak, channel, recent)


def _take(
    load: AgentLoad,
    chat_id: ChatId,
    now: float,
    tiebreak: float,
    channel: str,
    recent: tuple[float, ...],
) -> AgentLoad:
    """``chat_id`` joins the counted chats (idempotent), its channel recorded at an agent with
    capacity per channel, with the assignment times ``recent``."""
    if chat_id in load.chats or chat_id in load.inactive:
        return load
    changes: dict[str, object] = {}
    if channel and has_channel_rules(load.agent):
        changes["channels"] = {**load.channels, chat_id: channel}
    if recent != load.recent:
        changes["recent"] = recent
    if not changes:  # the usual claim: the same three fields, one generated copy
        return _taken(load, load.chats | {chat_id}, now, tiebreak)
    return evolve(
        load, chats=load.chats | {chat_id}, last_assigned_at=now, tiebreak=tiebreak, **changes
    )


_taken = copier(AgentLoad, "chats", "last_assigned_at", "tiebreak")


def touched(load: AgentLoad, now: float, tiebreak: float) -> AgentLoad:
    """The load after a pick that takes no slot (``RankedClaim(hold=False)``): it counts as an
    assignment for the rankings (``last_assigned_at``, ``tiebreak``), nothing else changes."""
    return evolve(load, last_assigned_at=now, tiebreak=tiebreak)


def forced(
    load: AgentLoad, chat_id: ChatId, now: float, tiebreak: float, channel: str = ""
) -> AgentLoad:
    """The load after a repair gives the agent back a chat it is active with (``Claim(force=
    True)``): like :func:`claimed`, whatever the agent's status and load; a repair is no new
    assignment, so ``recent`` is left as it is."""
    return _take(load, chat_id, now, tiebreak, channel, load.recent)


def released(load: AgentLoad, chat_id: ChatId, now: float, tiebreak: float) -> AgentLoad:
    """The load after the agent gives ``chat_id`` back (idempotent).

    An agent left with no chat at all becomes idle at ``now``.
    """
    if chat_id not in load.chats and chat_id not in load.inactive:
        return load
    chats = load.chats
    if chat_id in chats:  # else the same set (no new one)
        chats = chats - {chat_id}
    inactive = load.inactive
    if chat_id in inactive:  # else the same set (no new one)
        inactive = inactive - {chat_id}
    idle_since = now if not chats and not inactive else load.idle_since
    if chat_id in load.channels:
        channels = {c: ch for c, ch in load.channels.items() if c != chat_id}
        return evolve(
            load,
            chats=chats,
            inactive=inactive,
            idle_since=idle_since,
            tiebreak=tiebreak,
            channels=channels,
        )
    return _released(load, chats, inactive, idle_since, tiebreak)


_released = copier(AgentLoad, "chats", "inactive", "idle_since", "tiebreak")


def moved_inactive(load: AgentLoad, chat_id: ChatId, inactive: bool) -> AgentLoad:
    """The load after a held chat stops (``inactive=True``) or starts again counting."""
    if inactive and chat_id in load.chats:
        return evolve(load, chats=load.chats - {chat_id}, inactive=load.inactive | {chat_id})
    if not inactive and chat_id in load.inactive:
        return evolve(load, chats=load.chats | {chat_id}, inactive=load.inactive - {chat_id})
    return load


def counts_toward_limit(
    inactive: bool, on_hold: bool, *, inactive_count: bool, on_hold_count: bool
) -> bool:
    """Whether a held (ACTIVE) chat counts toward its agent's limit: not when it is inactive
    and ``inactive_chats_count`` is off, nor when it is on hold and ``on_hold_chats_count`` is
    off. An uncounted chat keeps its agent (its slot sits in ``AgentLoad.inactive``); when it
    counts again it does so even above the limit (the agent then gets no new chat until below
    it, as after a lowered limit): a held chat is never taken from its agent for capacity."""
    return not ((inactive and not inactive_count) or (on_hold and not on_hold_count))


def updated_agent(old: AgentLoad | None, agent: Agent, now: float, tiebreak: float) -> AgentLoad:
    """The load after registering or updating ``agent``: its chats are kept, its config
    version moves by one; a new agent starts idle at ``now`` with ``tiebreak``."""
    if old is None:
        return AgentLoad(agent=agent, idle_since=now, tiebreak=tiebreak, version=1)
    return evolve(old, agent=agent, version=old.version + 1)


def rank_entry(load: AgentLoad, ranking: Ranking) -> tuple[tuple[float, ...], AgentId]:
    """The sort key of ``load`` in a ranking index: the ranking's values, then the agent id.

    The smallest entry among eligible agents is the pick.
    """
    return ranking.key(load), load.agent.id


def rank_entry_function(ranking: Ranking) -> Callable[[AgentLoad], tuple[Any, ...]]:
    """:func:`rank_entry` of ``ranking`` flattened, ``(*key, agent_id)``, as one function of
    the load (generated once per ranking: an index calls it on every change of a load). Its
    entries sort as :func:`rank_entry`'s (every key of one ranking has the same length) with
    one tuple comparison less per step of a search."""
    return entry_function(ranking)
