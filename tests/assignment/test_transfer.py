"""Manual and automatic transfer; exclusions; cumulative escalation timing."""

from __future__ import annotations

import pytest

from assignment.assign_helpers import agent, clock_of, customer, manager, sink_of
from chatmgmt import AssignmentError, ChatState, InvalidTransitionError, MessageRole
from chatmgmt.testing import release_slot


def test_manual_transfer_to_an_agent_and_to_a_group() -> None:
    m = manager()
    m.register_agent(agent("ann", order=0, groups=("sales",)))
    m.register_agent(agent("bob", order=1, groups=("billing",)))
    m.register_agent(agent("cy", order=2, groups=("billing",)))
    chat = m.open_chat(customer("u"), skill_group="sales")
    assert chat.agent_id == "ann"
    moved = m.transfer(chat.id, to_agent="bob", by="ann")
    assert moved.agent_id == "bob" and m.agent("ann").active == 0
    moved = m.transfer(chat.id, to_group="billing", by="bob")
    assert moved.agent_id == "cy" and moved.skill_group == "billing"
    event = sink_of(m).of_type("chat.transferred")[-1]
    assert event.data["from_agent_id"] == "bob" and event.data["automatic"] is False


def test_transfer_to_an_unavailable_agent_raises_and_keeps_the_chat() -> None:
    m = manager()
    m.register_agent(agent("ann"))
    m.register_agent(agent("bob", limit=0))
    chat = m.open_chat(customer("u"))
    with pytest.raises(AssignmentError):
        m.transfer(chat.id, to_agent="bob")
    assert m.get_chat(chat.id).agent_id == "ann"


def test_transfer_to_a_full_group_requeues() -> None:
    m = manager({"assignment": {"groups": {"billing": {}}}})  # known, nobody serves it yet
    m.register_agent(agent("ann", groups=("sales",)))
    chat = m.open_chat(customer("u"), skill_group="sales")
    moved = m.transfer(chat.id, to_group="billing")
    assert moved.state is ChatState.QUEUED and moved.skill_group == "billing"
    assert m.agent("ann").active == 0


def auto_settings(seconds: float = 20) -> dict[str, object]:
    return {"assignment": {"auto_transfer_s": seconds}}


def test_auto_transfer_when_the_agent_does_not_answer_and_never_back_to_them() -> None:
    m = manager(auto_settings())
    m.register_agent(agent("ann", order=0))
    m.register_agent(agent("bob", order=1))
    chat = m.open_chat(customer("u"))
    assert chat.agent_id == "ann"
    clock_of(m).advance(20)
    assert m.tick() == 1
    moved = m.get_chat(chat.id)
    assert moved.agent_id == "bob" and "ann" in moved.excluded
    assert sink_of(m).of_type("chat.transferred")[-1].data["automatic"] is True
    clock_of(m).advance(20)
    m.tick()
    # bob timed out too; the only agents left are excluded: the chat queues, never back to ann
    again = m.get_chat(chat.id)
    assert again.state is ChatState.QUEUED and again.excluded == {"ann", "bob"}
    m.set_reception_limit("ann", 5)
    assert m.get_chat(chat.id).state is ChatState.QUEUED


def test_an_agent_reply_stops_the_auto_transfer() -> None:
    m = manager(auto_settings())
    m.register_agent(agent("ann", order=0))
    m.register_agent(agent("bob", order=1))
    chat = m.open_chat(customer("u"))
    clock_of(m).advance(5)
    m.send_message(chat.id, "Hello!", role=MessageRole.AGENT, sender="ann")
    clock_of(m).advance(60)
    assert m.tick() == 0
    assert m.get_chat(chat.id).agent_id == "ann"


def test_escalation_counts_against_the_chat_age_not_per_step() -> None:
    # REFERENCE.md: a chat moved at 8 s with a 20 s step escalates at 20 s, not 28 s.
    m = manager(auto_settings(20))
    for i, name in enumerate(["ann", "bob", "cy"]):
        m.register_agent(agent(name, order=i))
    start = clock_of(m).now()
    chat = m.open_chat(customer("u"))
    clock_of(m).advance(8)
    m.transfer(chat.id, to_agent="bob")
    clock_of(m).set(start + 19.9)
    assert m.tick() == 0
    clock_of(m).set(start + 20)
    assert m.tick() == 1
    assert m.get_chat(chat.id).agent_id == "cy"


def test_max_auto_transfers_bounds_escalation() -> None:
    m = manager({"assignment": {"auto_transfer_s": 10, "max_auto_transfers": 1}})
    for i in range(4):
        m.register_agent(agent(f"a{i}", order=i))
    chat = m.open_chat(customer("u"))
    for _ in range(5):
        clock_of(m).advance(10)
        m.tick()
    assert len(m.get_chat(chat.id).excluded) == 1


def test_load_counts_never_go_stale() -> None:
    # DESIGN.md pitfall: stale load counts. Every path that moves a chat moves its slot.
    m = manager()
    m.register_agent(agent("ann", order=0, limit=2))
    m.register_agent(agent("bob", order=1, limit=2))
    first = m.open_chat(customer("u1"))
    second = m.open_chat(customer("u2"))
    assert (m.agent("ann").active, m.agent("bob").active) == (1, 1)
    m.transfer(first.id, to_agent="bob")
    assert (m.agent("ann").active, m.agent("bob").active) == (0, 2)
    m.end_chat(second.id)
    with pytest.raises(InvalidTransitionError):
        m.end_chat(second.id)  # ending twice is refused and frees nothing more
    assert (m.agent("ann").active, m.agent("bob").active) == (0, 1)
    # a release that already happened is a no-op at the store too
    release_slot(m.storage, second.agent_id or "", second.id, 0.0, 0.0)
    assert m.agent("bob").active == 1
