"""A chat's tags on every adapter: stored by tag_chat / untag_chat (each one Change guarded by
the chat's version) and read back as the same set; an old record without tags reads as none."""

from __future__ import annotations

import json
import random

from chatmgmt import ChatManager, ChatSettings
from chatmgmt.model import Chat, ChatId, CustomerInfo
from chatmgmt.ports import Storage
from chatmgmt.storage._codec import decode, encode
from chatmgmt.testing import ManualClock, sequential_ids
from storage.test_offers_pull_adapters import storage  # noqa: F401  (the adapter fixture)


def test_tags_round_trip_through_the_adapter(storage: Storage) -> None:  # noqa: F811
    m = ChatManager(
        storage,
        ChatSettings(),
        clock=ManualClock(100.0),
        rng=random.Random(1),
        ids=sequential_ids(),
    )
    chat = m.open_chat(CustomerInfo(name="u"), chat_id="t1")
    m.tag_chat(chat.id, "billing", "vip", "ünïcode tag", by="ann")
    assert storage.chats.get(ChatId("t1")).tags == {"billing", "vip", "ünïcode tag"}  # type: ignore[union-attr]
    m.untag_chat(chat.id, "vip", by="ann")
    stored = storage.chats.get(ChatId("t1"))
    assert stored is not None and stored.tags == {"billing", "ünïcode tag"}
    assert stored.version == chat.version + 2


def test_an_old_record_without_tags_reads_as_untagged() -> None:
    chat = Chat(ChatId("c"), CustomerInfo(name="u"), "web", tags=frozenset({"x"}))
    data = json.loads(encode(chat))
    assert data["tags"] == ["x"]
    assert decode(encode(chat), Chat).tags == {"x"}
    del data["tags"]
    assert decode(json.dumps(data), Chat).tags == frozenset()
