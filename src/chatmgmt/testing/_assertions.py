"""Assertion helpers for assignment policies."""

from __future__ import annotations

from typing import Any

from .._stats import jain_index
from ..assignment._load import channel_count
from ..model import AgentLoad, AgentStatus

__all__ = ["assert_fair", "assert_within_limits"]


def _loads(manager_or_storage: Any) -> list[AgentLoad]:
    storage = getattr(manager_or_storage, "storage", manager_or_storage)
    return list(storage.agents.list())


def assert_within_limits(manager_or_storage: Any) -> None:
    """Fail when any agent holds more chats than its reception limit (counted in units of its
    channel weights, :attr:`~chatmgmt.model.AgentLoad.used`) or more chats of one channel than
    its limit for that channel."""
    over = []
    for ld in _loads(manager_or_storage):
        if ld.used > ld.agent.reception_limit:
            over.append(f"{ld.agent.id} holds {ld.used} > {ld.agent.reception_limit}")
        for channel, most in ld.agent.channel_limits.items():
            n = channel_count(ld, channel)
            if n > most:
                over.append(f"{ld.agent.id} holds {n} {channel} chats > {most}")
    assert not over, "agents over their limit: " + "; ".join(over)


def assert_fair(
    manager_or_storage: Any,
    *,
    max_saturation_spread: float | None = None,
    min_jain: float | None = None,
) -> None:
    """Fail when the ONLINE agents' saturations differ by more than ``max_saturation_spread``
    or their Jain index is below ``min_jain``."""
    loads = [
        ld
        for ld in _loads(manager_or_storage)
        if ld.agent.status is AgentStatus.ONLINE and ld.agent.reception_limit
    ]
    sats = [ld.saturation for ld in loads]
    if not sats:
        return
    if max_saturation_spread is not None:
        spread = max(sats) - min(sats)
        assert spread <= max_saturation_spread, (
            f"saturation spread {spread:.2f} > {max_saturation_spread}: "
            + ", ".join(f"{ld.agent.id}={ld.saturation:.2f}" for ld in loads)
        )
    if min_jain is not None:
        index = jain_index(sats)
        assert index >= min_jain, f"Jain index {index:.3f} < {min_jain}"
