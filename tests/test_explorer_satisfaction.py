"""Interleaving explorer and crash points for satisfaction (issue 14 item 7): the rating
reminder against a rating and a retention purge, the chat-end invitation (end prompt, then the
invitation's prompt, in one unit) against a customer's message, and the per-customer interval
against a second chat of the same customer ending at once. Every check reads the stored chat
records and messages."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from typing import Any

from chatmgmt import ChatManager, ChatSettings, MessageRole
from chatmgmt.lifecycle import reminder_key, satisfaction_of
from chatmgmt.model import Agent, AgentStatus, ChatId, ChatState, CustomerInfo
from chatmgmt.ports import Storage
from chatmgmt.testing import (
    ManualClock,
    Operation,
    crash_points,
    explore,
    find_violations,
    sequential_ids,
)

RULES = {
    "end_of_chat": {"end_prompt": "Bye"},
    "satisfaction": {
        "invite_prompt": "Rate us",
        "reminder_after_s": 5,
        "reminder_prompt": "Remind",
        "min_interval_s": 3600,
    },
    "retention": {"ended_chats_s": 5, "purge_on_tick": False},
}
SETTINGS = ChatSettings.from_dict(RULES)


def world(ended: bool, settings: ChatSettings = SETTINGS) -> ChatManager:
    """ann (limit 2) holds c1 and c2 of customer u1 and replied in both; with ``ended`` c1
    ended at t=20 with its invitation (its reminder is due at 25)."""
    m = ChatManager(
        None, settings, rng=random.Random(7), ids=sequential_ids(), clock=ManualClock(100.0)
    )
    m.register_agent(Agent("ann", status=AgentStatus.ONLINE, reception_limit=2), now=0)
    for i in (1, 2):
        cid = f"c{i}"
        m.open_chat(CustomerInfo(partner_id="u1"), chat_id=cid, now=float(i))
        m.send_message(cid, "Hi", role=MessageRole.AGENT, sender="ann", now=float(i) + 1)
    if ended:
        m.end_chat("c1", now=20.0)
    return m


def texts(storage: Storage, chat_id: str) -> list[str]:
    return [x.text for x in storage.chats.messages(ChatId(chat_id)) if x.role is MessageRole.SYSTEM]


def satisfaction_consistent(
    storage: Storage,
    *,
    opened: Iterable[str] | None = None,
    drained: bool = False,
    allowance: Mapping[str, int] | None = None,
    **_: Any,
) -> list[str]:
    """The usual invariants, and on the stored records of c1 and c2: a reminder message exactly
    when ``reminded_at`` is set, at most one, never after the rating; as many invitation
    prompts as invitations, each right after the end prompt when made at the end; a purged
    chat leaves no message behind; never more than one invitation of customer u1 within the
    interval. At the end of a run the reminder timer is gone once the chat is rated."""
    if opened is not None:  # retention may purge c1 (ended) and nothing else
        gone = storage.chats.get(ChatId("c1")) is None
        opened = [c for c in opened if not (gone and c == "c1")]
    found = find_violations(storage, opened=opened, drained=drained, allowance=allowance)
    invitations = 0
    for cid in ("c1", "c2"):
        chat = storage.chats.get(ChatId(cid))
        said = texts(storage, cid)
        if chat is None:
            if said:
                found.append(f"{cid} was purged but messages remain: {said}")
            continue
        state = satisfaction_of(chat)
        invitations += state.invitations
        if said.count("Remind") != (state.reminded_at is not None):
            found.append(f"{cid}: reminded_at {state.reminded_at} but messages {said}")
        rating = state.rating
        if rating and state.reminded_at is not None and state.reminded_at > rating.submitted_at:
            found.append(f"{cid} was reminded at {state.reminded_at} after its rating")
        if said.count("Rate us") != state.invitations:
            found.append(f"{cid}: {state.invitations} invitations but messages {said}")
        if state.invitations and chat.state is ChatState.ENDED:
            at = said.index("Rate us")
            if at == 0 or said[at - 1] != "Bye":
                found.append(f"{cid}: the invitation is not right after the end prompt: {said}")
        # the rating's unit cancels the reminder (a timer left by a tick that died after
        # reminding fires later and changes nothing: the message count above shows that)
        timers = getattr(storage.timers, "get", None)
        if drained and rating and timers is not None and timers(reminder_key(cid)) is not None:
            found.append(f"{cid}: a reminder is still pending after the rating")
    if invitations > 1:
        found.append(f"customer u1 was invited {invitations} times within the interval")
    return found


def ended_world() -> ChatManager:
    return world(ended=True)


def open_world() -> ChatManager:
    return world(ended=False)


TICK = Operation("tick", lambda m: m.tick(now=30.0))
RATE = Operation("rate", lambda m: m.rate("c1", 4, now=31.0))
PURGE = Operation("purge", lambda m: m.purge(now=40.0))
END = Operation("end", lambda m: m.end_chat("c1", now=20.0))
END_2 = Operation("end c2", lambda m: m.end_chat("c2", now=21.0))
MESSAGE = Operation(
    "message", lambda m: m.send_message("c1", "wait", role=MessageRole.CUSTOMER, now=20.5)
)


def run(make: Any, *ops: Operation) -> None:
    report = explore(
        make,
        list(ops),
        invariant=satisfaction_consistent,
        exhaustive_limit=600,
        random_runs=60,
        probes=4,
    )
    report.assert_ok()
    assert report.runs > 1 and report.longest > 2


def test_reminder_against_a_rating() -> None:
    run(ended_world, TICK, RATE)


def test_reminder_against_a_purge() -> None:
    run(ended_world, TICK, PURGE)


def test_reminder_rating_and_purge_together() -> None:
    run(ended_world, TICK, RATE, PURGE)


def test_end_invitation_against_a_customer_message() -> None:
    run(open_world, END, MESSAGE)


def test_two_chats_of_one_customer_ending_at_once_invite_once() -> None:
    run(open_world, END, END_2)
    m = open_world()
    m.end_chat("c1", now=20.0)
    record = m.customer("u1")
    assert record is not None and record.last_invited_at == 20.0


def test_the_invariant_catches_a_second_invitation_within_the_interval() -> None:
    """Without the interval both chats of u1 are invited: the check reads the records."""
    loose = ChatSettings.from_dict(
        {**RULES, "satisfaction": {**RULES["satisfaction"], "min_interval_s": 0}}
    )

    def make() -> ChatManager:
        return world(ended=False, settings=loose)

    report = explore(
        make, [END, END_2], invariant=satisfaction_consistent, exhaustive_limit=50, probes=1
    )
    assert report.violations
    assert "invited 2 times" in " ".join(report.violations[0].messages)


def test_crash_points_of_the_satisfaction_changes_leave_nothing_to_repair() -> None:
    for make, op in ((open_world, END), (ended_world, TICK), (ended_world, RATE)):
        report = crash_points(make, op, invariant=satisfaction_consistent, now=50.0)
        report.assert_ok()
        assert report.points > 1 and report.repairs == {}, (op.label, report.repairs)
