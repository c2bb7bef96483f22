"""ChatManager and AsyncChatManager: the same scenario gives the same results."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from chatmgmt import (
    AgentStatus,
    AsyncChatManager,
    ChatManager,
    ChatSettings,
    ChatState,
    CustomerInfo,
    EndReason,
    NotFoundError,
)
from chatmgmt.errors import InvalidTransitionError, NotAllowedError, ValidationError
from chatmgmt.model import Chat, MessageRole
from chatmgmt.storage import MemoryStorage
from chatmgmt.testing import ManualClock, RecordingEventSink, make_agent, sequential_ids

START = 1_700_000_000.0


def _summary(chat: Chat) -> tuple[Any, ...]:
    return (
        chat.id,
        chat.state,
        chat.agent_id,
        chat.customer.partner_id,
        chat.end_reason,
        chat.ended_by,
        chat.version,
        chat.event_seq,
        dict(chat.route_reason),
    )


def _agents() -> list[Any]:
    return [
        make_agent("ann", groups=["sales"], limit=2, order=1),
        make_agent("bob", groups=["sales", "vip"], limit=1, order=2),
        make_agent("cid", groups=["vip"], limit=1, order=3, status=AgentStatus.OFFLINE),
    ]


def _opens() -> list[tuple[CustomerInfo, str]]:
    return [
        (CustomerInfo(partner_id=f"u_{i}", name=f"C{i}", vip_level=i % 3), group)
        for i, group in enumerate(["sales", "sales", "vip", "sales", "vip", "", "sales"])
    ]


def _settings() -> ChatSettings:
    return ChatSettings.from_dict({"assignment": {"strategy": "least_busy"}})


def run_sync(seed: int) -> dict[str, Any]:
    clock = ManualClock(START)
    sink = RecordingEventSink()
    storage = MemoryStorage()
    m = ChatManager(
        storage,
        _settings(),
        clock=clock,
        rng=random.Random(seed),
        event_sink=sink,
        ids=sequential_ids(),
    )
    for agent in _agents():
        m.register_agent(agent)
    opened = []
    for info, group in _opens():
        clock.advance(1)
        opened.append(m.open_chat(info, skill_group=group))
    clock.advance(5)
    m.set_agent_status("cid", AgentStatus.ONLINE)
    active = [c for c in m.list_chats(state=ChatState.ACTIVE)]
    for chat in sorted(active, key=lambda c: c.id)[:2]:
        clock.advance(1)
        m.end_chat(chat.id, reason=EndReason.AGENT, by="agent")
    final = sorted((_summary(c) for c in m.list_chats()), key=lambda s: s[0])
    return {
        "opened": [_summary(c) for c in opened],
        "final": final,
        "agents": {a: sorted(m.agent(a).chats) for a in ("ann", "bob", "cid")},
        "sink": sink.types(),
        "outbox": [(e.type, e.chat_id, e.seq, dict(e.data)) for e in storage.outbox.events()],
        "customers": [m.customer(f"u_{i}") for i in range(7)],
    }


def run_async(seed: int) -> dict[str, Any]:
    async def scenario() -> dict[str, Any]:
        clock = ManualClock(START)
        sink = RecordingEventSink()
        storage = MemoryStorage()
        m = AsyncChatManager(
            storage.aio(),
            _settings(),
            clock=clock,
            rng=random.Random(seed),
            event_sink=sink,
            ids=sequential_ids(),
        )
        for agent in _agents():
            await m.register_agent(agent)
        opened = []
        for info, group in _opens():
            clock.advance(1)
            opened.append(await m.open_chat(info, skill_group=group))
        clock.advance(5)
        await m.set_agent_status("cid", AgentStatus.ONLINE)
        active = await m.list_chats(state=ChatState.ACTIVE)
        for chat in sorted(active, key=lambda c: c.id)[:2]:
            clock.advance(1)
            await m.end_chat(chat.id, reason=EndReason.AGENT, by="agent")
        final = sorted((_summary(c) for c in await m.list_chats()), key=lambda s: s[0])
        return {
            "opened": [_summary(c) for c in opened],
            "final": final,
            "agents": {a: sorted((await m.agent(a)).chats) for a in ("ann", "bob", "cid")},
            "sink": sink.types(),
            "outbox": [(e.type, e.chat_id, e.seq, dict(e.data)) for e in storage.outbox.events()],
            "customers": [await m.customer(f"u_{i}") for i in range(7)],
        }

    return asyncio.run(scenario())


@pytest.mark.parametrize("seed", [1, 7, 42])
def test_sync_and_async_managers_agree(seed: int) -> None:
    sync, async_ = run_sync(seed), run_async(seed)
    assert sync["opened"] == async_["opened"]
    assert sync["final"] == async_["final"]
    assert sync["agents"] == async_["agents"]
    assert sync["sink"] == async_["sink"]
    assert sync["outbox"] == async_["outbox"]
    assert sync["customers"] == async_["customers"]


def test_scenario_is_meaningful_and_reproducible() -> None:
    """Guard against a vacuous comparison: the scenario assigns, queues and ends chats."""
    result = run_sync(3)
    assert result == run_sync(3)
    states = [s[1] for s in result["final"]]
    assert ChatState.ACTIVE in states and ChatState.ENDED in states
    assert ChatState.QUEUED in states
    types = result["sink"]
    for expected in (
        "agent.status_changed",
        "customer.created",
        "chat.started",
        "chat.assigned",
        "chat.ended",
    ):
        assert expected in types
    for load_chats, limit in zip(result["agents"].values(), (2, 1, 1), strict=True):
        assert len(load_chats) <= limit
    assert [e[0] for e in result["outbox"]] == types  # the sink sees what the outbox got


def test_opening_assigns_an_online_agent_and_records_why() -> None:
    m = ChatManager(clock=ManualClock(START), rng=random.Random(0))
    m.register_agent(make_agent("ann", limit=1))
    chat = m.open_chat(CustomerInfo(partner_id="u_1"))
    assert chat.state is ChatState.ACTIVE and chat.agent_id == "ann"
    assert chat.route_reason
    assert m.agent("ann").active == 1
    queued = m.open_chat(CustomerInfo(partner_id="u_2"))
    assert queued.state is ChatState.QUEUED and queued.agent_id is None
    ended = m.end_chat(chat.id, reason=EndReason.CUSTOMER, by="customer")
    assert (ended.state, ended.end_reason, ended.ended_by) == (
        ChatState.ENDED,
        EndReason.CUSTOMER,
        "customer",
    )
    # the freed slot drains the queue
    assert m.get_chat(queued.id).agent_id == "ann"
    with pytest.raises(InvalidTransitionError):
        m.end_chat(chat.id)


def test_always_on_mode_pools_chats() -> None:
    m = ChatManager(settings=ChatSettings.from_dict({"reception_mode": "always_on"}))
    chat = m.open_chat(CustomerInfo(partner_id="u_1"))
    assert chat.state is ChatState.UNASSIGNED


def test_reading_unknown_things_raises_not_found() -> None:
    m = ChatManager()
    with pytest.raises(NotFoundError):
        m.get_chat("nope")
    with pytest.raises(NotFoundError):
        m.agent("nope")
    with pytest.raises(NotFoundError):
        m.set_agent_status("nope", AgentStatus.ONLINE)

    async def async_reads() -> None:
        am = AsyncChatManager()
        with pytest.raises(NotFoundError):
            await am.get_chat("nope")
        with pytest.raises(NotFoundError):
            await am.agent("nope")

    asyncio.run(async_reads())


def test_status_changes_emit_events_only_on_change() -> None:
    sink = RecordingEventSink()
    m = ChatManager(clock=ManualClock(START), event_sink=sink)
    m.register_agent(make_agent("ann", status=AgentStatus.OFFLINE))
    m.set_agent_status("ann", AgentStatus.ONLINE)
    m.set_agent_status("ann", AgentStatus.ONLINE)
    changes = [
        (e.data["previous_status"], e.data["status"]) for e in sink.of_type("agent.status_changed")
    ]
    assert changes == [("offline", "offline"), ("offline", "online")]


def test_a_failing_event_sink_does_not_break_the_manager() -> None:
    class Broken:
        def emit(self, event: object) -> None:
            raise RuntimeError("sink down")

    m = ChatManager(event_sink=Broken())
    m.register_agent(make_agent("ann"))
    chat = m.open_chat(CustomerInfo(partner_id="u_1"))
    assert m.get_chat(chat.id).agent_id == "ann"


def test_host_attributes_never_reach_the_library() -> None:
    # attributes belong to the host: keys the library once kept there are plain data now
    m = ChatManager(clock=ManualClock(START), rng=random.Random(0))
    m.register_agent(make_agent("ann", limit=1))
    host = {"satisfaction": "vip", "queue": 3, "timers_fired": "x", "escalation": [1]}
    chat = m.open_chat(CustomerInfo(partner_id="u_1"), attributes=host)
    assert chat.state is ChatState.ACTIVE and chat.attributes == host
    waiting = m.open_chat(CustomerInfo(partner_id="u_2"), attributes=host)
    assert waiting.state is ChatState.QUEUED and waiting.queue == "queue/"
    ended = m.end_chat(chat.id)
    assert ended.state is ChatState.ENDED and ended.attributes == host
    assert m.get_chat(waiting.id).agent_id == "ann"


def test_only_the_agent_holding_the_chat_writes_as_its_agent() -> None:
    m = ChatManager(clock=ManualClock(START), rng=random.Random(0))
    m.register_agent(make_agent("ann", limit=1))
    m.register_agent(make_agent("bob", limit=1))
    chat = m.open_chat(CustomerInfo(partner_id="u_1"))
    holder = chat.agent_id
    other = "bob" if holder == "ann" else "ann"
    for sender in (other, "ghost"):
        with pytest.raises(NotAllowedError) as info:
            m.send_message(chat.id, "nope", role=MessageRole.AGENT, sender=sender)
        assert info.value.who == sender and "held by agent" in str(info.value)
        assert isinstance(info.value, PermissionError)
    assert m.messages(chat.id) == [] and m.get_chat(chat.id).agent_replied is False
    m.send_message(chat.id, "hello", role=MessageRole.AGENT, sender=holder or "")
    assert m.get_chat(chat.id).agent_replied is True


def test_unknown_agents_and_groups_named_by_the_caller_are_not_found() -> None:
    m = ChatManager(clock=ManualClock(START), rng=random.Random(0))
    m.register_agent(make_agent("ann", limit=1))
    with pytest.raises(NotFoundError, match="ghost"):
        m.open_chat(CustomerInfo(partner_id="u_1"), designated_agent="ghost", strict=True)
    with pytest.raises(NotFoundError, match="nowhere"):
        m.open_chat(CustomerInfo(partner_id="u_1"), designated_group="nowhere", strict=True)
    assert m.list_chats() == []  # nothing was created
    # without strict the designation is a wish: the chat falls back to the rules
    assert m.open_chat(CustomerInfo(partner_id="u_2"), designated_agent="ghost").agent_id == "ann"
    chat = m.list_chats()[0]
    with pytest.raises(NotFoundError, match="ghost"):
        m.transfer(chat.id, to_agent="ghost")
    with pytest.raises(NotFoundError, match="nowhere"):
        m.transfer(chat.id, to_group="nowhere")


def test_a_message_over_the_size_limit_is_refused_before_anything_is_stored() -> None:
    settings = ChatSettings.from_dict({"limits": {"max_message_chars": 10}})
    m = ChatManager(settings=settings, clock=ManualClock(START), rng=random.Random(0))
    chat = m.open_chat(CustomerInfo(partner_id="u_1"))
    with pytest.raises(ValidationError, match="text"):
        m.send_message(chat.id, "x" * 11)
    with pytest.raises(ValidationError, match="text"):
        m.send_message(chat.id, "\ud800")
    assert m.messages(chat.id) == []
    m.send_message(chat.id, "x" * 10)
    assert [msg.text for msg in m.messages(chat.id)] == ["x" * 10]
