"""The explorers' standard world, shared by tests/test_explorer*.py: ann and bob (group g,
limit 1) hold c1 and c2; c3 waits in queue/g; cat (group h, limit 1) is free; dan (group g,
limit 1) is OFFLINE. Each test module passes its own settings."""

from __future__ import annotations

import random

from chatmgmt import Agent, AgentStatus, ChatManager, ChatSettings, CustomerInfo
from chatmgmt.ports import Storage
from chatmgmt.testing import ManualClock, sequential_ids


def standard_world(settings: ChatSettings, storage: Storage | None = None) -> ChatManager:
    """A manager over ``storage`` (a new memory store when None) holding the standard world."""
    m = standard_agents(settings, storage)
    for i in (1, 2, 3):
        m.open_chat(CustomerInfo(name=f"c{i}"), skill_group="g", chat_id=f"c{i}", now=float(i))
    return m


def standard_agents(settings: ChatSettings, storage: Storage | None = None) -> ChatManager:
    """A manager with the standard world's agents and no chat: ann and bob (group g, limit 1)
    and cat (group h, limit 1) ONLINE, dan (group g, limit 1) OFFLINE."""
    m = ChatManager(
        storage, settings, rng=random.Random(7), ids=sequential_ids(), clock=ManualClock(100.0)
    )
    for name, groups, status in (
        ("ann", {"g"}, AgentStatus.ONLINE),
        ("bob", {"g"}, AgentStatus.ONLINE),
        ("cat", {"h"}, AgentStatus.ONLINE),
        ("dan", {"g"}, AgentStatus.OFFLINE),
    ):
        m.register_agent(Agent(name, skill_groups=groups, status=status, reception_limit=1), now=0)
    return m
