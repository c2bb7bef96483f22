"""Pull mode: chats of a group wait in its queue; agents take the next one, or a chosen one.

Reference behaviour: Rocket.Chat Omnichannel's "Manual Selection" routing (chats wait in the
queue; an agent takes one from it, within their simultaneous-chat limit) and LiveChat's manual
chat distribution (agents pick chats from the queue themselves).
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from chatmgmt import AgentStatus, AsyncChatManager, ChatManager, ChatSettings, ChatState
from chatmgmt.errors import AssignmentError, NotFoundError, ValidationError
from chatmgmt.model import CustomerInfo
from chatmgmt.testing import (
    ManualClock,
    RecordingEventSink,
    check_invariants,
    make_agent,
    sequential_ids,
)

T0 = 1_000.0


def world(
    extra: dict[str, Any] | None = None, mode: str = "real_time"
) -> tuple[ChatManager, ManualClock, RecordingEventSink]:
    clock = ManualClock(T0)
    sink = RecordingEventSink()
    assignment = {"groups": {"desk": {"pull": True}}, **(extra or {})}
    settings = ChatSettings.from_dict({"reception_mode": mode, "assignment": assignment})
    m = ChatManager(
        None, settings, clock=clock, rng=random.Random(1), ids=sequential_ids(), event_sink=sink
    )
    m.register_agent(make_agent("ann", groups=["desk"], limit=1, order=1))
    m.register_agent(make_agent("bob", groups=["desk", "sales"], limit=2, order=2))
    m.register_agent(make_agent("sam", groups=["sales"], limit=2, order=3))
    return m, clock, sink


def open_chat(m: ChatManager, chat_id: str, group: str = "desk", **kwargs: Any) -> Any:
    return m.open_chat(CustomerInfo(**kwargs), skill_group=group, chat_id=chat_id)


def test_chats_of_a_pull_group_wait_next_to_free_agents() -> None:
    m, clock, sink = world()
    for i in range(3):
        open_chat(m, f"c{i}")
        clock.advance(1)
    assert [m.get_chat(f"c{i}").state for i in range(3)] == [ChatState.QUEUED] * 3
    assert not [e for e in sink.events if e.type == "chat.assigned"]
    assert m.reconcile()["drained"] == 0  # a drain passes pull groups by
    # a push group next to it still assigns
    assert open_chat(m, "s1", group="sales").state is ChatState.ACTIVE
    check_invariants(m.storage, opened=["c0", "c1", "c2", "s1"], drained=True, off_duty=["desk"])


def test_take_the_next_chat_in_queue_order() -> None:
    m, clock, sink = world()
    open_chat(m, "c0")
    clock.advance(1)
    open_chat(m, "c1", vip_level=0)
    clock.advance(1)
    open_chat(m, "vip", vip_level=5)  # priority first (aging as in the push queue)
    taken = m.take_chat("bob")
    assert taken is not None and taken.id == "vip"
    assert taken.state is ChatState.ACTIVE and taken.agent_id == "bob"
    assert taken.route_reason["via"] == "pull"
    assert m.take_chat("bob", group="desk").id == "c0"  # type: ignore[union-attr]
    assert m.agent("bob").chats == {"vip", "c0"}
    assigned = [e for e in sink.events if e.type == "chat.assigned" and e.chat_id == "c0"]
    assert assigned and assigned[0].data["agent_id"] == "bob"
    # bob is at his limit of 2: the unit's claim refuses, nothing changes
    with pytest.raises(AssignmentError, match="reception limit"):
        m.take_chat("bob")
    assert m.get_chat("c1").state is ChatState.QUEUED
    assert m.take_chat("ann").id == "c1"  # type: ignore[union-attr]
    assert m.take_chat("ann") is None  # nothing waits any more
    check_invariants(m.storage, opened=["c0", "c1", "vip"], off_duty=["desk"])


def test_take_a_chosen_chat() -> None:
    m, _clock, _sink = world()
    for i in range(3):
        open_chat(m, f"c{i}")
    taken = m.take_chat("ann", chat_id="c2")
    assert taken is not None and taken.id == "c2" and taken.agent_id == "ann"
    assert m.queue_status("c0").position == 0  # type: ignore[union-attr]
    with pytest.raises(AssignmentError, match="does not wait"):
        m.take_chat("bob", chat_id="c2")  # ann has it
    with pytest.raises(NotFoundError):
        m.take_chat("bob", chat_id="nope")
    s1 = open_chat(m, "s1", group="sales")
    with pytest.raises(AssignmentError, match="pull-mode"):
        m.take_chat("bob", chat_id=s1.id)  # a push group's chat cannot be pulled


def test_bad_requests_are_refused_clearly() -> None:
    m, _clock, _sink = world()
    open_chat(m, "c0")
    with pytest.raises(ValidationError, match="'sales' is not in pull mode"):
        m.take_chat("bob", group="sales")
    with pytest.raises(AssignmentError, match="does not serve"):
        m.take_chat("sam", group="desk")
    with pytest.raises(AssignmentError, match="serves no pull-mode"):
        m.take_chat("sam")
    with pytest.raises(NotFoundError):
        m.take_chat("zed")
    m.set_agent_status("ann", AgentStatus.AWAY)
    with pytest.raises(AssignmentError, match="not online"):
        m.take_chat("ann")
    assert m.get_chat("c0").state is ChatState.QUEUED


def test_pending_offers_and_pull_share_the_limit() -> None:
    m, _clock, _sink = world({"offers": {"enabled": True}})
    offered = open_chat(m, "s1", group="sales")  # a push group with offers: round robin
    assert offered.state is ChatState.OFFERED and offered.agent_id == "bob"
    open_chat(m, "c0")
    open_chat(m, "c1")
    open_chat(m, "c2")
    assert m.take_chat("bob") is not None  # one slot left beside the pending offer
    with pytest.raises(AssignmentError):
        m.take_chat("bob")  # the offer holds the other one
    assert m.agent("bob").chats == {"s1", "c0"}
    assert m.take_chat("ann") is not None
    check_invariants(m.storage, off_duty=["desk"])


def test_nothing_to_take() -> None:
    m, _clock, _sink = world()
    assert m.take_chat("ann") is None


def test_always_on_pull_from_the_pool() -> None:
    m, _clock, _sink = world(mode="always_on")
    chat = open_chat(m, "c0")
    assert chat.state is ChatState.UNASSIGNED and chat.queue == "pool/desk"
    taken = m.take_chat("ann")
    assert taken is not None and taken.state is ChatState.ACTIVE
    check_invariants(m.storage, opened=["c0"], off_duty=["desk"])


def test_the_async_manager_takes_the_same_way() -> None:
    async def scenario() -> tuple[Any, ...]:
        settings = ChatSettings.from_dict({"assignment": {"groups": {"desk": {"pull": True}}}})
        m = AsyncChatManager(None, settings, clock=ManualClock(T0), ids=sequential_ids())
        await m.register_agent(make_agent("ann", groups=["desk"], limit=1))
        await m.open_chat(CustomerInfo(), skill_group="desk", chat_id="c1")
        taken = await m.take_chat("ann", chat_id="c1")
        none = await m.take_chat("ann", group="desk")
        assert taken is not None
        return taken.state, taken.agent_id, none

    assert asyncio.run(scenario()) == (ChatState.ACTIVE, "ann", None)
