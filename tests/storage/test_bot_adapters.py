"""The bot stage on every adapter: a chat opened in the bot stage is stored in state ``bot``
with its ``Chat.bot`` record (listed under that state, holding no slot, in no queue); the
handoff's unit of work stores the context and the queue entry together; an old record without
the field reads as a chat without a bot stage."""

from __future__ import annotations

import json
import random

from chatmgmt import Agent, AgentStatus, ChatManager, ChatSettings
from chatmgmt.model import Chat, ChatId, ChatState, CustomerInfo, MessageRole
from chatmgmt.ports import Storage
from chatmgmt.storage._codec import decode, encode
from chatmgmt.testing import ManualClock, check_invariants, sequential_ids
from storage.test_offers_pull_adapters import storage  # noqa: F401  (the adapter fixture)


def test_bot_stage_and_handoff_round_trip_through_the_adapter(storage: Storage) -> None:  # noqa: F811
    m = ChatManager(
        storage,
        ChatSettings.from_dict({"bot": {"handoff_after_s": 600}}),
        clock=ManualClock(100.0),
        rng=random.Random(1),
        ids=sequential_ids(),
    )
    m.register_agent(Agent("ann", skill_groups={"g"}, reception_limit=1, status=AgentStatus.ONLINE))
    chat = m.open_chat(CustomerInfo(name="u"), skill_group="g", chat_id="b1", bot="faq-bot")
    stored = storage.chats.get(ChatId("b1"))
    assert stored is not None and stored.state is ChatState.BOT
    assert stored.bot == {"id": "faq-bot", "since": 100.0}
    assert [c.id for c in storage.chats.list(ChatState.BOT)] == ["b1"]
    assert storage.agents.get("ann").active == 0  # type: ignore[union-attr]
    m.send_message(chat.id, "ünïcode?", role=MessageRole.CUSTOMER, sender="u")
    m.send_message(chat.id, "Let me get someone", role=MessageRole.BOT, sender="faq-bot")
    fields = {"order": "A-1", "nested": {"list": [1, 2.5, None, True]}}
    done = m.handoff(chat.id, reason="human", fields=fields, by="faq-bot", now=130.0)
    assert done.state is ChatState.ACTIVE and done.agent_id == "ann"
    again = storage.chats.get(ChatId("b1"))
    assert again is not None and again.bot is not None
    assert again.bot["handoff"] == {
        "reason": "human",
        "fields": fields,
        "by": "faq-bot",
        "at": 130.0,
    }
    assert again.bot["replied"] is True
    assert again.route_reason["handoff"]["fields"] == fields
    assert storage.chats.list(ChatState.BOT) == []
    assert [msg.text for msg in storage.chats.messages(ChatId("b1"))] == [
        "ünïcode?",
        "Let me get someone",
    ]
    check_invariants(storage, opened=["b1"], drained=True)


def test_an_old_record_without_the_bot_field_reads_as_none() -> None:
    chat = Chat(ChatId("c"), CustomerInfo(name="u"), "web", bot={"id": "b", "since": 1.0})
    data = json.loads(encode(chat))
    assert data["bot"] == {"id": "b", "since": 1.0}
    assert decode(encode(chat), Chat).bot == {"id": "b", "since": 1.0}
    del data["bot"]
    assert decode(json.dumps(data), Chat).bot is None
