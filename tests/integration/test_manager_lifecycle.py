"""The manager's lifecycle: end prompts, inactivity, reminders, leave a message, satisfaction."""

from __future__ import annotations

import pytest

from assignment.assign_helpers import agent, clock_of, customer, manager, sink_of
from chatmgmt import AgentStatus, ChatState, EndReason, InvalidTransitionError, MessageRole
from chatmgmt.errors import FormValidationError, RatingRefusedError
from chatmgmt.testing import RecordingMessageSink


def test_end_of_chat_records_who_and_why_and_stores_the_prompt() -> None:
    prompts = RecordingMessageSink()
    m = manager(
        {"end_of_chat": {"end_prompt": "Bye!", "channels": {"app": {"end_prompt": "App bye"}}}},
        message_sink=prompts,
    )
    m.register_agent(agent("ann"))
    web = m.open_chat(customer("u1"))
    app = m.open_chat(customer("u2", channel="app"))
    ended = m.end_chat(web.id, reason=EndReason.CUSTOMER, by="u1")
    assert (ended.state, ended.end_reason, ended.ended_by) == (
        ChatState.ENDED,
        EndReason.CUSTOMER,
        "u1",
    )
    m.end_chat(app.id, reason=EndReason.AGENT, by="ann")
    assert [msg.text for msg in prompts.messages] == ["Bye!", "App bye"]
    assert m.messages(web.id)[-1].role is MessageRole.SYSTEM
    assert sink_of(m).of_type("chat.ended")[0].data["end_reason"] == "customer"
    assert m.agent("ann").active == 0


def test_end_prompts_resolve_channel_over_group_over_global() -> None:
    prompts = RecordingMessageSink()
    m = manager(
        {
            "end_of_chat": {
                "end_prompt": "Bye!",
                "warn_after_s": 60,
                "end_after_s": 120,
                "groups": {
                    "sales": {"end_prompt": "Sales bye", "warn_prompt": "Sales: still there?"},
                    "vip": {"timeout_prompt": "VIP closed.", "end_after_s": 300},
                },
                "channels": {"app": {"end_prompt": "App bye"}},
            }
        },
        message_sink=prompts,
    )
    m.register_agent(agent("ann", limit=9, groups=("sales", "vip")))
    plain = m.open_chat(customer("u1"))
    sales = m.open_chat(customer("u2"), skill_group="sales")
    sales_app = m.open_chat(customer("u3", channel="app"), skill_group="sales")
    vip = m.open_chat(customer("u4"), skill_group="vip")
    for chat, who in ((plain, "u1"), (sales, "u2"), (sales_app, "u3")):
        m.end_chat(chat.id, reason=EndReason.CUSTOMER, by=who)
    # stored in each chat, not only handed to the sink
    assert [m.messages(c.id)[-1].text for c in (plain, sales, sales_app)] == [
        "Bye!",
        "Sales bye",
        "App bye",  # the channel wins over the group
    ]
    clock_of(m).advance(60)
    assert m.tick() == 1  # vip's warning (its group keeps the global warn prompt)
    assert m.messages(vip.id)[-1].text == (
        "Are you still there? This chat will close soon if we do not hear from you."
    )
    clock_of(m).advance(60)
    assert m.tick() == 0  # the group's end_after_s (300), not the global 120
    clock_of(m).advance(180)
    assert m.tick() == 1
    ended = m.get_chat(vip.id)
    assert ended.end_reason is EndReason.CUSTOMER_INACTIVITY
    assert m.messages(vip.id)[-1].text == "VIP closed."


def test_group_inactivity_warning_prompt() -> None:
    m = manager(
        {
            "end_of_chat": {
                "warn_after_s": 60,
                "end_after_s": 0,
                "groups": {"sales": {"warn_prompt": "Sales: still there?"}},
            }
        }
    )
    m.register_agent(agent("ann", groups=("sales",)))
    chat = m.open_chat(customer("u"), skill_group="sales")
    clock_of(m).advance(60)
    assert m.tick() == 1
    assert m.messages(chat.id)[-1].text == "Sales: still there?"
    assert sink_of(m).of_type("chat.inactivity_warned")


