"""Unit-testing a custom assignment policy with chatmgmt's testing toolkit.

Run it with pytest; it is part of the project's test suite.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from chatmgmt import AgentLoad, Chat, ChatManager, CustomerInfo
from chatmgmt.testing import ManualClock, assert_fair, assert_within_limits, make_agent


def senior_first(eligible: Sequence[AgentLoad], chat: Chat) -> AgentLoad | None:
    """VIPs go to the most senior agent with room; everyone else to the least saturated."""
    if chat.customer.vip_level >= 3:
        return max(eligible, key=lambda ld: (ld.agent.tier, -ld.active), default=None)
    return min(eligible, key=lambda ld: (ld.saturation, ld.agent.account_order), default=None)


def make_manager() -> ChatManager:
    manager = ChatManager(strategies={"*": senior_first}, clock=ManualClock(), rng=random.Random(1))
    manager.register_agent(make_agent("junior-1", tier=0, limit=4, order=1))
    manager.register_agent(make_agent("junior-2", tier=0, limit=4, order=2))
    manager.register_agent(make_agent("senior", tier=2, limit=2, order=3))
    return manager


def test_vips_go_to_the_senior_agent() -> None:
    manager = make_manager()
    chat = manager.open_chat(CustomerInfo(partner_id="vip-1", vip_level=5))
    assert chat.agent_id == "senior"


def test_everyone_else_is_spread_by_saturation() -> None:
    manager = make_manager()
    picks = [manager.open_chat(CustomerInfo(partner_id=f"c{i}")).agent_id for i in range(4)]
    assert picks == ["junior-1", "junior-2", "senior", "junior-1"]


def test_the_policy_never_breaks_limits_and_stays_fair() -> None:
    manager = make_manager()
    for i in range(10):
        manager.open_chat(CustomerInfo(partner_id=f"c{i}"))
    assert_within_limits(manager)
    assert_fair(manager, max_saturation_spread=0.5)
