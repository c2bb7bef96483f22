"""Issue 14 item 7 and the satisfaction part of item 6: the invitation's system message at chat
end, invitation rules per group and channel, the one reminder, the minimum interval between
invitations to one customer, and tags that skip or force the invitation."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from assignment.assign_helpers import agent, clock_of, customer, manager, sink_of
from chatmgmt import AsyncChatManager, ChatManager, EndReason, InvalidTransitionError, MessageRole
from chatmgmt.errors import RatingRefusedError, SettingsError
from chatmgmt.lifecycle import reminder_key, satisfaction_of
from chatmgmt.settings import ChatSettings
from chatmgmt.storage import MemoryStorage
from chatmgmt.storage.sqlite import SQLiteStorage
from chatmgmt.testing import ManualClock, RecordingEventSink


def settings(**satisfaction: Any) -> dict[str, Any]:
    return {"satisfaction": satisfaction}


def served(m: ChatManager, pid: str | None = "u", *, group: str | None = None, **info: Any) -> str:
    """A chat held by an agent who replied; returns its id."""
    if not m.storage.agents.list():
        m.register_agent(agent("ann", limit=10, groups=("sales", "support")))
    chat = m.open_chat(customer(pid, **info), skill_group=group or "")
    m.send_message(chat.id, "How can I help?", role=MessageRole.AGENT, sender="ann")
    return chat.id


def system_texts(m: ChatManager, chat_id: str) -> list[str]:
    return [x.text for x in m.messages(chat_id) if x.role is MessageRole.SYSTEM]


def invited(m: ChatManager, chat_id: str) -> int:
    return satisfaction_of(m.get_chat(chat_id)).invitations


# ---------------------------------------------------------------- the prompt at chat end


def test_chat_end_stores_the_end_prompt_then_the_invitation_in_one_unit() -> None:
    m = manager(
        {
            "end_of_chat": {"end_prompt": "Bye"},
            "satisfaction": {"invite_prompt": "Rate us"},
        }
    )
    cid = served(m)
    m.end_chat(cid)
    assert system_texts(m, cid) == ["Bye", "Rate us"]
    types = [e.type for e in sink_of(m).events if e.chat_id == cid]
    end = types.index("chat.ended")
    assert types[end:] == ["chat.ended", "message.system", "satisfaction.invited", "message.system"]
    texts = [e.data["text"] for e in sink_of(m).of_type("message.system")]
    assert texts == ["Bye", "Rate us"]
    ids = [x.id for x in m.messages(cid) if x.role is MessageRole.SYSTEM]
    assert len(set(ids)) == 2


def test_chat_end_without_end_prompt_stores_only_the_invitation() -> None:
    m = manager({"end_of_chat": {"end_prompt": ""}, "satisfaction": {"invite_prompt": "Rate"}})
    cid = served(m)
    m.end_chat(cid)
    assert system_texts(m, cid) == ["Rate"]


def test_chat_end_without_invitation_stores_no_invite_prompt() -> None:
    m = manager({"end_of_chat": {"end_prompt": "Bye"}, "satisfaction": {"invite_prompt": "R"}})
    cid = served(m)
    m.end_chat(cid, reason=EndReason.SYSTEM)  # not among invite_on_end_reasons
    assert system_texts(m, cid) == ["Bye"]
    assert not sink_of(m).of_type("satisfaction.invited")


def test_chat_end_and_invitation_land_together_on_sqlite() -> None:
    m = ChatManager(
        SQLiteStorage(":memory:"),
        ChatSettings.from_dict({"end_of_chat": {"end_prompt": "Bye"}}),
        clock=ManualClock(1000.0),
    )
    cid = served(m)
    m.end_chat(cid)
    assert system_texts(m, cid) == ["Bye", "How would you rate this chat?"]


# ---------------------------------------------------------------- rules per group and channel


def test_invitation_rules_resolve_channel_over_group_over_global() -> None:
    m = manager(
        settings(
            invite_prompt="global",
            group_rules={"support": {"invite_prompt": "support", "invite_on_end_reasons": []}},
            channels={"app": {"invite_prompt": "app", "invite_on_end_reasons": ["agent"]}},
        )
    )
    m.end_chat(plain := served(m))
    m.end_chat(sales := served(m, "v", group="sales"))
    m.end_chat(support := served(m, "w", group="support"))
    m.end_chat(app := served(m, "x", group="support", channel="app"))
    assert system_texts(m, plain)[-1] == "global"
    assert system_texts(m, sales)[-1] == "global"
    assert invited(m, support) == 0  # the group invites on no end reason
    assert system_texts(m, app)[-1] == "app"  # the channel's rules win over the group's


def test_group_rules_may_turn_satisfaction_off_for_rating_too() -> None:
    m = manager(settings(customer_initiated=True, group_rules={"sales": {"enabled": False}}))
    on = served(m)
    off = served(m, "v", group="sales")
    m.end_chat(on)
    m.end_chat(off)
    m.rate(on, 5)
    with pytest.raises(RatingRefusedError):
        m.rate(off, 5)
    with pytest.raises(InvalidTransitionError, match="invite:disabled"):
        m.invite_rating(off, by="ann")


@pytest.mark.parametrize(
    ("section", "path"),
    [
        ({"group_rules": {"g": {"scheme": {}}}}, "satisfaction.group_rules.g.scheme"),
        ({"channels": {"web": {"window_s": 5}}}, "satisfaction.channels.web.window_s"),
        (
            {"channels": {"web": {"max_invitations": 0}}},
            "satisfaction.channels.web.max_invitations",
        ),
        (
            {"group_rules": {"g": {"reminder_after_s": -1}}},
            "satisfaction.group_rules.g.reminder_after_s",
        ),
        (
            {"group_rules": {"g": {"skip_tags": [" vip"]}}},
            "satisfaction.group_rules.g.skip_tags[0]",
        ),
        ({"invite_tags": [""]}, "satisfaction.invite_tags[0]"),
        ({"min_interval_s": -5}, "satisfaction.min_interval_s"),
        ({"channels": {"web": "no"}}, "satisfaction.channels.web"),
    ],
)
def test_bad_invitation_rules_name_their_path(section: dict[str, Any], path: str) -> None:
    with pytest.raises(SettingsError) as info:
        ChatSettings.from_dict({"satisfaction": section})
    assert info.value.path == path


# ---------------------------------------------------------------- tags


def test_skip_tags_stop_every_invitation() -> None:
    m = manager(settings(skip_tags=["spam"], agent_may_invite=True, max_invitations=2))
    cid = served(m)
    m.tag_chat(cid, "spam", by="ann")
    with pytest.raises(InvalidTransitionError, match="invite:skip_tag"):
        m.invite_rating(cid, by="ann")
    m.end_chat(cid)
    assert invited(m, cid) == 0


def test_invite_tags_force_the_invitation_at_end_and_skip_tags_win() -> None:
    m = manager(settings(invite_tags=["survey"], skip_tags=["spam"]))
    m.register_agent(agent("ann", limit=10))
    silent = m.open_chat(customer("u")).id  # the agent never replied
    m.tag_chat(silent, "survey", by="ann")
    m.end_chat(silent, reason=EndReason.SYSTEM)  # not an invitation reason either
    assert invited(m, silent) == 1
    both = m.open_chat(customer("v")).id
    m.tag_chat(both, "survey", "spam", by="ann")
    m.end_chat(both)
    assert invited(m, both) == 0
    untagged = m.open_chat(customer("w")).id
    m.end_chat(untagged)
    assert invited(m, untagged) == 0  # skip_if_agent_never_replied, as before


# ---------------------------------------------------------------- the reminder


def test_one_reminder_after_an_unrated_invitation() -> None:
    m = manager(settings(reminder_after_s=600, reminder_prompt="Still time to rate"))
    cid = served(m)
    m.end_chat(cid)
    clock = clock_of(m)
    clock.advance(599)
    m.tick()
    assert "Still time to rate" not in system_texts(m, cid)
    clock.advance(1)
    m.tick()
    assert system_texts(m, cid)[-1] == "Still time to rate"
    reminded = sink_of(m).of_type("satisfaction.reminded")
    assert [e.data["agent_id"] for e in reminded] == ["ann"]
    assert satisfaction_of(m.get_chat(cid)).reminded_at == clock.now()
    clock.advance(3600)
    m.tick()
    assert system_texts(m, cid).count("Still time to rate") == 1
    m.rate(cid, 4)  # still accepted after the reminder


def test_a_rating_cancels_the_reminder() -> None:
    m = manager(settings(reminder_after_s=600))
    cid = served(m)
    m.end_chat(cid)
    assert m.storage.timers.get(reminder_key(cid)) is not None  # type: ignore[attr-defined]
    m.rate(cid, 5)
    assert m.storage.timers.get(reminder_key(cid)) is None  # type: ignore[attr-defined]
    clock_of(m).advance(700)
    m.tick()
    assert not sink_of(m).of_type("satisfaction.reminded")


def test_agent_invitation_gets_a_reminder_too_and_none_once_the_window_closed() -> None:
    m = manager(settings(reminder_after_s=600, window_s=300, invite_on_end_reasons=[]))
    cid = served(m)
    m.invite_rating(cid, by="ann")
    m.end_chat(cid)
    clock_of(m).advance(600)  # the window closed 300 s after the end
    m.tick()
    assert not sink_of(m).of_type("satisfaction.reminded")
    active = served(m, "v")
    m.invite_rating(active, by="ann")
    clock_of(m).advance(600)
    m.tick()
    assert [e.chat_id for e in sink_of(m).of_type("satisfaction.reminded")] == [active]


def test_a_purged_chat_gets_no_reminder() -> None:
    m = manager(
        {
            "satisfaction": {"reminder_after_s": 600},
            "retention": {"ended_chats_s": 60, "purge_on_tick": False},
        }
    )
    cid = served(m)
    m.end_chat(cid)
    clock_of(m).advance(100)
    assert m.purge() == 1
    clock_of(m).advance(600)
    assert m.tick() == 0
    assert not sink_of(m).of_type("satisfaction.reminded")
    assert m.storage.timers.get(reminder_key(cid)) is None  # type: ignore[attr-defined]


# ---------------------------------------------------------------- the customer interval


def test_min_interval_spaces_invitations_to_one_customer() -> None:
    m = manager(settings(min_interval_s=3600))
    first = served(m)
    m.end_chat(first)
    assert invited(m, first) == 1
    record = m.customer("u")
    assert record is not None and record.last_invited_at == clock_of(m).now()
    clock_of(m).advance(1800)
    second = served(m)
    m.end_chat(second)
    assert invited(m, second) == 0
    other = served(m, "v")  # another customer is not held back
    m.end_chat(other)
    assert invited(m, other) == 1
    with pytest.raises(InvalidTransitionError, match="invite:min_interval"):
        m.invite_rating(served(m), by="ann")
    clock_of(m).advance(1800)
    third = served(m)
    m.end_chat(third)
    assert invited(m, third) == 1


def test_min_interval_needs_a_crm_record() -> None:
    m = manager({"satisfaction": {"min_interval_s": 3600}, "auto_save": {"enabled": False}})
    first, second = served(m), served(m)
    m.end_chat(first)
    m.end_chat(second)
    assert (invited(m, first), invited(m, second)) == (1, 1)
    anonymous = served(m, None)
    m.end_chat(anonymous)
    assert invited(m, anonymous) == 1


def test_min_interval_per_group_and_forced_by_tags() -> None:
    m = manager(settings(group_rules={"sales": {"min_interval_s": 3600}}, invite_tags=["survey"]))
    m.end_chat(served(m, group="sales"))
    again = served(m, group="sales")
    m.end_chat(again)
    assert invited(m, again) == 0
    elsewhere = served(m, group="support")  # no interval in that group
    m.end_chat(elsewhere)
    assert invited(m, elsewhere) == 1
    forced = served(m, group="sales")
    m.tag_chat(forced, "survey", by="ann")
    m.end_chat(forced)
    assert invited(m, forced) == 1


# ---------------------------------------------------------------- Always On reopen, async


def test_a_reopened_conversation_gets_its_own_invitation_and_reminder() -> None:
    m = manager(
        {
            "reception_mode": "always_on",
            "satisfaction": {"reminder_after_s": 600, "reminder_prompt": "Remind"},
        }
    )
    cid = served(m)
    m.end_chat(cid)
    clock_of(m).advance(600)
    m.tick()  # the first period's reminder
    m.reopen(cid, to="last_agent", by="admin")
    assert satisfaction_of(m.get_chat(cid)).reminded_at is None  # a new period
    m.send_message(cid, "More help", role=MessageRole.AGENT, sender="ann")
    m.end_chat(cid)
    assert satisfaction_of(m.get_chat(cid)).invitations == 1
    clock_of(m).advance(600)
    m.tick()
    assert system_texts(m, cid).count("Remind") == 2


def test_an_old_reminder_does_not_fire_into_a_reopened_conversation() -> None:
    m = manager({"reception_mode": "always_on", "satisfaction": {"reminder_after_s": 600}})
    cid = served(m)
    m.end_chat(cid)
    m.reopen(cid, to="last_agent", by="admin")  # before the reminder was due
    clock_of(m).advance(600)
    m.tick()
    assert not sink_of(m).of_type("satisfaction.reminded")


def test_the_async_manager_invites_reminds_and_spaces_invitations() -> None:
    async def main() -> None:
        m = AsyncChatManager(
            MemoryStorage().aio(),
            ChatSettings.from_dict(
                settings(invite_prompt="Rate", reminder_after_s=60, min_interval_s=3600)
            ),
            clock=ManualClock(10.0),
            rng=random.Random(1),
            event_sink=RecordingEventSink(),
        )
        await m.register_agent(agent("ann", limit=5))
        ids = []
        for _ in range(2):
            chat = await m.open_chat(customer("u"))
            await m.send_message(chat.id, "Hi", role=MessageRole.AGENT, sender="ann")
            await m.end_chat(chat.id)
            ids.append(chat.id)
        await m.tick(now=80.0)
        first = [x.text for x in await m.messages(ids[0]) if x.role is MessageRole.SYSTEM]
        second = [x.text for x in await m.messages(ids[1]) if x.role is MessageRole.SYSTEM]
        assert first[1:] == ["Rate", "You can still rate this chat: how did we do?"]
        assert "Rate" not in second  # the same customer, within the interval

    asyncio.run(main())
