"""A chat's hold on every adapter: hold_chat stores the hold and moves the slot in one Change
(guarded by the chat's version), resume_chat counts it again; an old record reads as never
held."""

from __future__ import annotations

import json
import random

from chatmgmt import Agent, AgentStatus, ChatManager, ChatSettings
from chatmgmt.lifecycle import on_hold
from chatmgmt.model import Chat, ChatId, CustomerInfo
from chatmgmt.ports import Storage
from chatmgmt.storage._codec import decode, encode
from chatmgmt.testing import ManualClock, check_invariants, sequential_ids
from storage.test_offers_pull_adapters import storage  # noqa: F401  (the adapter fixture)


def test_hold_and_resume_round_trip_through_the_adapter(storage: Storage) -> None:  # noqa: F811
    m = ChatManager(
        storage,
        ChatSettings.from_dict({"end_of_chat": {"warn_after_s": 0, "end_after_s": 0}}),
        clock=ManualClock(100.0),
        rng=random.Random(1),
        ids=sequential_ids(),
    )
    m.register_agent(Agent("ann", status=AgentStatus.ONLINE, reception_limit=1))
    chat = m.open_chat(CustomerInfo(name="u"), chat_id="h1")
    m.open_chat(CustomerInfo(name="v"), chat_id="h2")
    m.hold_chat(chat.id, by="ann", reason="väntar", now=110.0)
    stored = storage.chats.get(ChatId("h1"))
    assert stored is not None and on_hold(stored) and stored.hold is not None
    assert stored.hold["reason"] == "väntar" and stored.hold["since"] == 110.0
    load = storage.agents.get("ann")  # type: ignore[arg-type]
    assert load is not None and load.inactive == {"h1"} and load.chats == {"h2"}
    check_invariants(storage, count_on_hold=False, drained=True)
    m.resume_chat(chat.id, by="ann", now=120.0)
    stored = storage.chats.get(ChatId("h1"))
    assert stored is not None and not on_hold(stored) and stored.version == chat.version + 2
    load = storage.agents.get("ann")  # type: ignore[arg-type]
    assert load is not None and load.chats == {"h1", "h2"} and not load.inactive


def test_an_old_record_without_a_hold_reads_as_never_held() -> None:
    chat = Chat(ChatId("c"), CustomerInfo(name="u"), "web", hold={"since": 1.0, "by": "a"})
    data = json.loads(encode(chat))
    assert data["hold"] == {"since": 1.0, "by": "a"}
    del data["hold"]
    assert decode(json.dumps(data), Chat).hold is None
