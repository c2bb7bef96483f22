"""Policies a simulation compares: a strategy, or a variant of the settings with a strategy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias, Union

import attrs

from ..assignment._strategies import SATURATION_LONGEST, CustomStrategy, Strategy, strategy_name
from ..errors import SettingsError
from ..model import Ranking
from ..settings import AssignmentSettings, ChatSettings, StrategyName
from ._scenario import ScenarioError

__all__ = ["POLICY_NAMES", "Policy", "Variant", "policy_name", "resolve_policy"]

POLICY_NAMES = (*(s.value for s in StrategyName), "saturation_longest")
"""The policy names :func:`simulate` accepts as strings."""


@attrs.frozen
class Variant:
    """A policy that changes settings too: ``settings`` (plain values, merged over the
    scenario's settings: sticky routing, VIP rules, auto-transfer ...) and a ``strategy``
    (a built-in name, a :class:`~chatmgmt.model.Ranking` or a callable).

    >>> sticky = Variant(settings={"assignment": {"sticky": {"after_close_s": 3600}}})
    """

    settings: Mapping[str, Any] = attrs.field(factory=dict)
    strategy: Any = StrategyName.ROUND_ROBIN
    name: str | None = None


Policy: TypeAlias = Union[str, StrategyName, Ranking, CustomStrategy, Variant]  # noqa: UP007
"""A built-in strategy name (``"round_robin"``, ``"least_busy"``, ``"saturation"``,
``"saturation_longest"``, ``"longest_idle"``), a :class:`~chatmgmt.model.Ranking`, a custom
callable ``(eligible_loads, chat) -> load | None``, or a :class:`Variant` of the settings."""


def policy_name(policy: Policy) -> str:
    """The name a policy is reported under."""
    if isinstance(policy, Variant):
        return policy.name if policy.name is not None else policy_name(policy.strategy)
    if isinstance(policy, StrategyName):
        return policy.value
    if isinstance(policy, str):
        return policy.strip().lower().replace("-", "_")
    if isinstance(policy, Ranking):
        return policy.name
    return strategy_name(policy)


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def resolve_policy(
    policy: Policy, base: ChatSettings | None
) -> tuple[ChatSettings, dict[str, Strategy]]:
    """The settings and the custom strategies a policy runs with over ``base``."""
    settings = base if base is not None else ChatSettings()
    if isinstance(policy, Variant):
        if not isinstance(policy.settings, Mapping):
            raise ScenarioError(f"Variant.settings must be a mapping, got {policy.settings!r}")
        try:
            settings = ChatSettings.from_dict(_merge(settings.to_dict(), policy.settings))
        except SettingsError as exc:
            raise ScenarioError(f"policy {policy_name(policy)!r}: {exc}") from None
        policy = policy.strategy
    if isinstance(policy, (str, StrategyName)):
        name = policy_name(policy)
        if name == "saturation_longest":
            return settings, {"*": SATURATION_LONGEST}
        try:
            strategy = StrategyName(name)
        except ValueError:
            raise ScenarioError(
                f"unknown policy {policy!r}; one of {', '.join(POLICY_NAMES)} or a callable"
            ) from None
        assignment: AssignmentSettings = attrs.evolve(settings.assignment, strategy=strategy)
        return attrs.evolve(settings, assignment=assignment), {}
    if isinstance(policy, Ranking) or callable(policy):
        return settings, {"*": policy}
    raise ScenarioError(f"a policy is a name, a Ranking or a callable, got {policy!r}")
