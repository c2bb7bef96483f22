"""Tags added and removed during a chat: stored on the chat, events, validation, routing."""

from __future__ import annotations

import asyncio

import pytest

from assignment.assign_helpers import agent, customer, manager, sink_of
from chatmgmt import AsyncChatManager, ChatSettings, NotFoundError
from chatmgmt.assignment import RouteRequest, match_rule, plan_route
from chatmgmt.errors import ValidationError
from chatmgmt.model import Chat, ChatId, CustomerInfo
from chatmgmt.settings import RoutingRule
from chatmgmt.testing import ManualClock, sequential_ids


def test_tag_and_untag_store_the_tags_with_their_events() -> None:
    m = manager()
    chat = m.open_chat(customer("u"))
    tagged = m.tag_chat(chat.id, "billing", "vip", by="ann")
    assert tagged.tags == {"billing", "vip"} and tagged.version == chat.version + 1
    assert m.get_chat(chat.id).tags == {"billing", "vip"}
    (event,) = sink_of(m).of_type("chat.tagged")
    assert event.data["tags"] == ["billing", "vip"] and event.data["by"] == "ann"
    assert event.data["all_tags"] == ["billing", "vip"] and event.chat_id == chat.id
    untagged = m.untag_chat(chat.id, "vip", "absent", by="bob")
    assert untagged.tags == {"billing"}
    (gone,) = sink_of(m).of_type("chat.untagged")
    assert gone.data["tags"] == ["vip"] and gone.data["all_tags"] == ["billing"]


def test_a_call_that_changes_nothing_commits_nothing() -> None:
    m = manager()
    chat = m.open_chat(customer("u"))
    once = m.tag_chat(chat.id, "a", by="ann")
    again = m.tag_chat(chat.id, "a", by="ann")
    assert again.version == once.version
    assert len(sink_of(m).of_type("chat.tagged")) == 1
    assert m.untag_chat(chat.id, "b", by="ann").version == once.version
    assert not sink_of(m).of_type("chat.untagged")


def test_an_ended_chat_can_be_tagged() -> None:
    m = manager()
    m.register_agent(agent("ann"))
    chat = m.open_chat(customer("u"))
    m.end_chat(chat.id)
    assert m.tag_chat(chat.id, "reviewed", by="sup").tags == {"reviewed"}


@pytest.mark.parametrize(
    ("tags", "where"),
    [((), "tags:"), (("ok", ""), "tags[1]"), ((" x",), "tags[0]"), (("y" * 101,), "tags[0]")],
)
def test_bad_tags_raise_a_validation_error_naming_the_tag(
    tags: tuple[str, ...], where: str
) -> None:
    m = manager()
    chat = m.open_chat(customer("u"))
    with pytest.raises(ValidationError, match=where.replace("[", r"\[").replace("]", r"\]")):
        m.tag_chat(chat.id, *tags, by="ann")
    assert m.get_chat(chat.id).version == chat.version


def test_a_non_string_tag_is_refused() -> None:
    m = manager()
    chat = m.open_chat(customer("u"))
    with pytest.raises(ValidationError, match=r"tags\[0\]: must be a string"):
        m.tag_chat(chat.id, 3, by="ann")  # type: ignore[arg-type]


def test_tagging_an_unknown_chat_is_not_found() -> None:
    with pytest.raises(NotFoundError):
        manager().tag_chat("nope", "a", by="ann")


def test_routing_rules_see_the_chats_own_tags() -> None:
    rule = RoutingRule(name="vip", target_group="vip", when={"tags": {"any": ["vip"]}})
    info = CustomerInfo(name="u")
    assert match_rule(rule, info, None, tags=frozenset({"vip"}))
    assert not match_rule(rule, info, None, tags=frozenset({"other"}))
    assert match_rule(rule, info, None, attributes={"tags": ["vip"]})  # the host's still count
    settings = ChatSettings.from_dict(
        {
            "assignment": {
                "routing_rules": [
                    {"name": "vip", "target_group": "vip", "when": {"tags": {"any": ["vip"]}}}
                ]
            }
        }
    ).assignment
    chat = Chat(ChatId("c"), info, "web", skill_group="g", tags=frozenset({"vip"}))
    routed = plan_route(chat, RouteRequest(), settings, None, None, 0.0)
    assert [(t.id, t.rule) for t in routed.targets if t.via == "rule"] == [("vip", "vip")]
    plain = plan_route(
        Chat(ChatId("d"), info, "web", skill_group="g"), RouteRequest(), settings, None, None, 0.0
    )
    assert not [t for t in plain.targets if t.via == "rule"]


def test_the_async_manager_tags_through_the_same_core() -> None:
    async def run() -> frozenset[str]:
        m = AsyncChatManager(None, clock=ManualClock(10.0), ids=sequential_ids())
        chat = await m.open_chat(CustomerInfo(name="u"))
        await m.tag_chat(chat.id, "a", "b", by="ann")
        await m.untag_chat(chat.id, "a", by="ann")
        return (await m.get_chat(chat.id)).tags

    assert asyncio.run(run()) == {"b"}
