"""The bot stage (issue 14 item 1): a chat a bot handles, its handoff to a human, its own
timeouts, a bot ending it, and satisfaction skipping bot-only chats."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from assignment.assign_helpers import agent, clock_of, customer, manager, sink_of
from chatmgmt import AsyncChatManager, ChatSettings, MessageRole
from chatmgmt.errors import InvalidTransitionError, NotAllowedError, ValidationError
from chatmgmt.model import ChatState, EndReason, ReceptionMode
from chatmgmt.testing import ManualClock, check_invariants


def test_a_bot_chat_is_stored_not_routed_and_takes_no_capacity() -> None:
    m = manager()
    m.register_agent(agent("ann", limit=1))
    chat = m.open_chat(customer("u"), bot="faq-bot")
    assert chat.state is ChatState.BOT and chat.agent_id is None and chat.queue is None
    assert chat.bot == {"id": "faq-bot", "since": 1000.0}
    assert m.agent("ann").active == 0  # no capacity used
    assert m.get_chat(chat.id).state is ChatState.BOT
    started = sink_of(m).of_type("chat.bot_started")
    assert [e.data["bot"] for e in started] == ["faq-bot"]
    assert not sink_of(m).of_type("chat.assigned") and not sink_of(m).of_type("chat.queued")
    # an ordinary chat still goes to ann: the bot chat holds nothing
    assert m.open_chat(customer("v")).agent_id == "ann"
    check_invariants(m.storage, opened=[chat.id], drained=True)


def test_messages_in_the_bot_stage_are_recorded_and_moderated() -> None:
    m = manager(
        {"sensitive_words": {"customer": [{"word": "darn", "category": "x", "action": "mask"}]}}
    )
    chat = m.open_chat(customer("u"), bot="faq-bot")
    m.send_message(chat.id, "hello darn bot", role=MessageRole.CUSTOMER, sender="u")
    m.send_message(chat.id, "How can I help?", role=MessageRole.BOT, sender="faq-bot")
    texts = [(msg.role, msg.text) for msg in m.messages(chat.id)]
    assert texts == [
        (MessageRole.CUSTOMER, "hello **** bot"),
        (MessageRole.BOT, "How can I help?"),
    ]
    assert sink_of(m).of_type("moderation.hit")
    stored = m.get_chat(chat.id)
    assert stored.state is ChatState.BOT and stored.last_customer_message_at == 1000.0
    assert stored.bot is not None and stored.bot["replied"] is True
    with pytest.raises(NotAllowedError):  # no agent holds it
        m.send_message(chat.id, "hi", role=MessageRole.AGENT, sender="ann")


def test_handoff_routes_with_the_bot_context_in_the_explanation_and_events() -> None:
    m = manager()
    m.register_agent(agent("ann", groups=("billing",)))
    chat = m.open_chat(customer("u"), skill_group="billing", bot="faq-bot")
    clock_of(m).advance(42.0)
    fields = {"order": "A-1042", "items": [1, 2], "vip": True}
    done = m.handoff(chat.id, reason="asked for a human", fields=fields, by="faq-bot")
    assert done.state is ChatState.ACTIVE and done.agent_id == "ann"
    handoff = {"bot": "faq-bot", "reason": "asked for a human", "fields": fields}
    assert done.route_reason["handoff"] == handoff
    assert done.bot is not None and done.bot["handoff"]["reason"] == "asked for a human"
    (event,) = sink_of(m).of_type("chat.handed_off")
    assert event.data == {
        "chat_id": chat.id,
        "channel": chat.channel,
        "skill_group": "billing",
        "partner_id": "u",
        "bot": "faq-bot",
        "reason": "asked for a human",
        "fields": fields,
        "by": "faq-bot",
        "bot_s": 42.0,
    }
    (assigned,) = sink_of(m).of_type("chat.assigned")
    assert assigned.data["reason"]["handoff"] == handoff
    assert assigned.seq > event.seq
    assert m.agent("ann").active == 1
    check_invariants(m.storage, opened=[chat.id], drained=True)


def test_handoff_with_nobody_free_queues_the_chat_with_the_context() -> None:
    m = manager()
    chat = m.open_chat(customer("u"), bot="faq-bot")
    clock_of(m).advance(5.0)
    queued = m.handoff(chat.id, reason="human please")
    assert queued.state is ChatState.QUEUED and queued.queue == "queue/"
    assert queued.queued_at == 1005.0  # the wait starts at the handoff
    assert queued.route_reason["handoff"]["reason"] == "human please"
    (event,) = sink_of(m).of_type("chat.queued")
    assert event.data["reason"]["handoff"]["bot"] == "faq-bot"
    assert m.queue_status(chat.id) is not None
    m.register_agent(agent("ann"))  # drained on arrival
    assert m.get_chat(chat.id).agent_id == "ann"
    check_invariants(m.storage, opened=[chat.id], drained=True)


def test_handoff_to_another_group() -> None:
    m = manager()
    m.register_agent(agent("ann", groups=("sales",)))
    m.register_agent(agent("bob", groups=("billing",)))
    chat = m.open_chat(customer("u"), skill_group="sales", bot="faq-bot")
    done = m.handoff(chat.id, reason="billing question", skill_group="billing")
    assert done.agent_id == "bob" and done.skill_group == "billing"


def test_always_on_handoff_goes_to_the_pool() -> None:
    m = manager({"reception_mode": "always_on"})
    chat = m.open_chat(customer("u"), bot="faq-bot")
    assert chat.state is ChatState.BOT and chat.mode is ReceptionMode.ALWAYS_ON
    pooled = m.handoff(chat.id, reason="human")
    assert pooled.state is ChatState.UNASSIGNED and pooled.queue == "pool/"
    m.register_agent(agent("ann"))
    assert m.get_chat(chat.id).state is ChatState.ACTIVE


def test_handoff_is_refused_outside_the_bot_stage() -> None:
    m = manager()
    m.register_agent(agent("ann"))
    plain = m.open_chat(customer("u"))
    with pytest.raises(InvalidTransitionError) as exc:
        m.handoff(plain.id, reason="x")
    assert exc.value.event == "handoff"
    chat = m.open_chat(customer("v"), bot="faq-bot")
    m.handoff(chat.id, reason="x")
    with pytest.raises(InvalidTransitionError):  # once only
        m.handoff(chat.id, reason="again")
    assert len(sink_of(m).of_type("chat.handed_off")) == 1


@pytest.mark.parametrize(
    ("kwargs", "where"),
    [
        ({"reason": ""}, "reason"),
        ({"reason": "x" * 501}, "reason"),
        ({"reason": 7}, "reason"),
        ({"reason": "ok", "fields": ["a"]}, "fields"),
        ({"reason": "ok", "fields": {"a": {1: "x"}}}, "fields.a"),
        ({"reason": "ok", "fields": {"a": [1, object()]}}, "fields.a[1]"),
        ({"reason": "ok", "fields": {"a": math.inf}}, "fields.a"),
        ({"reason": "ok", "fields": {"a": "nul\x00"}}, "fields.a"),
        ({"reason": "ok", "by": "\x00"}, "by"),
    ],
)
def test_bad_handoff_input_names_the_part_and_changes_nothing(
    kwargs: dict[str, Any], where: str
) -> None:
    m = manager()
    chat = m.open_chat(customer("u"), bot="faq-bot")
    with pytest.raises(ValidationError) as exc:
        m.handoff(chat.id, **kwargs)
    assert str(exc.value).startswith(f"{where}:") or str(exc.value).startswith(f"{where} ")
    stored = m.get_chat(chat.id)
    assert stored.state is ChatState.BOT and stored.version == chat.version


@pytest.mark.parametrize("bot", ["", "a\x00b", 5])
def test_a_bad_bot_id_is_refused(bot: Any) -> None:
    m = manager()
    with pytest.raises(ValidationError, match=r"^bot:"):
        m.open_chat(customer("u"), bot=bot, chat_id="c1")
    assert m.list_chats() == []


def test_the_bot_ends_the_chat_and_the_satisfaction_setting_decides_the_invitation() -> None:
    invite_bot = {"invite_on_end_reasons": ["agent", "customer", "bot"]}
    m = manager({"satisfaction": invite_bot})
    chat = m.open_chat(customer("u"), bot="faq-bot")
    m.send_message(chat.id, "Solved?", role=MessageRole.BOT, sender="faq-bot")
    ended = m.end_chat(chat.id, reason=EndReason.BOT, by="faq-bot")
    assert ended.state is ChatState.ENDED and ended.end_reason is EndReason.BOT
    assert ended.satisfaction is None  # bot.skip_satisfaction (default): no invitation
    assert not sink_of(m).of_type("satisfaction.invited")
    (event,) = sink_of(m).of_type("chat.ended")
    assert event.data["end_reason"] == "bot" and event.data["ended_by"] == "faq-bot"

    m2 = manager({"satisfaction": invite_bot, "bot": {"skip_satisfaction": False}})
    chat2 = m2.open_chat(customer("u"), bot="faq-bot")
    m2.send_message(chat2.id, "Solved?", role=MessageRole.BOT, sender="faq-bot")
    ended2 = m2.end_chat(chat2.id, reason=EndReason.BOT, by="faq-bot")
    (invited,) = sink_of(m2).of_type("satisfaction.invited")
    assert invited.data["agent_id"] == "faq-bot"  # the bot stands in for the agent
    rated = m2.rate(chat2.id, level=5)
    assert rated.satisfaction is not None
    assert rated.satisfaction["rating"]["agent_id"] == "faq-bot" and ended2.state is ChatState.ENDED


def test_skip_satisfaction_per_channel_override() -> None:
    settings = {
        "satisfaction": {"invite_on_end_reasons": ["bot"]},
        "bot": {"skip_satisfaction": False, "channels": {"app": {"skip_satisfaction": True}}},
    }
    m = manager(settings)
    web = m.open_chat(customer("u", channel="web"), bot="b")
    app = m.open_chat(customer("v", channel="app"), bot="b")
    for c in (web, app):
        m.send_message(c.id, "bye", role=MessageRole.BOT, sender="b")
        m.end_chat(c.id, reason=EndReason.BOT, by="b")
    assert [e.chat_id for e in sink_of(m).of_type("satisfaction.invited")] == [web.id]


def test_a_handed_off_chat_is_rated_as_usual() -> None:
    m = manager({"satisfaction": {"invite_on_end_reasons": ["agent"]}})
    m.register_agent(agent("ann"))
    chat = m.open_chat(customer("u"), bot="faq-bot")
    m.handoff(chat.id, reason="human")
    m.send_message(chat.id, "hi, Ann here", role=MessageRole.AGENT, sender="ann")
    m.end_chat(chat.id, by="ann")
    (invited,) = sink_of(m).of_type("satisfaction.invited")
    assert invited.data["agent_id"] == "ann"


def test_the_customer_leaving_the_bot_stage_abandons_it() -> None:
    m = manager()
    chat = m.open_chat(customer("u"), bot="faq-bot")
    gone = m.abandon(chat.id)
    assert gone.state is ChatState.ABANDONED
    with pytest.raises(InvalidTransitionError):
        m.handoff(chat.id, reason="too late")


def test_bot_stage_timeouts_end_on_silence_and_hand_off_on_the_limit() -> None:
    m = manager({"bot": {"end_after_s": 60, "handoff_after_s": 300}})
    m.register_agent(agent("ann"))
    quiet = m.open_chat(customer("u"), bot="faq-bot")
    talking = m.open_chat(customer("v"), bot="faq-bot")
    clock = clock_of(m)
    for _ in range(5):  # v keeps writing every 50 s, so only the handoff limit applies
        clock.advance(50.0)
        m.send_message(talking.id, "still here", role=MessageRole.CUSTOMER, sender="v")
        m.tick()
    ended = m.get_chat(quiet.id)
    assert ended.state is ChatState.ENDED
    assert ended.end_reason is EndReason.CUSTOMER_INACTIVITY
    assert ended.ended_at == 1100.0  # the first tick after 1060
    assert m.get_chat(talking.id).state is ChatState.BOT
    clock.advance(60.0)  # t = 1310: 300 s in the bot stage
    m.tick()
    handed = m.get_chat(talking.id)
    assert handed.state is ChatState.ACTIVE and handed.agent_id == "ann"
    assert handed.route_reason["handoff"]["reason"] == "timeout"
    (event,) = sink_of(m).of_type("chat.handed_off")
    assert event.data["by"] == "system" and event.data["bot_s"] == 310.0  # at the tick
    check_invariants(m.storage, opened=[quiet.id, talking.id], drained=True)


def test_always_on_bot_stage_has_the_handoff_limit_but_no_silence_end() -> None:
    m = manager({"reception_mode": "always_on", "bot": {"end_after_s": 60, "handoff_after_s": 120}})
    chat = m.open_chat(customer("u"), bot="faq-bot")
    clock_of(m).advance(100.0)
    m.tick()
    assert m.get_chat(chat.id).state is ChatState.BOT  # Always On chats never time out
    clock_of(m).advance(20.0)
    m.tick()
    assert m.get_chat(chat.id).state is ChatState.UNASSIGNED


def test_bot_settings_errors_name_the_path() -> None:
    from chatmgmt.errors import SettingsError

    with pytest.raises(SettingsError) as exc:
        ChatSettings.from_dict({"bot": {"groups": {"g": {"handoff_after_s": -1}}}})
    assert exc.value.path == "bot.groups.g.handoff_after_s"
    with pytest.raises(SettingsError) as exc:
        ChatSettings.from_dict({"bot": {"channels": {"web": {"nope": 1}}}})
    assert exc.value.path == "bot.channels.web.nope"


def test_the_async_manager_runs_the_same_bot_stage() -> None:
    async def run() -> None:
        m = AsyncChatManager(None, clock=ManualClock(10.0))
        await m.register_agent(agent("ann"))
        chat = await m.open_chat(customer("u"), bot="faq-bot")
        assert chat.state is ChatState.BOT
        done = await m.handoff(chat.id, reason="human", fields={"k": "v"})
        assert done.agent_id == "ann" and done.route_reason["handoff"]["fields"] == {"k": "v"}

    asyncio.run(run())
