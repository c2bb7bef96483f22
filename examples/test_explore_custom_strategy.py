"""Exploring a custom assignment strategy with the interleaving explorer.

Two customers open chats while an agent ends one: the explorer runs the operations through
the interleavings of their storage calls (a custom callable strategy chooses from a snapshot,
and the store re-checks its pick when it claims) and checks the library's invariants after
every call. Run it with pytest; it is part of the project's test suite.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from chatmgmt import Agent, AgentLoad, AgentStatus, Chat, ChatManager, ChatSettings, CustomerInfo
from chatmgmt.testing import ManualClock, Operation, crash_points, explore, sequential_ids

SETTINGS = ChatSettings()


def most_senior(eligible: Sequence[AgentLoad], chat: Chat) -> AgentLoad | None:
    """The most senior agent with room (ties: the least busy)."""
    return max(eligible, key=lambda ld: (ld.agent.tier, -ld.active), default=None)


def make_world() -> ChatManager:
    """A fresh, deterministic world each call: seeded rng, sequential ids, a manual clock."""
    manager = ChatManager(
        settings=SETTINGS,
        strategies={"*": most_senior},
        rng=random.Random(1),
        ids=sequential_ids(),
        clock=ManualClock(100.0),
    )
    for name, tier in (("senior", 2), ("junior", 0)):
        agent = Agent(name, skill_groups={"sales"}, tier=tier, reception_limit=1)
        manager.register_agent(agent, now=0.0)
        manager.set_agent_status(name, AgentStatus.ONLINE, now=0.0)
    manager.open_chat(CustomerInfo(name="first"), skill_group="sales", chat_id="c1", now=1.0)
    return manager


def opens(chat_id: str, now: float) -> Operation:
    return Operation(
        f"open {chat_id}",
        lambda m: m.open_chat(
            CustomerInfo(name=chat_id), skill_group="sales", chat_id=chat_id, now=now
        ),
    )


OPERATIONS = [
    opens("c2", 10.0),
    opens("c3", 11.0),
    Operation("end c1", lambda m: m.end_chat("c1", now=12.0)),
]


def test_two_opens_and_an_end_keep_every_invariant() -> None:
    report = explore(make_world, OPERATIONS[:2], exhaustive_limit=500)
    report.assert_ok()  # no agent over its limit, no chat lost, queues in order, drained
    assert report.runs > 1

    report = explore(make_world, OPERATIONS, exhaustive_limit=0, random_runs=50, probes=1)
    report.assert_ok()
    assert report.runs > 1


def test_a_host_crash_at_any_call_of_an_open_is_repaired() -> None:
    report = crash_points(make_world, OPERATIONS[0], now=50.0)
    report.assert_ok()
    assert report.points > 1 and report.repairs == {}