def test_inactivity_warns_then_ends_and_a_customer_message_resets_both() -> None:
    m = manager(
        {"end_of_chat": {"warn_after_s": 60, "end_after_s": 120, "timeout_prompt": "Closed."}}
    )
    m.register_agent(agent("ann"))
    chat = m.open_chat(customer("u"))
    clock_of(m).advance(59)
    assert m.tick() == 0
    clock_of(m).advance(1)
    assert m.tick() == 1  # the warning
    assert sink_of(m).of_type("chat.inactivity_warned")
    clock_of(m).advance(30)
    m.send_message(chat.id, "still here", sender="u")  # resets both deadlines
    clock_of(m).advance(59)
    assert m.tick() == 0
    clock_of(m).advance(1)
    assert m.tick() == 1  # warned again
    clock_of(m).advance(60)
    assert m.tick() == 1  # and ended
    ended = m.get_chat(chat.id)
    assert ended.state is ChatState.ENDED and ended.end_reason is EndReason.CUSTOMER_INACTIVITY
    assert m.messages(chat.id)[-1].text == "Closed."
    kinds = [
        e.type for e in sink_of(m).events if e.type in ("chat.inactivity_warned", "chat.ended")
    ]
    assert kinds == ["chat.inactivity_warned", "chat.inactivity_warned", "chat.ended"]


def test_always_on_chats_never_time_out_and_reopen() -> None:
    m = manager(
        {"reception_mode": "always_on", "end_of_chat": {"warn_after_s": 1, "end_after_s": 2}}
    )
    m.register_agent(agent("ann"))
    chat = m.open_chat(customer("u"))
    clock_of(m).advance(10_000)
    assert m.tick() == 0
    assert m.get_chat(chat.id).state is ChatState.ACTIVE
    m.end_chat(chat.id)
    m.send_message(chat.id, "one more question", sender="u")
    reopened = m.get_chat(chat.id)
    assert reopened.state is ChatState.ACTIVE and reopened.agent_id == "ann"
    assert sink_of(m).of_type("chat.reopened")


def test_agent_no_reply_reminder() -> None:
    m = manager({"end_of_chat": {"agent_reminder_s": 30, "warn_after_s": 0, "end_after_s": 0}})
    m.register_agent(agent("ann"))
    chat = m.open_chat(customer("u"))
    m.send_message(chat.id, "hello?", sender="u")
    clock_of(m).advance(30)
    assert m.tick() == 1
    assert sink_of(m).of_type("chat.agent_reminded")[0].data["agent_id"] == "ann"
    clock_of(m).advance(300)
    assert m.tick() == 0  # once per unanswered message


def test_leave_a_message_offered_validated_pooled_assigned_replied_and_sticky() -> None:
    m = manager({"assignment": {"sticky": {"after_offline_message_s": 3600}}})
    m.register_agent(agent("ann", status=AgentStatus.OFFLINE))
    chat = m.open_chat(customer("u", name="Ada"))
    status = m.queue_status(chat.id)
    assert status is not None and status.leave_message == "no_agent_online"
    with pytest.raises(FormValidationError) as bad:
        m.submit_message(chat.id, {"email": "not-an-email", "message": ""})
    assert set(bad.value.fields) == {"email", "message"}
    left = m.submit_message(chat.id, {"email": "ada@example.com", "message": "Call me"})
    assert left.state is ChatState.LEFT_MESSAGE and left.agent_id is None
    created = sink_of(m).of_type("offline_message.created")[0]
    assert created.data["fields"]["email"] == "ada@example.com"
    m.set_agent_status("ann", AgentStatus.ONLINE)  # comes online: the message is handed out
    assert m.get_chat(chat.id).agent_id == "ann"
    assert m.agent("ann").active == 0  # a left message holds no live slot
    m.reply_offline_message(chat.id, "ann", "We will call you at 5.")
    assert sink_of(m).of_type("offline_message.replied")
    m.register_agent(agent("bob", order=-1))
    again = m.open_chat(customer("u"))
    assert again.agent_id == "ann" and again.route_reason["via"] == "sticky"


