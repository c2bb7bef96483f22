"""Hold (issue 14 item 2) and the inactivity release (item 3), through the manager: the stored
chat records, the agent's slots, the deadlines and the events."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from assignment.assign_helpers import agent, customer, manager, sink_of
from chatmgmt import AsyncChatManager, ChatSettings
from chatmgmt.errors import InvalidTransitionError, SettingsError, ValidationError
from chatmgmt.model import ChatState, EndReason, MessageRole, ReceptionMode
from chatmgmt.testing import ManualClock, check_invariants, held_allowance

NO_TIMEOUTS = {"warn_after_s": 0, "end_after_s": 0}


def held_manager(counts: bool = False, **eoc: Any) -> Any:
    """ann (limit 1) holds c1; c2 waits in the queue."""
    m = manager(
        {
            "assignment": {"on_hold_chats_count": counts},
            "end_of_chat": {**NO_TIMEOUTS, **eoc},
        }
    )
    m.register_agent(agent("ann", limit=1), now=1000)
    m.open_chat(customer("u1"), chat_id="c1", now=1000)
    m.open_chat(customer("u2"), chat_id="c2", now=1001)
    assert m.get_chat("c1").agent_id == "ann" and m.get_chat("c2").state is ChatState.QUEUED
    return m


def test_hold_frees_the_slot_and_the_queue_drains_in_the_same_call() -> None:
    m = held_manager()
    held = m.hold_chat("c1", by="ann", reason="asking billing", now=1010)
    assert held.state is ChatState.ACTIVE and held.agent_id == "ann"
    assert held.hold == {
        "since": 1010,
        "by": "ann",
        "reason": "asking billing",
        "resumed_at": None,
        "resumed_by": None,
    }
    load = m.agent("ann")
    assert load.inactive == {"c1"} and load.chats == {"c2"}  # c2 took the freed slot
    assert m.get_chat("c2").agent_id == "ann"
    (event,) = sink_of(m).of_type("chat.held")
    assert event.data["by"] == "ann" and event.data["hold_reason"] == "asking billing"
    assert event.data["counts"] is False
    check_invariants(m.storage, count_inactive=True, count_on_hold=False, drained=True)


def test_a_held_chat_that_counts_keeps_its_slot() -> None:
    m = held_manager(counts=True)
    m.hold_chat("c1", by="ann", now=1010)
    assert m.agent("ann").chats == {"c1"} and m.get_chat("c2").state is ChatState.QUEUED
    assert sink_of(m).of_type("chat.held")[0].data["counts"] is True
    check_invariants(m.storage, drained=True)


def test_resume_counts_the_chat_again_even_above_the_limit() -> None:
    m = held_manager()
    m.hold_chat("c1", by="ann", now=1010)
    before = held_allowance(m.storage)
    resumed = m.resume_chat("c1", by="ann", now=1020)
    assert resumed.hold is not None and resumed.hold["resumed_at"] == 1020
    load = m.agent("ann")
    assert load.chats == {"c1", "c2"} and not load.inactive  # 2 on a limit of 1
    (event,) = sink_of(m).of_type("chat.resumed")
    assert event.data == {**event.data, "by": "ann", "held_s": 10, "counts": True}
    # she holds no more chats than before: the chat was hers all along, and she gets no new one
    check_invariants(m.storage, allowance=before, count_on_hold=False)
    m.open_chat(customer("u3"), chat_id="c3", now=1021)
    assert m.get_chat("c3").state is ChatState.QUEUED
    m.end_chat("c2", now=1030)
    assert m.get_chat("c3").state is ChatState.QUEUED  # still at her limit with c1
    m.end_chat("c1", now=1031)
    assert m.get_chat("c3").agent_id == "ann"


def test_hold_and_resume_are_idempotent_and_need_an_active_chat() -> None:
    m = held_manager()
    once = m.hold_chat("c1", by="ann", now=1010)
    assert m.hold_chat("c1", by="ann", now=1011).version == once.version
    assert len(sink_of(m).of_type("chat.held")) == 1
    assert m.resume_chat("c2", by="ann", now=1012).version == m.get_chat("c2").version
    assert not sink_of(m).of_type("chat.resumed")
    m.open_chat(customer("u3"), chat_id="c3", now=1013)
    with pytest.raises(InvalidTransitionError) as err:
        m.hold_chat("c3", by="ann", now=1014)
    assert err.value.state == "queued" and err.value.event == "hold"
    with pytest.raises(ValidationError, match="by"):
        m.hold_chat("c1", by="a\x00", now=1015)


def test_a_customer_message_resumes_an_agent_message_does_not() -> None:
    m = held_manager()
    m.hold_chat("c1", by="ann", now=1010)
    m.send_message("c1", "still checking", role=MessageRole.AGENT, sender="ann", now=1015)
    assert m.get_chat("c1").hold["resumed_at"] is None  # type: ignore[index]
    assert m.agent("ann").inactive == {"c1"}
    m.send_message("c1", "any news?", role=MessageRole.CUSTOMER, now=1020)
    chat = m.get_chat("c1")
    assert chat.hold is not None and chat.hold["resumed_by"] == "customer"
    assert m.agent("ann").chats == {"c1", "c2"}
    types = [e.type for e in sink_of(m).events if e.chat_id == "c1"]
    assert types[-2:] == ["message.customer", "chat.resumed"]


def test_hold_stops_the_inactivity_deadlines_and_resume_restarts_them() -> None:
    m = held_manager(warn_after_s=60, end_after_s=120, agent_reminder_s=30)
    m.send_message("c1", "hi", role=MessageRole.CUSTOMER, now=1005)
    m.hold_chat("c1", by="ann", now=1010)
    m.end_chat("c2", now=1011)  # c2 took the freed slot: only c1's deadlines matter here

    def of_c1(kind: str) -> list[Any]:
        return [e for e in sink_of(m).of_type(kind) if e.chat_id == "c1"]

    m.tick(now=5000)  # long past every deadline of an active chat: none fires while on hold
    chat = m.get_chat("c1")
    assert chat.state is ChatState.ACTIVE and not of_c1("chat.inactivity_warned")
    assert not of_c1("chat.agent_reminded")
    m.resume_chat("c1", by="ann", now=5000)
    m.tick(now=5059)
    assert not of_c1("chat.inactivity_warned")
    m.tick(now=5060)  # silence counts from the resumption
    assert len(of_c1("chat.inactivity_warned")) == 1
    m.tick(now=5120)
    assert m.get_chat("c1").end_reason is EndReason.CUSTOMER_INACTIVITY


def test_a_chat_on_hold_too_long_is_closed_with_its_prompt() -> None:
    m = held_manager(hold_close_after_s=300, hold_close_prompt="Closed while on hold.")
    m.hold_chat("c1", by="ann", now=1010)
    m.tick(now=1309)
    assert m.get_chat("c1").state is ChatState.ACTIVE
    m.tick(now=1310)
    chat = m.get_chat("c1")
    assert chat.state is ChatState.ENDED and chat.end_reason is EndReason.HOLD_TIMEOUT
    assert chat.ended_by == "system"
    assert m.messages("c1")[-1].text == "Closed while on hold."
    assert sink_of(m).of_type("chat.ended")[-1].data["end_reason"] == "hold_timeout"
    assert m.agent("ann").chats == {"c2"} and not m.agent("ann").inactive
    check_invariants(m.storage, drained=True, count_on_hold=False)


def test_a_resumed_chat_is_not_closed_by_its_old_hold_deadline() -> None:
    m = held_manager(hold_close_after_s=300)
    m.hold_chat("c1", by="ann", now=1010)
    m.resume_chat("c1", by="ann", now=1100)
    m.tick(now=1400)
    assert m.get_chat("c1").state is ChatState.ACTIVE


def test_a_transfer_ends_the_hold_and_the_new_agent_counts_the_chat() -> None:
    m = held_manager()
    m.register_agent(agent("bob", limit=2), now=1000)  # takes c2 from the queue
    m.hold_chat("c1", by="ann", now=1010)
    moved = m.transfer("c1", to_agent="bob", now=1020)
    assert moved.agent_id == "bob" and moved.hold is None and not moved.inactive
    assert m.agent("bob").chats == {"c1", "c2"} and not m.agent("ann").inactive
    check_invariants(m.storage, drained=True, count_on_hold=False)


# --------------------------------------------------------------------------- inactivity


def release_manager(**settings: Any) -> Any:
    m = manager(settings)
    m.register_agent(agent("ann", limit=1, groups=("g",)), now=1000)
    m.open_chat(customer("u1"), skill_group="g", chat_id="c1", now=1000)
    m.open_chat(customer("u2"), skill_group="g", chat_id="c2", now=1001)
    return m


def test_silence_marks_the_chat_inactive_and_frees_the_slot() -> None:
    m = release_manager(
        assignment={"inactive_chats_count": False},
        end_of_chat={**NO_TIMEOUTS, "inactive_after_s": 120},
    )
    m.send_message("c1", "hi", role=MessageRole.CUSTOMER, now=1010)
    m.send_message("c1", "hello", role=MessageRole.AGENT, sender="ann", now=1050)
    m.tick(now=1169)  # 120 s after the agent's message, not after the customer's
    assert not m.get_chat("c1").inactive
    m.tick(now=1170)
    assert m.get_chat("c1").inactive and m.agent("ann").inactive == {"c1"}
    assert m.get_chat("c2").agent_id == "ann"  # the freed slot drained the queue
    (went,) = sink_of(m).of_type("chat.inactivity_changed")
    assert went.chat_id == "c1" and went.data["agent_id"] == "ann"
    assert went.data["inactive"] is True and went.data["cause"] == "silence"
    assert went.data["counts"] is False
    check_invariants(m.storage, count_inactive=False, drained=True)
    # a new message makes it active again: it counts again, above the limit if need be
    before = held_allowance(m.storage)
    m.send_message("c1", "back", role=MessageRole.CUSTOMER, now=1200)
    assert not m.get_chat("c1").inactive and m.agent("ann").chats == {"c1", "c2"}
    back = sink_of(m).of_type("chat.inactivity_changed")[-1]
    assert back.data["inactive"] is False and back.data["cause"] == "message"
    assert back.data["counts"] is True
    check_invariants(m.storage, count_inactive=False, allowance=before)


def test_set_inactive_by_hand_raises_the_event_once() -> None:
    m = release_manager(assignment={"inactive_chats_count": False}, end_of_chat=NO_TIMEOUTS)
    m.set_inactive("c2", now=1009)  # queued: marked, but no agent holds it: no event
    m.set_inactive("c1", now=1010)  # (c2 takes the freed slot)
    m.set_inactive("c1", now=1011)  # inactive already: nothing changes
    events = sink_of(m).of_type("chat.inactivity_changed")
    assert [(e.chat_id, e.data["cause"], e.data["inactive"]) for e in events] == [
        ("c1", "set_inactive", True)
    ]
    m.set_inactive("c1", False, now=1013)
    assert sink_of(m).of_type("chat.inactivity_changed")[-1].data["inactive"] is False


def test_the_release_follows_the_channel_and_group_overrides() -> None:
    m = release_manager(
        end_of_chat={
            **NO_TIMEOUTS,
            "inactive_after_s": 600,
            "groups": {"g": {"inactive_after_s": 60}},
            "channels": {"app": {"inactive_after_s": 30}},
        },
    )
    m.register_agent(agent("bob", limit=5, groups=("g",)), now=1000)
    m.open_chat(customer("u3", channel="app"), skill_group="g", chat_id="c3", now=1000)
    m.open_chat(customer("u4"), skill_group="", chat_id="c4", now=1000)
    m.tick(now=1030)
    assert m.get_chat("c3").inactive and not m.get_chat("c1").inactive
    m.tick(now=1060)
    assert m.get_chat("c1").inactive and not m.get_chat("c4").inactive
    m.tick(now=1600)
    assert m.get_chat("c4").inactive


def test_with_inactive_chats_counting_the_release_only_marks_the_chat() -> None:
    m = release_manager(end_of_chat={**NO_TIMEOUTS, "inactive_after_s": 60})
    m.tick(now=1060)
    assert m.get_chat("c1").inactive and m.agent("ann").chats == {"c1"}
    assert m.get_chat("c2").state is ChatState.QUEUED
    check_invariants(m.storage, drained=True)


def test_a_held_chat_is_not_released_and_always_on_chats_are() -> None:
    m = release_manager(end_of_chat={**NO_TIMEOUTS, "inactive_after_s": 60})
    m.hold_chat("c1", by="ann", now=1010)
    m.tick(now=2000)
    assert not m.get_chat("c1").inactive
    ao = manager(
        {
            "reception_mode": "always_on",
            "assignment": {"inactive_chats_count": False},
            "end_of_chat": {"inactive_after_s": 60},
        }
    )
    ao.register_agent(agent("ann", limit=1), now=1000)
    chat = ao.open_chat(customer("u1"), chat_id="a1", now=1000)
    assert chat.mode is ReceptionMode.ALWAYS_ON and chat.state is ChatState.ACTIVE
    ao.tick(now=1060)
    assert ao.get_chat("a1").inactive and ao.agent("ann").inactive == {"a1"}
    ao.tick(now=99999)
    assert ao.get_chat("a1").state is ChatState.ACTIVE  # Always On chats never time out


@pytest.mark.parametrize(
    ("settings", "path"),
    [
        ({"end_of_chat": {"inactive_after_s": -1}}, "end_of_chat.inactive_after_s"),
        (
            {"end_of_chat": {"groups": {"g": {"hold_close_after_s": "x"}}}},
            "end_of_chat.groups.g.hold_close_after_s",
        ),
        (
            {"end_of_chat": {"channels": {"app": {"inactive_after_s": -5}}}},
            "end_of_chat.channels.app.inactive_after_s",
        ),
        ({"assignment": {"on_hold_chats_count": "no"}}, "assignment.on_hold_chats_count"),
    ],
)
def test_bad_settings_name_their_path(settings: dict[str, Any], path: str) -> None:
    with pytest.raises(SettingsError) as err:
        ChatSettings.from_dict(settings)
    assert path in str(err.value)


def test_the_async_manager_holds_and_resumes() -> None:
    async def run() -> None:
        m = AsyncChatManager(
            None, ChatSettings.from_dict({"end_of_chat": NO_TIMEOUTS}), clock=ManualClock(1000.0)
        )
        await m.register_agent(agent("ann", limit=1))
        chat = await m.open_chat(customer("u1"), chat_id="c1")
        held = await m.hold_chat(chat.id, by="ann", reason="x")
        assert held.hold is not None and held.hold["reason"] == "x"
        assert (await m.agent("ann")).inactive == {"c1"}
        resumed = await m.resume_chat(chat.id, by="ann")
        assert resumed.hold is not None and resumed.hold["resumed_by"] == "ann"
        assert (await m.agent("ann")).chats == {"c1"}

    asyncio.run(run())
