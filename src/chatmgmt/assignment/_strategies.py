"""Assignment strategies: rankings given as data, and custom callables.

A built-in strategy is a :class:`~chatmgmt.model.Ranking` — a tuple of keys over
:class:`~chatmgmt.model.AgentLoad` fields — so a storage index answers a pick in O(log n). A
custom strategy is any callable that picks among a snapshot of eligible agents; the manager then
claims the pick with a checked claim and picks again from a fresh snapshot if it lost a race.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypeAlias

from ..model import AgentLoad, Chat, Ranking, RankKey
from ..settings import AssignmentSettings, StrategyName

__all__ = [
    "LEAST_BUSY",
    "LONGEST_IDLE",
    "ROUND_ROBIN",
    "SATURATION_LONGEST",
    "SATURATION_RANDOM",
    "CustomStrategy",
    "Strategy",
    "builtin_ranking",
    "rank_scan",
    "strategy_for_group",
    "strategy_name",
    "with_tiers",
]

CustomStrategy: TypeAlias = Callable[[Sequence[AgentLoad], Chat], "AgentLoad | None"]
"""A custom strategy: given the eligible agents (a snapshot) and the chat, return the pick."""

Strategy: TypeAlias = "Ranking | CustomStrategy"
"""Either a ranking (indexed, O(log n)) or a custom callable (O(n))."""

ROUND_ROBIN = Ranking("round_robin", (RankKey("last_assigned_at"), RankKey("account_order")))
"""Longest since last assignment first; account order breaks ties (fair after going offline)."""

LEAST_BUSY = Ranking("least_busy", (RankKey("active"), RankKey("last_assigned_at")))
"""Fewest active chats first; longest since last assignment breaks ties."""

SATURATION_RANDOM = Ranking("saturation", (RankKey("saturation"), RankKey("tiebreak")))
"""Lowest active/limit first; ties broken at random (a key redrawn from the injected RNG)."""

SATURATION_LONGEST = Ranking("saturation", (RankKey("saturation"), RankKey("last_assigned_at")))
"""Lowest active/limit first; longest since last assignment breaks ties."""

LONGEST_IDLE = Ranking(
    "longest_idle", (RankKey("active"), RankKey("idle_since"), RankKey("account_order"))
)
"""Agents with no chats first, the longest idle (since their last chat ended) first."""


def with_tiers(inner: Ranking) -> Ranking:
    """Priority tiers: the highest agent tier first, then ``inner``."""
    return Ranking(f"tiers+{inner.name}", (RankKey("tier", descending=True), *inner.keys))


def builtin_ranking(
    name: StrategyName, *, priority_tiers: bool = False, saturation_tiebreak: str = "random"
) -> Ranking:
    """The ranking of a built-in strategy, optionally wrapped in priority tiers."""
    if name is StrategyName.ROUND_ROBIN:
        ranking = ROUND_ROBIN
    elif name is StrategyName.LEAST_BUSY:
        ranking = LEAST_BUSY
    elif name is StrategyName.SATURATION:
        ranking = SATURATION_RANDOM if saturation_tiebreak == "random" else SATURATION_LONGEST
    else:
        ranking = LONGEST_IDLE
    return with_tiers(ranking) if priority_tiers else ranking


def strategy_for_group(
    settings: AssignmentSettings,
    group: str,
    custom: Mapping[str, Strategy] | None = None,
) -> Strategy:
    """The strategy a group uses: a custom one registered for it, its setting, or the default.

    ``custom`` maps group names (``"*"`` for every group) to a ranking or a callable.
    """
    if custom:
        chosen = custom.get(group, custom.get("*"))
        if chosen is not None:
            return chosen
    group_settings = settings.groups.get(group)
    name = settings.strategy
    tiers = settings.priority_tiers
    if group_settings is not None:
        if group_settings.strategy is not None:
            name = group_settings.strategy
        if group_settings.priority_tiers is not None:
            tiers = group_settings.priority_tiers
    return builtin_ranking(
        name, priority_tiers=tiers, saturation_tiebreak=settings.saturation_tiebreak
    )


def strategy_name(strategy: Strategy) -> str:
    """A readable name for the explanation of a decision."""
    if isinstance(strategy, Ranking):
        return strategy.name
    return getattr(strategy, "__name__", type(strategy).__name__)


def rank_scan(loads: Sequence[AgentLoad], ranking: Ranking) -> AgentLoad | None:
    """The first of ``loads`` by ``ranking`` — the O(n) reference the indexes must agree with."""
    best: AgentLoad | None = None
    best_key: tuple[tuple[float, ...], str] | None = None
    for load in loads:
        key = (ranking.key(load), load.agent.id)
        if best_key is None or key < best_key:
            best, best_key = load, key
    return best
