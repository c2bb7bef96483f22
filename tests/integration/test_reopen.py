"""Always On reopen: reopen() into the pool or to the last agent (falling back to the pool, and
saying why), a customer's message by the ``reopen`` settings, and the refusals (Real-Time, not
ended, retention, setting, window) as ReopenRefusedError."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from assignment.assign_helpers import agent, clock_of, customer, manager, sink_of
from chatmgmt import (
    AgentStatus,
    AsyncChatManager,
    ChatManager,
    ChatSettings,
    ChatState,
    InvalidTransitionError,
    NotFoundError,
    ValidationError,
)
from chatmgmt.errors import PreconditionFailed, ReopenRefusedError
from chatmgmt.model import AgentId, ChatId
from chatmgmt.storage import MemoryStorage
from chatmgmt.testing import ManualClock, RecordingEventSink
from chatmgmt.testing._contracts._support import nxt, update

AO: dict[str, Any] = {"reception_mode": "always_on"}


def ended_with_ann(settings: dict[str, Any] | None = None) -> tuple[ChatManager, str]:
    """ann (limit 1) served a chat of customer u that has ended; bob (limit 1) is free."""
    m = manager({**AO, **(settings or {})})
    m.register_agent(agent("ann", limit=1, order=0))
    chat = m.open_chat(customer("u"))
    assert chat.agent_id == "ann"
    m.register_agent(agent("bob", limit=1, order=1))
    m.send_message(chat.id, "thanks", sender="ann", role="agent")
    m.end_chat(chat.id)
    return m, chat.id


def reopened_event(m: ChatManager) -> dict[str, Any]:
    events = sink_of(m).of_type("chat.reopened")
    assert events, "no chat.reopened event"
    return dict(events[-1].data)


def fill(m: ChatManager, agent_id: str) -> None:
    """Give ``agent_id`` a new chat (a designated one) so that it is at its limit of 1."""
    from chatmgmt import RouteRequest

    other = m.open_chat(customer("x"), request=RouteRequest(designated_agent=AgentId(agent_id)))
    assert other.agent_id == agent_id


def test_reopen_to_the_last_agent_assigns_it_in_one_unit() -> None:
    m, cid = ended_with_ann()
    fill(m, "bob")  # routing from the pool would find nobody else free: ann it is by choice
    chat = m.reopen(cid, to="last_agent", by="admin_1")
    assert chat.state is ChatState.ACTIVE and chat.agent_id == "ann"
    assert chat.route_reason == {"via": "reopen", "agent": "ann", "by": "admin_1"}
    assert chat.ended_at is None and chat.end_reason is None and chat.ended_by is None
    stored = m.storage.chats.get(ChatId(cid))
    assert stored is not None and stored.state is ChatState.ACTIVE and stored.agent_id == "ann"
    assert reopened_event(m) | {"chat_id": None, "skill_group": None} == {
        "chat_id": None,
        "channel": "web",
        "skill_group": None,
        "partner_id": "u",
        "to": "last_agent",
        "agent_id": "ann",
        "by": "admin_1",
        "requested": "last_agent",
        "fallback": None,
    }
    types = [e.type for e in sink_of(m).events if e.chat_id == cid]
    assert types[-2:] == ["chat.reopened", "chat.assigned"]


def test_reopen_to_a_full_last_agent_falls_back_to_the_pool_and_says_why() -> None:
    m, cid = ended_with_ann()
    fill(m, "ann")
    fill(m, "bob")
    chat = m.reopen(cid, to="last_agent", by="admin_1")
    assert chat.state is ChatState.UNASSIGNED and chat.queue == "pool/"
    data = reopened_event(m)
    assert (data["to"], data["requested"], data["fallback"]) == ("pool", "last_agent", "agent_full")
    assert data["agent_id"] is None
    # the pool hands it out when capacity frees: bob's chat ends, bob takes it
    bobs = m.storage.chats.list(state=ChatState.ACTIVE, agent_id=AgentId("bob"))
    m.end_chat(bobs[0].id)
    assert m.get_chat(cid).agent_id == "bob"


def test_reopen_to_an_offline_last_agent_falls_back_to_routing_from_the_pool() -> None:
    m, cid = ended_with_ann()
    m.set_agent_status("ann", AgentStatus.OFFLINE)
    chat = m.reopen(cid, to="last_agent", by="admin_1")
    assert chat.state is ChatState.ACTIVE and chat.agent_id == "bob"  # routed from the pool
    assert reopened_event(m)["fallback"] == "agent_offline"


def test_reopen_to_a_last_agent_that_is_gone_or_never_was() -> None:
    m, cid = ended_with_ann()
    stored = m.storage.chats.get(ChatId(cid))
    assert stored is not None
    update(m.storage, nxt(stored, served_by=(AgentId("ghost"),)), now=1000.0)
    m.reopen(cid, to="last_agent", by="admin_1")
    assert reopened_event(m)["fallback"] == "agent_gone"

    m2 = manager(AO)
    never = m2.open_chat(customer("v"))  # nobody online: it waits in the pool, never served
    m2.end_chat(never.id, reason="customer")
    chat = m2.reopen(never.id, to="last_agent", by="admin_1")
    assert chat.state is ChatState.UNASSIGNED
    assert reopened_event(m2)["fallback"] == "no_last_agent"


def test_the_claim_is_checked_inside_the_unit_when_the_agent_fills_up_meanwhile() -> None:
    """ann looks free when the reopen reads her, then takes a chat before the unit commits:
    the store refuses the claim, nothing was committed, and the reopen goes to the pool."""
    m, cid = ended_with_ann()
    fill(m, "bob")
    gen = m._core.reopen(ChatId(cid), "last_agent", "admin_1", 2000.0)
    op = next(gen)
    result: Any = None
    filled = False
    while True:
        if op.name == "apply" and not filled:
            fill(m, "ann")  # a racer: ann is at her limit now
            filled = True
        try:
            try:
                value = m._run(_one(op))
            except PreconditionFailed as exc:
                op = gen.throw(exc)
                continue
            op = gen.send(value)
        except StopIteration as stop:
            result = stop.value
            break
    assert filled and result.state is ChatState.UNASSIGNED
    assert reopened_event(m)["fallback"] == "agent_full"
    assert len(m.storage.chats.list(state=ChatState.ACTIVE, agent_id=AgentId("ann"))) == 1


def _one(op: Any) -> Any:
    result = yield op
    return result


def test_reopen_into_the_pool_routes_it_like_a_waiting_chat() -> None:
    m, cid = ended_with_ann()
    chat = m.reopen(cid, by="admin_1")  # to="pool" by default
    assert chat.state is ChatState.ACTIVE  # a free agent of the group took it from the pool
    data = reopened_event(m)
    assert (data["to"], data["requested"], data["fallback"], data["by"]) == (
        "pool",
        "pool",
        None,
        "admin_1",
    )
    types = [e.type for e in sink_of(m).events if e.chat_id == cid]
    assert types[-2:] == ["chat.reopened", "chat.assigned"]


def test_refusals_are_typed_and_name_the_mode() -> None:
    rt = manager({})
    rt.register_agent(agent("ann"))
    chat = rt.open_chat(customer("u"))
    rt.end_chat(chat.id)
    with pytest.raises(ReopenRefusedError) as info:
        rt.reopen(chat.id, by="admin_1")
    assert info.value.reason == "real_time" and info.value.mode == "real_time"
    assert "real_time" in str(info.value) and "open a new chat" in str(info.value)
    with pytest.raises(InvalidTransitionError):  # a Real-Time customer's message, as before
        rt.send_message(chat.id, "again", sender="u")

    m, cid = ended_with_ann()
    m.reopen(cid, to="last_agent", by="admin_1")
    with pytest.raises(ReopenRefusedError) as info:
        m.reopen(cid, by="admin_1")
    assert info.value.reason == "not_ended" and info.value.state == "active"
    with pytest.raises(ValidationError, match="to: expected"):
        m.reopen(cid, to="agent", by="admin_1")  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        m.reopen("nope", by="admin_1")


def test_a_chat_past_its_retention_cannot_be_reopened_and_a_purged_one_is_not_found() -> None:
    m, cid = ended_with_ann({"retention": {"ended_chats_s": 100}})
    clock_of(m).advance(100)
    m.reopen(cid, by="admin_1")  # exactly at the end of its retention: purge() keeps it too
    m.end_chat(cid)
    clock_of(m).advance(100.5)
    with pytest.raises(ReopenRefusedError) as info:
        m.reopen(cid, by="admin_1")
    assert info.value.reason == "retention" and "retention.ended_chats_s" in str(info.value)
    with pytest.raises(ReopenRefusedError):
        m.send_message(cid, "hello again", sender="u")
    assert m.get_chat(cid).state is ChatState.ENDED  # nothing was committed
    assert m.purge() == 1
    with pytest.raises(NotFoundError):
        m.reopen(cid, by="admin_1")


def test_a_customer_message_reopens_by_the_settings() -> None:
    # default: into the pool, routed (round robin gives it to bob, who waited longest)
    m, cid = ended_with_ann()
    m.send_message(cid, "one more thing", sender="u")
    data = reopened_event(m)
    assert (data["to"], data["by"], data["requested"]) == ("pool", "customer", "pool")
    assert m.get_chat(cid).state is ChatState.ACTIVE

    # customer_to last_agent: back to ann, in the message's own unit
    m, cid = ended_with_ann({"reopen": {"customer_to": "last_agent"}})
    before = m.get_chat(cid).version
    m.send_message(cid, "one more thing", sender="u")
    chat = m.get_chat(cid)
    assert chat.agent_id == "ann" and chat.version == before + 1
    assert chat.last_customer_message_at is not None
    assert reopened_event(m)["to"] == "last_agent"
    assert [msg.text for msg in m.storage.chats.messages(ChatId(cid))][-1] == "one more thing"

    # ... and to the pool when ann is full (fallback said)
    m, cid = ended_with_ann({"reopen": {"customer_to": "last_agent"}})
    fill(m, "ann")
    m.send_message(cid, "one more thing", sender="u")
    assert m.get_chat(cid).agent_id == "bob"
    assert reopened_event(m)["fallback"] == "agent_full"


def test_a_customer_message_is_refused_when_reopening_is_off_or_the_window_passed() -> None:
    m, cid = ended_with_ann({"reopen": {"on_customer_message": False}})
    with pytest.raises(ReopenRefusedError) as info:
        m.send_message(cid, "hello", sender="u")
    assert info.value.reason == "setting" and info.value.mode == "always_on"
    assert m.get_chat(cid).state is ChatState.ENDED
    assert m.storage.chats.messages(ChatId(cid))[-1].text != "hello"
    assert m.reopen(cid, by="admin_1").state is ChatState.ACTIVE  # a person may still reopen

    m, cid = ended_with_ann({"reopen": {"window_s": 60, "groups": {"vip": {"window_s": 600}}}})
    clock_of(m).advance(61)
    with pytest.raises(ReopenRefusedError) as info:
        m.send_message(cid, "hello", sender="u")
    assert info.value.reason == "window" and "reopen.window_s" in str(info.value)
    m.reopen(cid, by="admin_1")  # the window is the customer's: a person's reopen ignores it


def test_a_group_override_of_the_window() -> None:
    m = manager({**AO, "reopen": {"window_s": 60, "groups": {"vip": {"window_s": 600}}}})
    m.register_agent(agent("ann", groups=("vip",)))
    chat = m.open_chat(customer("u"), skill_group="vip")
    m.end_chat(chat.id)
    clock_of(m).advance(300)
    m.send_message(chat.id, "hello", sender="u")
    assert m.get_chat(chat.id).state is ChatState.ACTIVE


def test_satisfaction_keeps_the_rating_and_invites_again_after_the_next_end() -> None:
    m, cid = ended_with_ann({"satisfaction": {"second_rating": "overwrite"}})
    assert m.get_chat(cid).satisfaction["invitations"] == 1  # type: ignore[index]
    m.rate(cid, 2)
    chat = m.reopen(cid, to="last_agent", by="admin_1")
    assert chat.satisfaction is not None
    assert chat.satisfaction["rating"]["level"] == 2  # the ended period's rating stays
    assert chat.satisfaction["invitations"] == 0
    m.send_message(cid, "better now", sender="ann", role="agent")
    m.end_chat(cid)
    assert m.get_chat(cid).satisfaction["invitations"] == 1  # type: ignore[index]
    assert len(sink_of(m).of_type("satisfaction.invited")) == 2
    assert m.rate(cid, 5).satisfaction["rating"]["revision"] == 1  # type: ignore[index]


def test_timers_and_marks_of_the_ended_period_are_reset() -> None:
    m, cid = ended_with_ann()
    stored = m.storage.chats.get(ChatId(cid))
    assert stored is not None
    update(m.storage, nxt(stored, timers_fired={"agent_reminder": [1.0]}, inactive=True))
    chat = m.reopen(cid, to="last_agent", by="admin_1")
    assert chat.timers_fired == {} and chat.inactive is False
    assert chat.escalation is not None and chat.escalation["since"] == 1000.0


def test_the_async_manager_reopens_too() -> None:
    async def main() -> None:
        m = AsyncChatManager(
            MemoryStorage().aio(),
            ChatSettings.from_dict(AO),
            clock=ManualClock(10.0),
            rng=random.Random(1),
            event_sink=RecordingEventSink(),
        )
        await m.register_agent(agent("ann", limit=1))
        chat = await m.open_chat(customer("u"))
        await m.end_chat(chat.id)
        again = await m.reopen(chat.id, to="last_agent", by="admin_1")
        assert again.state is ChatState.ACTIVE and again.agent_id == "ann"

    asyncio.run(main())


def test_a_reopened_chat_sent_back_to_the_pool_waits_from_its_reopening() -> None:
    # c waits since 1005 (sent back from ann, who it may not go back to); a was created at
    # 1000, ended, reopened to ann at 1010, then sent back too: its new wait started at 1010,
    # so it goes behind c, not ahead of it by its creation
    m = manager(AO)
    m.register_agent(agent("ann", limit=1))
    clock = clock_of(m)
    a = m.open_chat(customer("a"))
    m.end_chat(a.id, now=1001)
    c = m.open_chat(customer("c"), now=1005)
    assert c.agent_id == "ann"
    m.unassign(c.id, exclude=True, now=1006)
    reopened = m.reopen(a.id, to="last_agent", by="admin", now=1010)
    assert (reopened.state, reopened.agent_id) == (ChatState.ACTIVE, "ann")
    m.unassign(a.id, exclude=True, now=1015)
    stored_a = m.storage.chats.get(ChatId(a.id))
    assert stored_a is not None and stored_a.reopened_at == 1010.0
    assert [cid for cid, _ in m.storage.queues.peek("pool/", 10)] == [c.id, a.id]
    clock.set(1020)
    m.register_agent(agent("bob", limit=1))
    assert [x.id for x in m.list_chats(agent_id="bob")] == [c.id]
    assert m.storage.chats.get(ChatId(a.id)).state is ChatState.UNASSIGNED  # type: ignore[union-attr]


def test_a_reopened_chat_is_reopened_at_each_reopening_and_queued_by_it() -> None:
    m, cid = ended_with_ann()
    fill(m, "ann")
    fill(m, "bob")
    clock_of(m).set(1100)
    again = m.reopen(cid, by="admin")
    assert (again.state, again.reopened_at, again.queued_at) == (
        ChatState.UNASSIGNED,
        1100.0,
        1100.0,
    )
    assert dict(m.storage.queues.peek("pool/", 10))[ChatId(cid)] == 1100.0
