"""Interleaving explorer and crash points for hold, resume and the inactivity release.

Held and inactive chats do not count here (``on_hold_chats_count`` and ``inactive_chats_count``
off), so every hold, resume, release and wake moves a slot between the agent's counted and
uncounted chats. Besides the usual invariants (checked with those settings), every run checks
on the stored records that each active chat's slot sits where its record says: counted unless it
is on hold or inactive (:func:`slot_places`). A lost update between a chat and its slot shows
there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pytest

from chatmgmt import AgentStatus, ChatManager, ChatSettings
from chatmgmt.assignment._load import counts_toward_limit
from chatmgmt.lifecycle import on_hold
from chatmgmt.model import ChatId, ChatState, MessageRole
from chatmgmt.ports import Storage
from chatmgmt.testing import (
    Operation,
    crash_points,
    explore,
    find_violations,
)
from explorer_world import standard_world

SETTINGS = ChatSettings.from_dict(
    {
        "assignment": {"on_hold_chats_count": False, "inactive_chats_count": False},
        "end_of_chat": {"inactive_after_s": 5, "hold_close_after_s": 30},
    }
)


def build(storage: Storage | None = None, *, held: bool = False) -> ChatManager:
    """ann and bob (group g, limit 1) hold c1 and c2; c3 waits in queue/g; cat (group h,
    limit 1) is free; dan (group g) is OFFLINE. ``held``: ann put c1 on hold at 3, and c3
    took her freed slot."""
    m = standard_world(SETTINGS, storage)
    if held:
        m.hold_chat("c1", by="ann", now=3.5)
    return m


def build_held() -> ChatManager:
    return build(held=True)


def slot_places(storage: Storage) -> list[str]:
    """Each ACTIVE chat's slot is counted exactly when its record says it counts."""
    loads = {ld.agent.id: ld for ld in storage.agents.list()}
    out = []
    for chat in storage.chats.list(ChatState.ACTIVE):
        load = loads.get(chat.agent_id) if chat.agent_id is not None else None
        if load is None:
            continue
        counted = counts_toward_limit(
            chat.inactive, on_hold(chat), inactive_count=False, on_hold_count=False
        )
        where = "counted" if chat.id in load.chats else "uncounted"
        if counted != (where == "counted"):
            out.append(
                f"slot place: chat {chat.id!r} (inactive={chat.inactive}, on hold="
                f"{on_hold(chat)}) sits {where} at {chat.agent_id!r}"
            )
    return out


def invariant_with(
    final: Callable[[Storage], list[str]] | None = None,
) -> Callable[..., list[str]]:
    def check(
        storage: Storage,
        *,
        opened: Iterable[str] | None = None,
        drained: bool = False,
        allowance: Mapping[str, int] | None = None,
        **_: Any,
    ) -> list[str]:
        found = find_violations(
            storage,
            opened=opened,
            drained=drained,
            allowance=allowance,
            count_inactive=False,
            count_on_hold=False,
        )
        found.extend(slot_places(storage))
        if drained and final is not None:
            found.extend(final(storage))
        return found

    return check


def c1(storage: Storage) -> Any:
    chat = storage.chats.get(ChatId("c1"))
    assert chat is not None
    return chat


HOLD = Operation("hold", lambda m: m.hold_chat("c1", by="ann", reason="wait", now=11.0))
RESUME = Operation("resume", lambda m: m.resume_chat("c1", by="ann", now=11.5))
MESSAGE = Operation(
    "message", lambda m: m.send_message("c1", "hello", role=MessageRole.CUSTOMER, now=12.0)
)
AGENT_MESSAGE = Operation(
    "agent_message",
    lambda m: m.send_message("c1", "checking", role=MessageRole.AGENT, sender="ann", now=12.5),
)
END = Operation("end", lambda m: m.end_chat("c1", now=13.0))
TRANSFER = Operation("transfer", lambda m: m.transfer("c1", to_agent="cat", now=14.0))
LEAVE = Operation("leave", lambda m: m.set_agent_status("ann", AgentStatus.OFFLINE, now=15.0))
TICK = Operation("tick", lambda m: m.tick(now=20.0))


