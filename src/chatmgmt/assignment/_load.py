"""The agent-load rules, once: eligibility, claim, release, inactive chats, census and rank values.

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

from ..model import Agent, AgentId, AgentLoad, AgentStatus, ChatId, Ranking, evolve

__all__ = [
    "CENSUS_CATEGORIES",
    "census_category",
    "claimed",
    "eligible",
    "forced",
    "in_group",
    "moved_inactive",
    "rank_entry",
    "released",
    "touched",
    "updated_agent",
]

CENSUS_CATEGORIES = ("eligible", "full", "busy", "away", "offline")
"""The availability classes of :class:`~chatmgmt.ports.Census`, one per agent."""


def in_group(agent: Agent, group: str) -> bool:
    """Whether ``agent`` serves ``group`` (``""`` is every agent)."""
    return group == "" or group in agent.skill_groups


def eligible(load: AgentLoad) -> bool:
    """ONLINE and below the reception limit: may be given one more chat."""
    return load.agent.status is AgentStatus.ONLINE and len(load.chats) < load.agent.reception_limit


def census_category(load: AgentLoad) -> str:
    """Which :data:`CENSUS_CATEGORIES` entry the agent counts under."""
    status = load.agent.status
    if status is AgentStatus.ONLINE:
        return "eligible" if len(load.chats) < load.agent.reception_limit else "full"
    return str(status.value)


def claimed(load: AgentLoad, chat_id: ChatId, now: float, tiebreak: float) -> AgentLoad:
    """The load after the agent takes ``chat_id`` (a counted chat; idempotent per chat).

    Taking a chat moves ``last_assigned_at`` to ``now`` and draws a new ``tiebreak``.
    """
    if chat_id in load.chats or chat_id in load.inactive:
        return load
    return evolve(load, chats=load.chats | {chat_id}, last_assigned_at=now, tiebreak=tiebreak)


def touched(load: AgentLoad, now: float, tiebreak: float) -> AgentLoad:
    """The load after a pick that takes no slot (``RankedClaim(hold=False)``): it counts as an
    assignment for the rankings (``last_assigned_at``, ``tiebreak``), nothing else changes."""
    return evolve(load, last_assigned_at=now, tiebreak=tiebreak)


def forced(load: AgentLoad, chat_id: ChatId, now: float, tiebreak: float) -> AgentLoad:
    """The load after a repair gives the agent back a chat it is active with (``Claim(force=
    True)``): like :func:`claimed`, whatever the agent's status and load."""
    return claimed(load, chat_id, now, tiebreak)


def released(load: AgentLoad, chat_id: ChatId, now: float, tiebreak: float) -> AgentLoad:
    """The load after the agent gives ``chat_id`` back (idempotent).

    An agent left with no chat at all becomes idle at ``now``.
    """
    if chat_id not in load.chats and chat_id not in load.inactive:
        return load
    chats = load.chats - {chat_id}
    inactive = load.inactive - {chat_id}
    idle_since = now if not chats and not inactive else load.idle_since
    return evolve(load, chats=chats, inactive=inactive, idle_since=idle_since, tiebreak=tiebreak)


def moved_inactive(load: AgentLoad, chat_id: ChatId, inactive: bool) -> AgentLoad:
    """The load after a held chat stops (``inactive=True``) or starts again counting."""
    if inactive and chat_id in load.chats:
        return evolve(load, chats=load.chats - {chat_id}, inactive=load.inactive | {chat_id})
    if not inactive and chat_id in load.inactive:
        return evolve(load, chats=load.chats | {chat_id}, inactive=load.inactive - {chat_id})
    return load


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
