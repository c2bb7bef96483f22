"""The memory unit's report of the queues a freed slot watches (``Change.watch``): heads read
when every watched queue was empty are reused until a chat is pushed into some queue, never
after, so an end next to a waiting chat still drains it."""

from __future__ import annotations

import random

from chatmgmt import Agent, AgentStatus, ChatManager, ChatState, CustomerInfo, EndReason
from chatmgmt.storage.memory import MemoryStorage
from chatmgmt.testing import ManualClock


def test_an_end_after_a_push_reports_the_waiting_chat_and_drains_it() -> None:
    clock = ManualClock(1_000.0)
    storage = MemoryStorage()
    manager = ChatManager(storage, clock=clock, rng=random.Random(5))
    manager.register_agent(
        Agent("a0", skill_groups={"g"}, reception_limit=1, status=AgentStatus.ONLINE)
    )
    space = storage._space
    first = manager.open_chat(CustomerInfo(channel="web"), skill_group="g")
    manager.end_chat(first.id, reason=EndReason.AGENT)  # nobody waits: the empty heads kept
    assert len(space.idle_heads) == 1
    (watch,) = space.idle_heads
    pushes, heads = space.idle_heads[watch]
    assert pushes == space.pushes and [h.length for h in heads] == [0] * len(watch)
    second = manager.open_chat(CustomerInfo(channel="web"), skill_group="g")
    third = manager.open_chat(CustomerInfo(channel="web"), skill_group="g")  # a0 is full
    assert manager.get_chat(third.id).state is ChatState.QUEUED
    assert space.pushes == pushes + 1  # the kept heads no longer hold
    manager.end_chat(second.id, reason=EndReason.AGENT)
    served = manager.get_chat(third.id)
    assert served.state is ChatState.ACTIVE and served.agent_id == "a0"
    # the queue is empty again: the next end reads the heads once more and keeps them
    manager.end_chat(third.id, reason=EndReason.AGENT)
    assert space.idle_heads[watch][0] == space.pushes
