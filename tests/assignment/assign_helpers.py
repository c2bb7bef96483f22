"""Shared helpers for the assignment tests."""

from __future__ import annotations

import random
from typing import Any

from chatmgmt import Agent, AgentStatus, ChatManager, ChatSettings, CustomerInfo
from chatmgmt.storage import MemoryStorage
from chatmgmt.testing import ManualClock, RecordingEventSink


def manager(settings: dict[str, Any] | None = None, **kwargs: Any) -> ChatManager:
    """A manager on fresh in-memory storage with a manual clock at t=1000 and a seeded RNG."""
    return ChatManager(
        MemoryStorage(),
        ChatSettings.from_dict(settings or {}),
        clock=kwargs.pop("clock", ManualClock(1000.0)),
        rng=kwargs.pop("rng", random.Random(7)),
        event_sink=kwargs.pop("event_sink", RecordingEventSink()),
        **kwargs,
    )


def agent(
    agent_id: str,
    *,
    limit: int = 3,
    groups: tuple[str, ...] = (),
    order: int = 0,
    tier: int = 0,
    status: AgentStatus = AgentStatus.ONLINE,
) -> Agent:
    """An agent, ONLINE by default."""
    return Agent(
        agent_id,
        skill_groups=frozenset(groups),
        reception_limit=limit,
        account_order=order,
        tier=tier,
        status=status,
    )


def customer(pid: str | None = None, **kwargs: Any) -> CustomerInfo:
    """A customer (anonymous without a partner id)."""
    return CustomerInfo(partner_id=pid, **kwargs)


def clock_of(m: ChatManager) -> ManualClock:
    """The manager's manual clock."""
    assert isinstance(m.clock, ManualClock)
    return m.clock


def sink_of(m: ChatManager) -> RecordingEventSink:
    """The manager's recording event sink."""
    sink = m._sinks.events
    assert isinstance(sink, RecordingEventSink)
    return sink
