"""Interleaving explorer: a bot's handoff races the customer's message, the customer leaving
and the bot ending the chat; every outcome is checked on the stored chat record."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from chatmgmt import ChatManager, CustomerInfo
from chatmgmt.model import ChatId, ChatState, EndReason, MessageRole
from chatmgmt.ports import Storage
from chatmgmt.testing import Operation, crash_points, explore, find_violations
from test_explorer import OPERATIONS, SCALE, build

HANDED = (ChatState.QUEUED, ChatState.OFFERED, ChatState.ACTIVE)


def world() -> ChatManager:
    """The explorer's world (ann and bob full in g, c3 queued, cat free in h) plus b1 in the
    bot stage of faq-bot."""
    m = build()
    m.open_chat(CustomerInfo(name="b"), skill_group="g", chat_id="b1", bot="faq-bot", now=5.0)
    return m


def bot_chat_settled(
    storage: Storage,
    *,
    opened: Iterable[str] | None = None,
    drained: bool = False,
    allowance: Mapping[str, int] | None = None,
    **_: Any,
) -> list[str]:
    """The usual invariants after every call; at the end of a run b1 is in exactly one of
    the outcomes its operations allow, read from the stored record."""
    found = find_violations(storage, opened=opened, drained=drained, allowance=allowance)
    if not drained:
        return found
    chat = storage.chats.get(ChatId("b1"))
    if chat is None or chat.bot is None:
        return [*found, f"b1 lost its bot stage: {chat}"]
    handoff = chat.bot.get("handoff")
    if chat.state is ChatState.BOT:
        found.append("b1 is still in the bot stage after its operations finished")
    elif handoff is not None:
        # the customer may still leave the queue after the handoff (a bot may not end it then)
        if chat.state not in (*HANDED, ChatState.ABANDONED):
            found.append(f"b1 was handed off but is {chat.state.value}")
        elif chat.state in HANDED:
            context = chat.route_reason.get("handoff", {})
            if chat.skill_group != "h" or context.get("reason") != "human":
                found.append(f"b1 lost the handoff's group or context: {chat.route_reason}")
        if handoff.get("fields") != {"order": "A-1"}:
            found.append(f"b1 lost the handoff's fields: {handoff}")
    elif chat.state not in (ChatState.ENDED, ChatState.ABANDONED):
        found.append(f"b1 is {chat.state.value} without a handoff")
    elif chat.agent_id is not None or chat.served_by:
        found.append(f"b1 ended in the bot stage but names an agent: {chat.agent_id}")
    return found


HANDOFF = Operation(
    "handoff",
    lambda m: m.handoff(
        "b1", reason="human", fields={"order": "A-1"}, skill_group="h", by="faq-bot", now=11.5
    ),
)
RACERS = {
    op.label: op
    for op in (
        Operation(
            "message",
            lambda m: m.send_message("b1", "hi", role=MessageRole.CUSTOMER, sender="b", now=12.0),
        ),
        Operation("abandon", lambda m: m.abandon("b1", now=12.5)),
        Operation("bot_end", lambda m: m.end_chat("b1", reason=EndReason.BOT, by="b", now=13.0)),
    )
}


@pytest.mark.parametrize("racer", sorted(RACERS))
def test_handoff_against_its_racers_in_every_interleaving(racer: str) -> None:
    report = explore(
        world,
        [HANDOFF, RACERS[racer]],
        invariant=bot_chat_settled,
        exhaustive_limit=400 * SCALE,
        random_runs=40 * SCALE,
        probes=4,
    )
    report.assert_ok()
    assert report.runs > 1 and report.longest > 2
    if racer != "message":  # either may win: both outcomes are reached
        assert report.final_states > 1


def test_a_message_racing_the_handoff_is_never_lost() -> None:
    def both(storage: Storage, *, drained: bool = False, **kw: Any) -> list[str]:
        found = bot_chat_settled(storage, drained=drained, **kw)
        if drained:
            chat = storage.chats.get(ChatId("b1"))
            texts = [msg.text for msg in storage.chats.messages(ChatId("b1"))]
            if chat is None or chat.last_customer_message_at != 12.0 or texts != ["hi"]:
                found.append(f"b1 lost the customer's message: {texts}")
            elif chat.bot is None or "handoff" not in chat.bot:
                found.append("the handoff was lost to the message")
        return found

    report = explore(
        world, [HANDOFF, RACERS["message"]], invariant=both, exhaustive_limit=400, random_runs=20
    )
    report.assert_ok()


def test_handoff_races_an_ordinary_chat_end_and_a_drain() -> None:
    """ann's chat ends (freeing her) while b1 is handed off to g: every interleaving keeps the
    queue in order and ann within her limit."""
    to_g = Operation("handoff_g", lambda m: m.handoff("b1", reason="human", now=11.5))

    def explained(storage: Storage, *, drained: bool = False, **kw: Any) -> list[str]:
        """Whoever assigned b1 (the handoff's routing or the drain that got there first)
        explains it with the handoff's context."""
        found = find_violations(storage, drained=drained, **kw)
        chat = storage.chats.get(ChatId("b1"))
        assigned = drained and chat is not None and chat.agent_id is not None
        if assigned and chat.route_reason.get("handoff", {}).get("reason") != "human":
            found.append(f"b1 was assigned without its handoff context: {chat.route_reason}")
        return found

    def no_queue() -> ChatManager:
        """The world without c3 in the queue: b1, once handed off, is the queue's head, so
        the end's drain may take it between the handoff's two steps."""
        m = world()
        m.abandon("c3", now=6.0)
        return m

    assigned = 0
    for other, start in (("end", world), ("drain", world), ("end", no_queue)):
        report = explore(
            start,
            [to_g, OPERATIONS[other]],
            invariant=explained,
            exhaustive_limit=300 * SCALE,
            random_runs=30 * SCALE,
            probes=4,
        )
        report.assert_ok()
        assigned += report.runs
    assert assigned > 2


def test_the_invariant_catches_a_chat_left_in_the_bot_stage() -> None:
    """Without a handoff or an end, the final check fails: it reads the stored record."""
    report = explore(
        world, [RACERS["message"], OPERATIONS["end"]], invariant=bot_chat_settled, random_runs=0
    )
    assert report.violations
    assert "still in the bot stage" in " ".join(report.violations[0].messages)


@pytest.mark.parametrize("op", ["handoff", "start"])
def test_each_crash_point_leaves_the_invariants_and_nothing_to_repair(op: str) -> None:
    operation = HANDOFF
    if op == "start":
        operation = Operation(
            "start",
            lambda m: m.open_chat(CustomerInfo(name="n"), chat_id="b2", bot="faq-bot", now=9.0),
        )
    report = crash_points(world, operation, now=50.0)
    report.assert_ok()
    assert report.points > 1 and report.repairs == {}
