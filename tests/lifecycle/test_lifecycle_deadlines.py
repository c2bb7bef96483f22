"""Deadlines: what is planned, when it is due, and when it is stale."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatmgmt.errors import ValidationError
from chatmgmt.lifecycle import (
    ESCALATION_KEY,
    QUEUED_AT_KEY,
    ChatEvent,
    Escalation,
    TimerKind,
    is_stale,
    mark_fired,
    plan_timers,
    timer_basis,
    timer_key,
    track,
)
from chatmgmt.model import (
    AgentId,
    Chat,
    ChatId,
    ChatState,
    CustomerInfo,
    ReceptionMode,
    Timer,
)
from chatmgmt.settings import AssignmentSettings, EndOfChatSettings, QueueSettings

K = TimerKind
EOC = EndOfChatSettings(warn_after_s=300, end_after_s=600, agent_reminder_s=60)
ASG = AssignmentSettings(
    auto_transfer_s=20, max_auto_transfers=2, queue=QueueSettings(max_wait_s=120)
)


def chat(**kw: Any) -> Chat:
    base: dict[str, Any] = {
        "id": ChatId("c1"),
        "customer": CustomerInfo(),
        "channel": "web",
        "state": ChatState.ACTIVE,
        "agent_id": AgentId("a1"),
        "created_at": 0.0,
        "assigned_at": 10.0,
        "version": 3,
    }
    base.update(kw)
    return Chat(**base)


def plan(c: Chat, eoc: EndOfChatSettings = EOC, asg: AssignmentSettings = ASG) -> dict[K, Timer]:
    p = plan_timers(c, end_of_chat=eoc, assignment=asg)
    out = {K(t.kind): t for t in p.schedule}
    assert set(p.cancel) | {t.key for t in p.schedule} == {timer_key(c.id, k) for k in K}
    assert not set(p.cancel) & {t.key for t in p.schedule}
    return out


def due(c: Chat, **kw: Any) -> dict[K, float]:
    return {k: t.due_at for k, t in plan(c, **kw).items()}


# --------------------------------------------------------------------------- planning


def test_timer_keys_are_deterministic() -> None:
    assert timer_key("c1", K.INACTIVITY_WARN) == "c1:inactivity_warn"
    timers = plan(chat(last_customer_message_at=100.0))
    for kind, t in timers.items():
        assert t.key == f"c1:{kind.value}" and t.chat_id == "c1" and t.version == 3
        json.dumps(dict(t.payload))  # JSON-ready


def test_inactivity_counts_from_the_customers_last_message() -> None:
    c = chat(last_customer_message_at=100.0, last_agent_message_at=120.0)
    d = due(c)
    assert d[K.INACTIVITY_WARN] == 400.0
    assert d[K.INACTIVITY_END] == 700.0
    assert K.AGENT_REMINDER not in d  # answered
    assert K.AUTO_TRANSFER not in d  # the agent wrote after assignment
    assert K.QUEUE_TIMEOUT not in d


def test_inactivity_never_counts_time_before_the_assignment() -> None:
    # The customer wrote at 5, waited in the queue, got an agent at 10.
    d = due(chat(last_customer_message_at=5.0))
    assert d[K.INACTIVITY_WARN] == 310.0 and d[K.INACTIVITY_END] == 610.0
    d = due(chat(last_customer_message_at=None))
    assert d[K.INACTIVITY_WARN] == 310.0


# settings._apply structures an override with ``attrs.fields_dict(...)[key].type``, which is the
# *string* "float" under ``from __future__ import annotations``: every override raises today.


def test_inactivity_per_channel_and_off() -> None:
    eoc = EndOfChatSettings(
        warn_after_s=300,
        end_after_s=600,
        channels={"app": {"warn_after_s": 0, "end_after_s": 900}},
    )
    d = due(chat(channel="app", last_customer_message_at=100.0), eoc=eoc)
    assert K.INACTIVITY_WARN not in d and d[K.INACTIVITY_END] == 1000.0
    d = due(chat(channel="web", last_customer_message_at=100.0), eoc=eoc)
    assert d[K.INACTIVITY_WARN] == 400.0


def test_inactivity_off() -> None:
    off = EndOfChatSettings(warn_after_s=0, end_after_s=0)
    assert not {K.INACTIVITY_WARN, K.INACTIVITY_END} & set(due(chat(), eoc=off))


def test_agent_reminder_while_the_customer_waits_for_a_reply() -> None:
    c = chat(last_customer_message_at=100.0, last_agent_message_at=50.0)
    assert due(c)[K.AGENT_REMINDER] == 160.0
    assert K.AGENT_REMINDER not in due(chat(last_customer_message_at=None))
    no = EndOfChatSettings(agent_reminder_s=0)
    assert K.AGENT_REMINDER not in due(c, eoc=no)


def test_auto_transfer_is_cumulative_against_the_round() -> None:
    # Assigned at 10, moved by hand at 18 (assigned_at changes, the round stays): due at 30.
    c = chat(assigned_at=18.0, escalation={"since": 10.0, "transfers": 0})
    assert due(c)[K.AUTO_TRANSFER] == 30.0
    # After one automatic transfer the next agent must answer by since + 2 * step.
    c = chat(assigned_at=30.0, escalation={"since": 10.0, "transfers": 1})
    assert due(c)[K.AUTO_TRANSFER] == 50.0
    # max_auto_transfers reached: no more.
    c = chat(assigned_at=50.0, escalation={"since": 10.0, "transfers": 2})
    assert K.AUTO_TRANSFER not in due(c)
    # Without bookkeeping the round starts at the assignment.
    assert due(chat())[K.AUTO_TRANSFER] == 30.0
    assert K.AUTO_TRANSFER not in due(chat(), asg=AssignmentSettings())


def test_queue_timeout() -> None:
    q = chat(state=ChatState.QUEUED, agent_id=None, assigned_at=None, created_at=7.0)
    assert due(q) == {K.QUEUE_TIMEOUT: 127.0}
    q2 = attrs.evolve(q, queued_at=50.0)
    assert due(q2) == {K.QUEUE_TIMEOUT: 170.0}
    assert due(q, asg=AssignmentSettings()) == {}


@pytest.mark.parametrize("state", [ChatState.ENDED, ChatState.LEFT_MESSAGE, ChatState.ABANDONED])
def test_closed_chats_have_no_deadlines(state: ChatState) -> None:
    assert due(chat(state=state, last_customer_message_at=100.0)) == {}


@pytest.mark.parametrize("state", [ChatState.UNASSIGNED, ChatState.ACTIVE, ChatState.ENDED])
def test_always_on_chats_never_time_out(state: ChatState) -> None:
    c = chat(mode=ReceptionMode.ALWAYS_ON, state=state, last_customer_message_at=100.0)
    assert due(c) == {}
    for kind in K:
        if kind is K.INACTIVITY_RELEASE and state is ChatState.ACTIVE:
            continue  # no timeout: it frees capacity in both modes (test_hold_deadlines.py)
        assert timer_basis(kind, c) is None


# --------------------------------------------------------------------------- staleness


def test_a_customer_message_makes_inactivity_timers_stale() -> None:
    c = chat(last_customer_message_at=100.0)
    timers = plan(c)
    assert not any(is_stale(t, c) for t in timers.values())
    later = attrs.evolve(c, last_customer_message_at=350.0, version=4)
    assert is_stale(timers[K.INACTIVITY_WARN], later)
    assert is_stale(timers[K.INACTIVITY_END], later)
    # A change that does not touch the basis (version bump, system message) keeps them.
    bumped = attrs.evolve(c, version=9, updated_at=200.0)
    assert not is_stale(timers[K.INACTIVITY_WARN], bumped)


def test_agent_reply_makes_reminder_and_auto_transfer_stale() -> None:
    c = chat(last_customer_message_at=100.0)
    timers = plan(c)
    replied = attrs.evolve(c, last_agent_message_at=110.0, agent_replied=True)
    assert is_stale(timers[K.AGENT_REMINDER], replied)
    assert is_stale(timers[K.AUTO_TRANSFER], replied)
    assert not is_stale(timers[K.INACTIVITY_END], replied)


def test_transfer_and_end_make_timers_stale() -> None:
    c = chat(last_customer_message_at=100.0)
    timers = plan(c)
    moved = attrs.evolve(c, agent_id=AgentId("a2"), assigned_at=150.0)
    assert all(is_stale(t, moved) for t in timers.values())
    ended = attrs.evolve(c, state=ChatState.ENDED)
    assert all(is_stale(t, ended) for t in timers.values())
    assert all(is_stale(t, None) for t in timers.values())
    other = attrs.evolve(c, id=ChatId("c2"))
    assert all(is_stale(t, other) for t in timers.values())


def test_unknown_kind_and_bad_payload_are_stale() -> None:
    c = chat()
    assert is_stale(Timer("c1:x", 1.0, "c1", "nope"), c)
    assert is_stale(Timer("c1:inactivity_end", 1.0, "c1", "inactivity_end"), c)


def test_payload_survives_a_json_round_trip() -> None:
    c = chat(last_customer_message_at=100.123456789)
    for t in plan(c).values():
        back = attrs.evolve(t, payload=json.loads(json.dumps(dict(t.payload))))
        assert not is_stale(back, c)


def test_mark_fired_stops_refiring_until_the_basis_changes() -> None:
    c = chat(last_customer_message_at=100.0)
    warn = plan(c)[K.INACTIVITY_WARN]
    fired = attrs.evolve(c, **mark_fired(c, warn), version=4)
    assert fired.timers_fired
    json.dumps(dict(fired.timers_fired))
    assert is_stale(warn, fired)  # a second worker with the same lease sees it fired
    again = plan(fired)
    assert K.INACTIVITY_WARN not in again and K.INACTIVITY_END in again
    # The customer writes: the warning is planned again for the new silence.
    spoke = attrs.evolve(fired, last_customer_message_at=500.0)
    assert plan(spoke)[K.INACTIVITY_WARN].due_at == 800.0


# --------------------------------------------------------------------------- bookkeeping


def test_track() -> None:
    q = chat(state=ChatState.QUEUED, agent_id=None, assigned_at=None)
    a = track(q, ChatEvent.QUEUE, 5.0)
    assert a[QUEUED_AT_KEY] == 5.0
    q2 = attrs.evolve(q, **a)
    assert track(q2, ChatEvent.QUEUE, 9.0)[QUEUED_AT_KEY] == 5.0  # overflow keeps the wait
    a = track(q2, ChatEvent.ASSIGN, 12.0)
    assert a[QUEUED_AT_KEY] is None and a[ESCALATION_KEY] == {"since": 12.0, "transfers": 0}
    act = attrs.evolve(q2, state=ChatState.ACTIVE, **a)
    assert track(act, ChatEvent.TRANSFER, 20.0) == {}  # manual: the round is unchanged
    a2 = track(act, ChatEvent.TRANSFER, 32.0, automatic=True)
    assert a2[ESCALATION_KEY] == {"since": 12.0, "transfers": 1}
    act2 = attrs.evolve(act, **a2)
    a3 = track(act2, ChatEvent.REQUEUE, 40.0)
    assert a3[QUEUED_AT_KEY] == 40.0 and a3[ESCALATION_KEY] is None
    assert track(act2, ChatEvent.CUSTOMER_MESSAGE, 41.0) == {}
    for ev in (ChatEvent.END, ChatEvent.UNASSIGN, ChatEvent.ABANDON, ChatEvent.LEAVE_MESSAGE):
        out = track(act2, ev, 50.0)
        assert out == {QUEUED_AT_KEY: None, ESCALATION_KEY: None}


def test_escalation_round_trip_and_errors() -> None:
    e = Escalation(3.5, 2)
    assert Escalation.from_dict(json.loads(json.dumps(e.to_dict()))) == e
    for bad in ({}, {"since": "x"}, {"since": 1.0, "transfers": -1}, {"since": True}):
        with pytest.raises(ValidationError):
            Escalation.from_dict(bad)


# --------------------------------------------------------------------------- laws

times = st.floats(min_value=0, max_value=1e6, allow_nan=False)
opt_times = st.none() | times


@st.composite
def chats(draw: st.DrawFn) -> Chat:
    state = draw(st.sampled_from(list(ChatState)))
    mode = draw(st.sampled_from(list(ReceptionMode)))
    return chat(
        mode=mode,
        state=state,
        created_at=draw(times),
        assigned_at=draw(opt_times),
        last_customer_message_at=draw(opt_times),
        last_agent_message_at=draw(opt_times),
        agent_id=draw(st.sampled_from([None, AgentId("a1"), AgentId("a2")])),
    )


@given(chats())
def test_planned_timers_are_fresh_and_consistent(c: Chat) -> None:
    p = plan_timers(c, end_of_chat=EOC, assignment=ASG)
    for t in p.schedule:
        assert not is_stale(t, c)
        assert t.version == c.version
        assert list(t.payload["basis"]) == timer_basis(TimerKind(t.kind), c)
        assert not is_stale(attrs.evolve(t, payload=json.loads(json.dumps(dict(t.payload)))), c)
        fired = attrs.evolve(c, **mark_fired(c, t))
        assert is_stale(t, fired)
        assert t.key not in {
            x.key for x in plan_timers(fired, end_of_chat=EOC, assignment=ASG).schedule
        }
    kinds = {TimerKind(t.kind) for t in p.schedule}
    if c.mode is ReceptionMode.ALWAYS_ON or not c.state.is_open:
        assert kinds == set()
    if K.INACTIVITY_WARN in kinds:
        warn = next(t for t in p.schedule if t.kind == "inactivity_warn")
        end = next(t for t in p.schedule if t.kind == "inactivity_end")
        assert warn.due_at < end.due_at


@given(chats(), times)
def test_any_customer_message_resets_both_inactivity_deadlines(c: Chat, at: float) -> None:
    before = plan(c)
    newer = max(
        at, (c.last_customer_message_at or 0.0) + 1.0, (c.assigned_at or c.created_at) + 1.0
    )
    after = attrs.evolve(c, last_customer_message_at=newer)
    for kind in (K.INACTIVITY_WARN, K.INACTIVITY_END):
        if kind in before:
            assert is_stale(before[kind], after)
            assert plan(after)[kind].due_at > before[kind].due_at


@given(
    chat=st.from_type(Chat),
    warn=st.sampled_from([0.0, 60.0]),
    reminder=st.sampled_from([0.0, 30.0]),
    release=st.sampled_from([0.0, 90.0]),
    close=st.sampled_from([0.0, 300.0]),
)
def test_the_hot_path_plans_the_same_bases_as_timer_basis(
    chat: Chat, warn: float, reminder: float, release: float, close: float
) -> None:
    from chatmgmt.lifecycle import planned_timers, timer_basis
    from chatmgmt.settings import (
        AssignmentSettings,
        BotSettings,
        EndOfChatSettings,
        QueueSettings,
    )

    eoc = EndOfChatSettings(
        warn_after_s=warn,
        end_after_s=120.0,
        agent_reminder_s=reminder,
        inactive_after_s=release,
        hold_close_after_s=close,
    )
    assignment = AssignmentSettings(auto_transfer_s=20.0, queue=QueueSettings(max_wait_s=50.0))
    bot = BotSettings(end_after_s=90.0, handoff_after_s=300.0)
    planned = planned_timers(chat, end_of_chat=eoc, assignment=assignment, bot=bot)
    for timer in planned:
        assert list(timer.payload["basis"]) == timer_basis(TimerKind(timer.kind), chat)
    kinds = {t.kind for t in planned}
    expected = {
        k.value
        for k in TimerKind
        if timer_basis(k, chat) is not None
        and not (k is TimerKind.INACTIVITY_WARN and not warn)
        and not (k is TimerKind.AGENT_REMINDER and not reminder)
        and not (k is TimerKind.INACTIVITY_RELEASE and not release)
        and not (k is TimerKind.HOLD_CLOSE and not close)
    }
    assert kinds == expected
