"""The drain after an end, from what the end's unit of work reports (``Change.watch``)."""

from __future__ import annotations

import random
from typing import Any

import attrs

from assignment.assign_helpers import agent, customer, manager
from chatmgmt import ChatManager, ChatState, EndReason
from chatmgmt.ports import Applied, Change
from chatmgmt.storage import MemoryStorage
from chatmgmt.testing import ManualClock


class _Counting:
    """A port that counts the calls of each method before passing them on."""

    def __init__(self, port: Any, calls: list[str], name: str) -> None:
        self._port, self._calls, self._name = port, calls, name

    def __getattr__(self, method: str) -> Any:
        target = getattr(self._port, method)

        def call(*args: Any, **kwargs: Any) -> Any:
            self._calls.append(f"{self._name}.{method}")
            return target(*args, **kwargs)

        return call


class _Storage:
    """A memory storage whose calls are counted; ``reports=False`` drops the unit's reports
    of heads and the released load, as a host's own storage may."""

    def __init__(self, inner: MemoryStorage, *, reports: bool = True) -> None:
        self.inner, self.reports, self.calls = inner, reports, []
        self.namespace = inner.namespace
        for name in ("customers", "agents", "chats", "queues", "outbox", "timers", "counters"):
            setattr(self, name, _Counting(getattr(inner, name), self.calls, name))

    def apply(self, change: Change) -> Applied:
        self.calls.append("apply")
        applied = self.inner.apply(change)
        return applied if self.reports else attrs.evolve(applied, heads=None, released=None)


def _pair(storage: Any) -> ChatManager:
    return ChatManager(storage, clock=ManualClock(1000.0), rng=random.Random(3))


def test_an_end_with_nobody_waiting_reads_the_chat_and_applies_once() -> None:
    storage = _Storage(MemoryStorage())
    m = _pair(storage)
    m.register_agent(agent("a", limit=2, groups=("g",)))
    chat = m.open_chat(customer("x"), skill_group="g")
    storage.calls.clear()
    m.end_chat(chat.id, reason=EndReason.AGENT)
    assert storage.calls == ["chats.get", "apply"]


def test_a_host_storage_without_reports_still_drains() -> None:
    storage = _Storage(MemoryStorage(), reports=False)
    m = _pair(storage)
    m.register_agent(agent("a", limit=1, groups=("g",)))
    first = m.open_chat(customer("x"), skill_group="g")
    waiting = m.open_chat(customer("y"), skill_group="g")
    assert waiting.state is ChatState.QUEUED
    storage.calls.clear()
    m.end_chat(first.id, reason=EndReason.AGENT)
    assert "agents.get" in storage.calls and "queues.heads" in storage.calls
    assert m.get_chat(waiting.id).state is ChatState.ACTIVE


def test_the_drain_serves_a_group_the_guess_did_not_watch() -> None:
    """A manager that never saw the agent watches the ended chat's group only; the agent
    also serves ``h``, where a chat waits: the drain reads that queue and serves it."""
    inner = MemoryStorage()
    m = _pair(inner)
    m.register_agent(agent("a", limit=1, groups=("g", "h")))
    first = m.open_chat(customer("x"), skill_group="g")
    waiting = m.open_chat(customer("y"), skill_group="h")
    assert waiting.state is ChatState.QUEUED
    storage = _Storage(inner)
    fresh = _pair(storage)  # knows nothing of agent a's groups
    fresh.end_chat(first.id, reason=EndReason.AGENT)
    assert "queues.heads" in storage.calls  # the guess missed queue/h: read it
    served = fresh.get_chat(waiting.id)
    assert (served.state, served.agent_id) == (ChatState.ACTIVE, "a")


def test_the_drain_after_a_reported_end_keeps_queue_order() -> None:
    """Everything the report says is what a read says: the oldest waiting chat goes first,
    across the agent's groups, and the manager learns the agent's groups for next time."""
    m = manager()
    m.register_agent(agent("a", limit=1, groups=("g", "h")))
    current = m.open_chat(customer("x"), skill_group="g")
    clock = m.clock
    assert isinstance(clock, ManualClock)
    waiting = []
    for i, group in enumerate(("h", "g", "h")):
        clock.advance(1)
        waiting.append(m.open_chat(customer(f"w{i}"), skill_group=group))
    served = []
    for _ in waiting:
        m.end_chat(current.id, reason=EndReason.AGENT)
        (current,) = m.list_chats(state=ChatState.ACTIVE)
        served.append(current.id)
    assert served == [c.id for c in waiting]
