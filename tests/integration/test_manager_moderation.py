"""Sensitive words through the manager: block, mask, warn, monitoring events, alerts."""

from __future__ import annotations

import json

import pytest

from assignment.assign_helpers import agent, customer, manager, sink_of
from chatmgmt import MessageRole
from chatmgmt.errors import MessageBlockedError
from chatmgmt.moderation import SensitiveWordFilter

WORDS = {
    "sensitive_words": {
        "customer": [
            {"word": "idiot", "category": "abuse", "action": "mask"},
            {"word": "bomb", "category": "threat", "action": "block"},
        ],
        "agent": [{"word": "wechat", "category": "contact-info", "action": "warn"}],
        "block_prompt": "Please keep it civil.",
        "alert_hits": 2,
        "alert_window_s": 60,
    }
}


def setup(extra: dict[str, object] | None = None):  # type: ignore[no-untyped-def]
    settings = json.loads(json.dumps(WORDS))
    settings["sensitive_words"].update(extra or {})
    m = manager(settings)
    m.register_agent(agent("ann"))
    chat = m.open_chat(customer("u"))
    return m, chat


def outbox_text(m) -> str:  # type: ignore[no-untyped-def]
    return json.dumps([e.envelope() for e in m.storage.outbox.events()])


def test_mask_stores_and_forwards_only_the_masked_text() -> None:
    m, chat = setup()
    message = m.send_message(chat.id, "you i.d.i.o.t", sender="u")
    assert message.text == "you *********"
    assert m.messages(chat.id)[-1].text == "you *********"
    hit = sink_of(m).of_type("moderation.hit")[0]
    assert hit.data["words"] == ["idiot"] and hit.data["action"] == "mask"
    assert hit.data["original_text"] is None
    assert "i.d.i.o.t" not in outbox_text(m)


def test_block_never_stores_or_forwards_the_text() -> None:
    m, chat = setup()
    with pytest.raises(MessageBlockedError) as blocked:
        m.send_message(chat.id, "I have a b o m b", sender="u")
    assert blocked.value.prompt == "Please keep it civil."
    assert all("b o m b" not in msg.text for msg in m.messages(chat.id))
    assert "b o m b" not in outbox_text(m)
    assert sink_of(m).of_type("moderation.hit")[0].data["action"] == "block"
    assert not sink_of(m).of_type("message.customer")


def test_original_text_reaches_webhooks_only_when_allowed() -> None:
    m, chat = setup({"original_in_webhooks": True})
    m.send_message(chat.id, "you idiot", sender="u")
    assert sink_of(m).of_type("moderation.hit")[0].data["original_text"] == "you idiot"


def test_agent_list_applies_to_agents_only_and_warn_delivers_unchanged() -> None:
    m, chat = setup()
    customer_msg = m.send_message(chat.id, "my wechat is x", sender="u")
    assert not sink_of(m).of_type("moderation.hit")
    agent_msg = m.send_message(chat.id, "add my wechat", role=MessageRole.AGENT, sender="ann")
    assert agent_msg.text == "add my wechat" and "warn" in agent_msg.flags
    assert customer_msg.text == "my wechat is x"
    assert sink_of(m).of_type("moderation.hit")[0].data["role"] == "agent"


def test_supervisor_alert_after_n_hits_within_the_window() -> None:
    m, chat = setup()
    m.send_message(chat.id, "idiot", sender="u")
    assert not sink_of(m).of_type("moderation.alert")
    m.send_message(chat.id, "idiot again", sender="u")
    alerts = sink_of(m).of_type("moderation.alert")
    assert len(alerts) == 1 and alerts[0].data["hits"] == 2


def test_reloading_words_swaps_the_filter() -> None:
    m, chat = setup()
    assert m.send_message(chat.id, "darn", sender="u").text == "darn"
    m.reload_words(SensitiveWordFilter(customer=[("darn", "mild", "mask")]))
    assert m.send_message(chat.id, "darn", sender="u").text == "****"
