"""Offers: an assignment is first an offer the agent accepts, declines or lets expire.

The reference behaviour is Twilio TaskRouter's reservations (a task reserved for one worker
goes back to pending when the worker rejects it or the reservation times out, and is then
available to other workers; accepted, it is assigned) and Zendesk's offers (a message an agent
does not accept stays queued until another agent accepts it). Where a peer re-offers to an
agent who declined (Salesforce Omni-Channel considers every agent again), chatmgmt does not.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from chatmgmt import AgentStatus, AsyncChatManager, ChatManager, ChatSettings, ChatState
from chatmgmt.errors import InvalidTransitionError, NotAllowedError, NotFoundError, ValidationError
from chatmgmt.model import CustomerInfo, EndReason
from chatmgmt.testing import (
    ManualClock,
    RecordingEventSink,
    check_invariants,
    make_agent,
    sequential_ids,
)

T0 = 1_000.0


def world(
    assignment: dict[str, Any] | None = None,
    *,
    mode: str = "real_time",
    agents: tuple[tuple[str, int], ...] = (("ann", 1), ("bob", 1), ("cid", 1)),
) -> tuple[ChatManager, ManualClock, RecordingEventSink]:
    clock = ManualClock(T0)
    sink = RecordingEventSink()
    settings = ChatSettings.from_dict(
        {
            "reception_mode": mode,
            "assignment": assignment or {"offers": {"enabled": True, "timeout_s": 30}},
        }
    )
    m = ChatManager(
        None, settings, clock=clock, rng=random.Random(1), ids=sequential_ids(), event_sink=sink
    )
    for order, (name, limit) in enumerate(agents):
        m.register_agent(make_agent(name, groups=["sales"], limit=limit, order=order))
    return m, clock, sink


def types(sink: RecordingEventSink, chat_id: str) -> list[str]:
    return [e.type for e in sink.events if e.chat_id == chat_id]


def open_chat(m: ChatManager, chat_id: str, **kwargs: Any) -> Any:
    return m.open_chat(CustomerInfo(partner_id=f"u_{chat_id}"), chat_id=chat_id, **kwargs)


def test_an_assignment_is_an_offer_that_holds_the_slot() -> None:
    m, _clock, sink = world(agents=(("ann", 1),))
    chat = open_chat(m, "c1", skill_group="sales")
    assert chat.state is ChatState.OFFERED and chat.agent_id == "ann"
    assert chat.offer_expires_at == T0 + 30
    assert m.agent("ann").chats == {"c1"}  # the pending offer counts toward the limit
    offered = next(e for e in sink.events if e.type == "chat.offered")
    assert offered.data["agent_id"] == "ann" and offered.data["expires_at"] == T0 + 30
    assert "chat.assigned" not in types(sink, "c1")
    # ann's one slot is held by the offer: the next chat waits
    assert open_chat(m, "c2", skill_group="sales").state is ChatState.QUEUED
    check_invariants(m.storage, opened=["c1", "c2"], drained=True)


def test_accepting_makes_the_chat_active_and_timers_count_from_acceptance() -> None:
    m, clock, sink = world(
        {"offers": {"enabled": True, "timeout_s": 30}, "auto_transfer_s": 45},
        agents=(("ann", 1), ("bob", 1)),
    )
    open_chat(m, "c1", skill_group="sales")
    clock.advance(20)
    chat = m.accept_offer("c1", "ann")
    assert chat.state is ChatState.ACTIVE and chat.assigned_at == T0 + 20
    assert chat.offer_expires_at is None and chat.served_by == ("ann",)
    assert types(sink, "c1")[-2:] == ["chat.offer_accepted", "chat.assigned"]
    accepted = next(e for e in sink.events if e.type == "chat.offer_accepted")
    assert accepted.data["waited_s"] == 20.0
    # auto-transfer counts from the acceptance (T0 + 20 + 45), not from the offer (T0 + 45)
    clock.advance(30)  # T0 + 50
    m.tick()
    assert m.get_chat("c1").agent_id == "ann"
    clock.advance(20)  # T0 + 70
    m.tick()
    moved = m.get_chat("c1")
    assert moved.agent_id == "bob" and "ann" in moved.excluded
    # the offer's expiry, had it still been planned, is gone
    clock.advance(1000)
    m.tick()
    check_invariants(m.storage, opened=["c1"])


def test_a_declined_offer_goes_to_the_next_agent_never_back() -> None:
    m, _clock, sink = world()
    assert open_chat(m, "c1", skill_group="sales").agent_id == "ann"
    chat = m.decline_offer("c1", "ann", reason="wrong language")
    assert chat.state is ChatState.OFFERED and chat.agent_id == "bob"
    assert chat.excluded == {"ann"} and m.agent("ann").chats == frozenset()
    declined = next(e for e in sink.events if e.type == "chat.offer_declined")
    assert declined.data == {**declined.data, "agent_id": "ann", "decline_reason": "wrong language"}
    assert types(sink, "c1")[-2:] == ["chat.offer_declined", "chat.offered"]
    chat = m.decline_offer("c1", "bob")
    assert chat.agent_id == "cid"
    chat = m.decline_offer("c1", "cid")
    # everyone declined: it waits in its queue, and is never offered to them again
    assert chat.state is ChatState.QUEUED and chat.agent_id is None
    assert chat.excluded == {"ann", "bob", "cid"}
    assert m.reconcile()["drained"] == 0
    assert m.get_chat("c1").state is ChatState.QUEUED
    # a new agent gets it
    m.register_agent(make_agent("dan", groups=["sales"], limit=1))
    m.set_agent_status("dan", AgentStatus.ONLINE)
    assert m.get_chat("c1").agent_id == "dan"
    check_invariants(m.storage, opened=["c1"], drained=True)


def test_a_declined_chat_keeps_its_place_in_the_queue() -> None:
    m, clock, _sink = world(agents=(("ann", 1),))
    open_chat(m, "c1", skill_group="sales")
    clock.advance(5)
    open_chat(m, "c2", skill_group="sales")  # queued behind the pending offer
    clock.advance(5)
    m.decline_offer("c1", "ann")
    # c1 goes back ahead of c2 (by when it first waited); ann is free, but excluded for c1,
    # so the drain passes c1 over and offers her c2
    assert m.get_chat("c1").state is ChatState.QUEUED
    assert m.queue_status("c1").position == 0  # type: ignore[union-attr]
    assert m.get_chat("c2").state is ChatState.OFFERED
    assert m.get_chat("c2").agent_id == "ann"
    check_invariants(m.storage, opened=["c1", "c2"], drained=True)


def test_an_expired_offer_goes_to_the_next_agent() -> None:
    """TaskRouter: at t=3 a reservation is created; at t=8 (timeout 5) it times out and the
    task is re-evaluated; here: offered at T0, expired at T0+30, offered to the next agent."""
    m, clock, sink = world(agents=(("ann", 1), ("bob", 1)))
    open_chat(m, "c1", skill_group="sales")
    clock.advance(29)
    assert m.tick() == 0 and m.get_chat("c1").agent_id == "ann"
    clock.advance(1)
    assert m.tick() == 1
    chat = m.get_chat("c1")
    assert chat.state is ChatState.OFFERED and chat.agent_id == "bob"
    assert chat.offer_expires_at == T0 + 60  # a new offer, a new timeout
    assert types(sink, "c1")[-2:] == ["chat.offer_expired", "chat.offered"]
    with pytest.raises(InvalidTransitionError if False else NotAllowedError):
        m.accept_offer("c1", "ann")  # too late: the offer moved on to bob
    clock.advance(30)
    m.tick()
    assert m.get_chat("c1").state is ChatState.QUEUED  # nobody left: it waits
    with pytest.raises(InvalidTransitionError):
        m.accept_offer("c1", "bob")
    check_invariants(m.storage, opened=["c1"], drained=True)


def test_offers_per_skill_group() -> None:
    m, _clock, _sink = world({"offers": {"groups": {"vip": {"enabled": True, "timeout_s": 10}}}})
    m.register_agent(make_agent("vic", groups=["vip"], limit=2))
    assert open_chat(m, "c1", skill_group="sales").state is ChatState.ACTIVE
    vip = open_chat(m, "c2", skill_group="vip")
    assert vip.state is ChatState.OFFERED and vip.offer_expires_at == T0 + 10


def test_transfers_and_admin_assignments_are_not_offers() -> None:
    m, _clock, _sink = world()
    open_chat(m, "c1", skill_group="sales")
    m.accept_offer("c1", "ann")
    moved = m.transfer("c1", to_agent="bob")
    assert moved.state is ChatState.ACTIVE and moved.agent_id == "bob"
    for name in ("ann", "cid"):
        m.set_agent_status(name, AgentStatus.OFFLINE)
    waiting = open_chat(m, "c2", skill_group="sales")
    assert waiting.state is ChatState.QUEUED
    m.set_agent_status("ann", AgentStatus.ONLINE)  # the drain offers it to ann
    assert m.get_chat("c2").state is ChatState.OFFERED


def test_answers_from_the_wrong_agent_or_for_a_chat_not_offered_are_refused() -> None:
    m, _clock, _sink = world()
    open_chat(m, "c1", skill_group="sales")
    with pytest.raises(NotAllowedError, match="offered to agent 'ann'"):
        m.accept_offer("c1", "bob")
    with pytest.raises(NotAllowedError):
        m.decline_offer("c1", "bob")
    m.accept_offer("c1", "ann")
    with pytest.raises(InvalidTransitionError, match="accept"):
        m.accept_offer("c1", "ann")
    with pytest.raises(InvalidTransitionError, match="decline"):
        m.decline_offer("c1", "ann")
    with pytest.raises(NotFoundError):
        m.accept_offer("nope", "ann")
    open_chat(m, "c2", skill_group="sales")
    with pytest.raises(ValidationError, match="reason"):
        m.decline_offer("c2", "bob", reason="bad\x00text")
    assert m.get_chat("c2").state is ChatState.OFFERED  # nothing changed


def test_the_customer_leaving_an_offered_chat_frees_the_slot() -> None:
    m, _clock, sink = world(agents=(("ann", 1),))
    open_chat(m, "c1", skill_group="sales")
    open_chat(m, "c2", skill_group="sales")
    gone = m.abandon("c1")
    assert gone.state is ChatState.ABANDONED and gone.offer_expires_at is None
    assert m.get_chat("c2").agent_id == "ann"  # the freed slot went to the next chat
    with pytest.raises(InvalidTransitionError):
        m.end_chat("c2", reason=EndReason.CUSTOMER)  # in Real-Time a waiting customer abandons
    m.end_chat("c2", reason=EndReason.SYSTEM)
    assert m.agent("ann").chats == frozenset()
    assert "chat.ended" in types(sink, "c2")
    check_invariants(m.storage, opened=["c1", "c2"], drained=True)


def test_always_on_offers_from_the_pool() -> None:
    m, clock, _sink = world(mode="always_on", agents=(("ann", 1),))
    chat = open_chat(m, "c1", skill_group="sales")
    assert chat.state is ChatState.OFFERED
    back = m.decline_offer("c1", "ann", reason="later")
    assert back.state is ChatState.UNASSIGNED and back.queue == "pool/sales"
    open_chat(m, "c2", skill_group="sales")
    clock.advance(31)
    m.tick()  # Always On chats do not time out, but offers do
    assert m.get_chat("c2").state is ChatState.UNASSIGNED
    check_invariants(m.storage, opened=["c1", "c2"], drained=True)


def test_reconcile_finds_nothing_to_repair_with_offers_pending() -> None:
    m, _clock, _sink = world()
    for i in range(4):
        open_chat(m, f"c{i}", skill_group="sales")
    m.decline_offer("c0", "ann")
    fixed = m.reconcile()
    assert fixed == dict.fromkeys(fixed, 0)


def test_the_async_manager_answers_offers_the_same_way() -> None:
    async def scenario() -> tuple[Any, ...]:
        clock = ManualClock(T0)
        settings = ChatSettings.from_dict({"assignment": {"offers": {"enabled": True}}})
        m = AsyncChatManager(None, settings, clock=clock, ids=sequential_ids())
        for name in ("ann", "bob"):
            await m.register_agent(make_agent(name, groups=["sales"], limit=1))
        await m.open_chat(CustomerInfo(), skill_group="sales", chat_id="c1")
        declined = await m.decline_offer("c1", "ann", reason="busy")
        accepted = await m.accept_offer("c1", "bob")
        return declined.agent_id, accepted.state, accepted.excluded

    assert asyncio.run(scenario()) == ("bob", ChatState.ACTIVE, {"ann"})


def test_a_deadline_rescheduled_by_its_firing_survives_the_lease() -> None:
    """Regression: the firing of a deadline that plans the next one at ``now + 30`` (an offer
    expiring into a new 30 s offer; a 30 s auto-transfer fired on time) lost that next one,
    because the lease was dropped by the value ``now + 30`` too."""
    m, clock, _sink = world({"auto_transfer_s": 30}, agents=(("ann", 1), ("bob", 1), ("cid", 1)))
    open_chat(m, "c1", skill_group="sales")
    assert m.get_chat("c1").agent_id == "ann"
    clock.advance(30)
    m.tick()
    assert m.get_chat("c1").agent_id == "bob"
    clock.advance(30)
    m.tick()
    assert m.get_chat("c1").agent_id == "cid"


def test_an_agent_going_offline_has_their_pending_offer_withdrawn_at_once() -> None:
    # TaskRouter: a worker who goes offline has its pending reservations rescinded; here the
    # offer ends as an expiry at once (not after its timeout) and goes to the next agent
    m, _clock, sink = world(agents=(("ann", 1), ("bob", 1)))
    chat = open_chat(m, "c1", skill_group="sales")
    assert chat.state is ChatState.OFFERED and chat.agent_id == "ann"
    m.set_agent_status("ann", AgentStatus.OFFLINE)
    now = m.get_chat("c1")
    assert now.state is ChatState.OFFERED and now.agent_id == "bob"
    assert "ann" in now.excluded
    assert m.agent("ann").chats == frozenset()  # the withdrawn offer's slot is free
    assert types(sink, "c1").count("chat.offer_expired") == 1
    check_invariants(m.storage, opened=["c1"], drained=True)


def test_an_offer_withdrawn_with_nobody_else_free_waits_again_and_away_withdraws_too() -> None:
    m, _clock, _sink = world(agents=(("ann", 1),))
    assert open_chat(m, "c1", skill_group="sales").state is ChatState.OFFERED
    m.set_agent_status("ann", AgentStatus.AWAY)  # away cannot accept either
    assert m.get_chat("c1").state is ChatState.QUEUED
    assert m.agent("ann").chats == frozenset()
    check_invariants(m.storage, opened=["c1"], drained=True)