def test_leave_a_message_does_not_exist_in_always_on_mode() -> None:
    m = manager({"reception_mode": "always_on"})
    chat = m.open_chat(customer("u"))
    assert m.queue_status(chat.id) is not None
    assert m.queue_status(chat.id).leave_message is None  # type: ignore[union-attr]
    with pytest.raises(InvalidTransitionError):
        m.submit_message(chat.id, {"email": "a@b.co", "message": "x"})


def satisfied(**overrides: object) -> dict[str, object]:
    return {"satisfaction": {"skip_if_agent_never_replied": True, **overrides}}


def served_chat(m, reply: bool = True):  # type: ignore[no-untyped-def]
    m.register_agent(agent("ann"))
    chat = m.open_chat(customer("u"))
    if reply:
        m.send_message(chat.id, "How can I help?", role=MessageRole.AGENT, sender="ann")
    return chat


def test_satisfaction_invited_at_end_rated_once_and_attributed_to_last_agent() -> None:
    m = manager(satisfied())
    chat = served_chat(m)
    m.end_chat(chat.id)
    invited = sink_of(m).of_type("satisfaction.invited")
    assert invited and invited[0].data["agent_id"] == "ann"
    m.rate(chat.id, 5, tags=[], comment="great", resolved=True)
    submitted = sink_of(m).of_type("satisfaction.submitted")[0]
    assert (submitted.data["level"], submitted.data["agent_id"]) == (5, "ann")
    with pytest.raises(RatingRefusedError, match="already rated"):
        m.rate(chat.id, 1)


def test_second_rating_overwrites_when_set() -> None:
    m = manager(satisfied(second_rating="overwrite"))
    chat = served_chat(m)
    m.end_chat(chat.id)
    m.rate(chat.id, 5)
    m.rate(chat.id, 2, comment="changed my mind")
    last = sink_of(m).of_type("satisfaction.submitted")[-1]
    assert last.data["level"] == 2 and last.data["overwritten"] is True


def test_no_invitation_when_the_agent_never_replied() -> None:
    m = manager(satisfied())
    chat = served_chat(m, reply=False)
    m.end_chat(chat.id)
    assert not sink_of(m).of_type("satisfaction.invited")
    with pytest.raises(RatingRefusedError):
        m.rate(chat.id, 4)


def test_agent_invites_and_the_agent_view_hides_the_rating_when_not_visible() -> None:
    m = manager(satisfied(visible_to_agent=False, invite_on_end_reasons=[]))
    chat = served_chat(m)
    m.invite_rating(chat.id, by="ann")
    m.rate(chat.id, 4)
    assert m.get_chat(chat.id).satisfaction["rating"]["level"] == 4
    assert m.agent_view(chat.id).satisfaction["rating"] is None


def test_agent_invitation_stores_the_invite_prompt_as_a_system_message() -> None:
    m = manager(satisfied(invite_on_end_reasons=[], invite_prompt="Rate us, please"))
    chat = served_chat(m)
    m.invite_rating(chat.id, by="ann")
    prompts = [x for x in m.messages(chat.id) if x.role.value == "system"]
    assert [x.text for x in prompts] == ["Rate us, please"]
    stored = [e.data["text"] for e in sink_of(m).of_type("message.system")]
    assert "Rate us, please" in stored


def test_agent_invitation_sends_no_message_when_the_prompt_is_empty() -> None:
    m = manager(satisfied(invite_on_end_reasons=[], invite_prompt=""))
    chat = served_chat(m)
    m.invite_rating(chat.id, by="ann")
    assert not [x for x in m.messages(chat.id) if x.role.value == "system"]
    assert sink_of(m).of_type("satisfaction.invited")
