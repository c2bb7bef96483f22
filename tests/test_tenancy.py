"""Two tenants on one MemoryDatabase never see each other's data."""

from __future__ import annotations

import asyncio
import random

import pytest

from chatmgmt import AsyncChatManager, ChatManager, ChatSettings, ChatState, CustomerInfo
from chatmgmt.assignment import queue_name
from chatmgmt.errors import NotFoundError
from chatmgmt.model import AgentId, ChatId, Timer
from chatmgmt.ports import Change
from chatmgmt.storage import MemoryDatabase, MemoryStorage
from chatmgmt.testing import ManualClock, make_agent

START = 1_700_000_000.0


def _tenant(db: MemoryDatabase, name: str, settings: ChatSettings | None = None) -> ChatManager:
    return ChatManager(
        MemoryStorage(name, db), settings, clock=ManualClock(START), rng=random.Random(name)
    )


def test_two_tenants_share_nothing_but_the_database() -> None:
    db = MemoryDatabase()
    acme = _tenant(db, "acme")
    globex = _tenant(db, "globex", ChatSettings.from_dict({"auto_save": {"channels": ["app"]}}))

    acme.register_agent(make_agent("ann", limit=1))
    acme_chat = acme.open_chat(CustomerInfo(partner_id="u_1", name="Ada"), chat_id="c_1")
    acme_queued = acme.open_chat(CustomerInfo(partner_id="u_2"), chat_id="c_2")
    assert acme_chat.agent_id == "ann" and acme_queued.state is ChatState.QUEUED

    # customers: globex has auto-save off on web, acme's record is invisible to it
    assert globex.customer("u_1") is None
    # agents: globex has none, so its chat queues even though acme's ann is online
    globex_chat = globex.open_chat(CustomerInfo(partner_id="u_1", name="Other"), chat_id="c_1")
    assert globex_chat.state is ChatState.QUEUED and globex_chat.agent_id is None
    assert globex.storage.agents.list() == []
    assert globex.storage.agents.get(AgentId("ann")) is None
    # the same chat id lives in both tenants without a conflict
    assert acme.get_chat("c_1").agent_id == "ann"
    assert globex.get_chat("c_1").customer.name == "Other"
    assert [c.id for c in globex.list_chats()] == ["c_1"]
    assert sorted(c.id for c in acme.list_chats()) == ["c_1", "c_2"]
    # queues: each tenant's queue holds its own chats only
    queue = queue_name("")
    assert [c for c, _ in acme.storage.queues.peek(queue, 10)] == ["c_2"]
    assert [c for c, _ in globex.storage.queues.peek(queue, 10)] == ["c_1"]
    with pytest.raises(NotFoundError):
        globex.queue_status("c_2")
    assert globex.queue_status("c_1") is not None and globex.queue_status("c_1").position == 0  # type: ignore[union-attr]

    # an agent of globex coming online drains globex's queue, not acme's
    globex.register_agent(make_agent("gus", limit=5))
    assert globex.get_chat("c_1").agent_id == "gus"
    assert acme.get_chat("c_2").state is ChatState.QUEUED
    assert acme.storage.agents.get(AgentId("gus")) is None

    # events: each outbox holds only its tenant's events
    acme_events = acme.storage.outbox.events()  # type: ignore[attr-defined]
    globex_events = globex.storage.outbox.events()  # type: ignore[attr-defined]
    assert {e.id for e in acme_events}.isdisjoint({e.id for e in globex_events})
    assert {e.data.get("agent_id") for e in globex_events} <= {"gus", None}
    assert "customer.created" in [e.type for e in acme_events]
    assert "customer.created" not in [e.type for e in globex_events]
    # leases are per tenant too
    claimed = globex.storage.outbox.claim("w", 100, START, 30.0)
    assert len(claimed) == len(globex_events)
    assert acme.storage.outbox.pending() == len(acme_events)
    # messages and timers
    acme.send_message("c_1", "hello from acme")
    assert globex.messages("c_1") == []
    assert [m.text for m in acme.messages("c_1")] == ["hello from acme"]
    timer = Timer("k", START, "c_1", "auto_transfer")
    globex.storage.apply(Change(ChatId("no_chat"), None, START, schedule=(timer,)))
    acme_timers = acme.storage.timers.claim_due(START + 1e6, 100, 1.0)
    globex_timers = globex.storage.timers.claim_due(START + 1e6, 100, 1.0)
    assert "k" not in [t.key for t in acme_timers]
    assert "k" in [t.key for t in globex_timers]
    assert {t.chat_id for t in acme_timers} <= {"c_1", "c_2"}
    assert acme.storage.chats.get(ChatId("c_1")) != globex.storage.chats.get(ChatId("c_1"))


def test_async_tenants_are_isolated_too() -> None:
    db = MemoryDatabase()

    async def scenario() -> None:
        one = AsyncChatManager(MemoryStorage("one", db).aio(), clock=ManualClock(START))
        two = AsyncChatManager(MemoryStorage("two", db).aio(), clock=ManualClock(START))
        await one.register_agent(make_agent("ann"))
        await one.open_chat(CustomerInfo(partner_id="u_1"), chat_id="c")
        assert await two.customer("u_1") is None
        assert await two.list_chats() == []
        chat = await two.open_chat(CustomerInfo(partner_id="u_1"), chat_id="c")
        assert chat.agent_id is None

    asyncio.run(scenario())
