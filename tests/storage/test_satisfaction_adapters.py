"""Satisfaction on every adapter (memory, SQLite, Redis, Redis Cluster, PostgreSQL): the chat
end stores the end prompt and the invitation's prompt in one unit, in that order; the reminder
timer is scheduled with the invitation, fires once, and a rating cancels it; the customer's
last invitation time (``Customer.last_invited_at``) round-trips and an old record without it
reads as never invited."""

from __future__ import annotations

import json
import random

from chatmgmt import ChatManager, ChatSettings, MessageRole
from chatmgmt.lifecycle import reminder_key, satisfaction_of
from chatmgmt.model import ChatId, Customer, CustomerInfo
from chatmgmt.ports import Storage
from chatmgmt.storage._codec import decode, encode
from chatmgmt.testing import ManualClock, sequential_ids
from storage.test_offers_pull_adapters import make_agent, storage  # noqa: F401

SETTINGS = ChatSettings.from_dict(
    {
        "end_of_chat": {"end_prompt": "Bye"},
        "satisfaction": {
            "invite_prompt": "Rate us",
            "reminder_after_s": 600,
            "reminder_prompt": "Still there?",
            "min_interval_s": 3600,
        },
    }
)


def manager(storage: Storage, clock: ManualClock) -> ChatManager:  # noqa: F811
    return ChatManager(storage, SETTINGS, clock=clock, rng=random.Random(3), ids=sequential_ids())


def served(m: ChatManager, chat_id: str, pid: str) -> None:
    m.open_chat(CustomerInfo(partner_id=pid), chat_id=chat_id)
    m.send_message(chat_id, "Hello", role=MessageRole.AGENT, sender="ann")


def system_texts(storage: Storage, chat_id: str) -> list[str]:  # noqa: F811
    return [x.text for x in storage.chats.messages(ChatId(chat_id)) if x.role is MessageRole.SYSTEM]


def test_end_prompt_invitation_reminder_and_interval(storage: Storage) -> None:  # noqa: F811
    clock = ManualClock(1_000.0)
    m = manager(storage, clock)
    m.register_agent(make_agent("ann", groups=[""], limit=5, order=0))
    served(m, "c1", "u1")
    m.end_chat("c1")
    assert system_texts(storage, "c1") == ["Bye", "Rate us"]
    customer = storage.customers.get("u1")
    assert customer is not None and customer.last_invited_at == 1_000.0
    served(m, "c2", "u1")  # the same customer, within the interval: no invitation
    m.end_chat("c2")
    assert system_texts(storage, "c2") == ["Bye"]
    served(m, "c3", "u2")
    m.end_chat("c3")
    m.rate("c3", 5)  # rated: its reminder is cancelled in the rating's unit
    clock.advance(600)
    assert m.tick() == 1  # c1's reminder only
    assert system_texts(storage, "c1") == ["Bye", "Rate us", "Still there?"]
    assert system_texts(storage, "c3") == ["Bye", "Rate us"]
    stored = storage.chats.get(ChatId("c1"))
    assert stored is not None and satisfaction_of(stored).reminded_at == 1_600.0
    clock.advance(600)
    assert m.tick() == 0
    assert system_texts(storage, "c1").count("Still there?") == 1
    assert not storage.timers.claim_due(clock.now() + 10**6, 10, 1.0)  # nothing left pending
    assert reminder_key("c1").startswith("c1:")


def test_customer_last_invited_at_round_trips_and_old_records_read_as_never() -> None:
    customer = Customer("u", name="Zoë", last_invited_at=12.5)
    assert decode(encode(customer), Customer) == customer
    old = json.loads(encode(Customer("u", name="Zoë")))
    assert "last_invited_at" not in old  # stored exactly as before when never invited
    assert decode(json.dumps(old), Customer).last_invited_at is None