def held_or_resumed(storage: Storage) -> list[str]:
    chat = c1(storage)
    if chat.state is ChatState.ACTIVE and chat.hold is None:
        return ["c1 lost its hold record"]
    return []


PAIRS: list[tuple[Operation, Operation, Callable[[], ChatManager], Any]] = [
    (HOLD, MESSAGE, build, held_or_resumed),
    (HOLD, AGENT_MESSAGE, build, held_or_resumed),
    (HOLD, END, build, None),
    (HOLD, TRANSFER, build, None),
    (HOLD, LEAVE, build, None),
    (RESUME, MESSAGE, build_held, None),
    (RESUME, END, build_held, None),
    (RESUME, TRANSFER, build_held, None),
    (RESUME, LEAVE, build_held, None),
    (HOLD, TICK, build, None),
]


@pytest.mark.parametrize(
    ("a", "b", "world", "final"), PAIRS, ids=[f"{a.label}+{b.label}" for a, b, *_ in PAIRS]
)
def test_hold_and_resume_race_every_change_of_the_chat(
    a: Operation, b: Operation, world: Callable[[], ChatManager], final: Any
) -> None:
    report = explore(
        world,
        [a, b],
        invariant=invariant_with(final),
        exhaustive_limit=300,
        random_runs=40,
        probes=4,
    )
    report.assert_ok()
    assert report.runs > 1 and report.longest > 2


def released_then_woken(storage: Storage) -> list[str]:
    """However the tick and the message interleave, c1 ends active and counted."""
    chat = c1(storage)
    return [f"c1 is inactive after the customer wrote at 12: {chat}"] if chat.inactive else []


def test_the_inactivity_release_races_a_message() -> None:
    tick = Operation("tick", lambda m: m.tick(now=15.0))  # c1 due at 6; after the message, 17
    report = explore(
        build,
        [tick, MESSAGE],
        invariant=invariant_with(released_then_woken),
        exhaustive_limit=300,
        random_runs=60,
        probes=4,
    )
    report.assert_ok()
    assert report.runs > 1 and report.final_states > 1  # the race changes the outcome


def test_the_hold_close_races_a_customer_message() -> None:
    close = Operation("close", lambda m: m.tick(now=40.0))
    late = Operation(
        "message", lambda m: m.send_message("c1", "back", role=MessageRole.CUSTOMER, now=39.0)
    )
    report = explore(
        build_held,
        [close, late],
        invariant=invariant_with(),
        exhaustive_limit=300,
        random_runs=40,
        probes=4,
    )
    report.assert_ok()
    assert report.final_states > 1  # closed on hold, or resumed in time


def test_the_slot_check_catches_a_hold_without_its_slot_move() -> None:
    """A hold stored without moving the slot is reported on the records (the check can fail)."""
    m = build()
    chat = m.get_chat("c1")
    from chatmgmt.model import evolve
    from chatmgmt.ports import Change

    held = evolve(chat, hold={"since": 5.0, "by": "ann", "reason": "", "resumed_at": None})
    m.storage.apply(Change(chat.id, chat.version, 5.0, chat=evolve(held, version=chat.version + 1)))
    assert slot_places(m.storage) and "sits counted" in slot_places(m.storage)[0]


@pytest.mark.parametrize(
    ("op", "world"),
    [(HOLD, build), (RESUME, build_held), (MESSAGE, build_held), (TICK, build)],
    ids=["hold", "resume", "wake", "release"],
)
def test_each_crash_point_leaves_nothing_to_repair(
    op: Operation, world: Callable[[], ChatManager]
) -> None:
    report = crash_points(world, op, invariant=invariant_with(), now=50.0)
    report.assert_ok()
    assert report.points > 1 and report.repairs == {}
