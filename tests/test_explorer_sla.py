"""Interleaving explorer: the SLA timer's firing (tick) races the agent's reply, the end, a
transfer to another group and a tag that selects another policy; on the stored records every
breach the chat counts went out as exactly one sla.breached event, an ended chat has no
running clock and no SLA timer, and a running clock with something still to raise has its
timer."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from chatmgmt import Agent, AgentStatus, ChatManager, ChatSettings, CustomerInfo
from chatmgmt.lifecycle import on_hold, sla_timer
from chatmgmt.model import ChatId, ChatState, MessageRole
from chatmgmt.ports import Storage
from chatmgmt.testing import (
    ManualClock,
    Operation,
    crash_points,
    explore,
    find_violations,
    replay,
    sequential_ids,
)

SETTINGS = ChatSettings.from_dict(
    {
        "sla": {
            "warn_before": 0.5,
            "policies": [
                {"name": "h", "groups": ["h"], "first_response_s": 2, "resolution_s": 50},
                {"name": "v", "tags": ["vip"], "first_response_s": 12, "resolution_s": 30},
                {"name": "g", "first_response_s": 5, "next_response_s": 5, "resolution_s": 100},
            ],
        }
    }
)


def build(storage: Storage | None = None) -> ChatManager:
    """ann (group g) holds c1 since t=1 (first response due at 6, warned at 3.5); cat (group h)
    is free; c2 (group g) waits for an answer to its customer's second message."""
    m = ChatManager(
        storage, SETTINGS, rng=random.Random(7), ids=sequential_ids(), clock=ManualClock(1.0)
    )
    m.register_agent(
        Agent("ann", skill_groups={"g"}, status=AgentStatus.ONLINE, reception_limit=2), now=0
    )
    m.register_agent(
        Agent("cat", skill_groups={"h"}, status=AgentStatus.ONLINE, reception_limit=2), now=0
    )
    m.open_chat(CustomerInfo(name="c1"), skill_group="g", chat_id="c1", now=1.0)
    m.open_chat(CustomerInfo(name="c2"), skill_group="g", chat_id="c2", now=1.0)
    m.send_message("c2", "hi", role=MessageRole.AGENT, sender="ann", now=2.0)
    m.send_message("c2", "and?", role=MessageRole.CUSTOMER, now=3.0)  # next response due 8
    return m


def sla_held(
    storage: Storage,
    *,
    opened: Iterable[str] | None = None,
    drained: bool = False,
    allowance: Mapping[str, int] | None = None,
    **_: Any,
) -> list[str]:
    """The usual invariants, and the SLA's on the stored chats and outbox."""
    found = find_violations(storage, opened=opened, drained=drained, allowance=allowance)
    events = storage.outbox.events()  # type: ignore[attr-defined]
    for chat_id in ("c1", "c2"):
        chat = storage.chats.get(ChatId(chat_id))
        if chat is None or chat.sla is None:
            found.append(f"{chat_id} lost its SLA")
            continue
        raised = Counter(
            e.data["metric"] for e in events if e.chat_id == chat_id and e.type == "sla.breached"
        )
        for metric, clock in chat.sla.clocks().items():
            if raised[metric] != clock.breaches:
                found.append(
                    f"{chat_id} {metric}: {clock.breaches} breaches stored, "
                    f"{raised[metric]} sla.breached events"
                )
            late = clock.achieved_s is not None and clock.achieved_s >= clock.target_s
            if late and not clock.breached:
                found.append(f"{chat_id} {metric}: achieved late but not breached")
        timer = storage.timers.get(f"{chat_id}:sla")
        if chat.state is ChatState.ENDED:
            running = [m for m, c in chat.sla.clocks().items() if c.running]
            if running:
                found.append(f"{chat_id} ended with running clocks {running}")
            if timer is not None:
                found.append(f"{chat_id} ended with an SLA timer")
        elif sla_timer(chat) is not None and timer is None:
            found.append(f"{chat_id}: a warning or breach is pending but no SLA timer is set")
        paused = chat.sla.paused_since is not None
        if paused != on_hold(chat):  # sla.pause_on_hold is on: paused exactly while on hold
            found.append(f"{chat_id}: on hold {on_hold(chat)} but paused since {paused}")
        if paused and timer is not None:
            found.append(f"{chat_id} is on hold with an SLA timer (due {timer.due_at})")
        ended = [e for e in events if e.chat_id == chat_id and e.type == "chat.ended"]
        if ended and ended[-1].data["sla"] != chat.sla.figures():
            found.append(f"{chat_id}: chat.ended figures differ from the stored SLA")
    return found


TICK = Operation("tick", lambda m: m.tick(now=10.0))
REPLY = Operation(
    "reply", lambda m: m.send_message("c1", "sorry", role=MessageRole.AGENT, sender="ann", now=8.0)
)
REPLY2 = Operation(
    "reply2", lambda m: m.send_message("c2", "here", role=MessageRole.AGENT, sender="ann", now=9.0)
)
END = Operation("end", lambda m: m.end_chat("c1", now=9.0))
TRANSFER = Operation("transfer", lambda m: m.transfer("c1", to_group="h", now=7.0))
CUSTOMER = Operation(
    "customer", lambda m: m.send_message("c2", "hello?", role=MessageRole.CUSTOMER, now=9.5)
)

TAG = Operation("tag", lambda m: m.tag_chat("c1", "vip", by="sup", now=8.5))  # re-selects
HOLD = Operation("hold", lambda m: m.hold_chat("c1", by="ann", now=7.5))  # after its due time
RESUME = Operation("resume", lambda m: m.resume_chat("c1", by="ann", now=9.0))


def build_held(storage: Storage | None = None) -> ChatManager:
    """:func:`build` with c1 on hold since 2 (before its warning at 3.5): its clocks stand
    still, and it has no SLA timer."""
    m = build(storage)
    m.hold_chat("c1", by="ann", now=2.0)
    return m


PAIRS = [
    (TICK, REPLY),
    (TICK, END),
    (TICK, TRANSFER),
    (TICK, REPLY2),
    (TICK, CUSTOMER),
    (TICK, TAG),
    (TAG, REPLY),
    (TICK, HOLD),
    (HOLD, REPLY),
    (HOLD, TAG),
]
HELD_PAIRS = [(TICK, RESUME), (RESUME, REPLY), (RESUME, END), (TICK, REPLY), (TICK, TRANSFER)]


def test_the_world_holds_the_invariants() -> None:
    m = build()
    assert sla_held(m.storage, opened=["c1", "c2"], drained=True) == []
    assert m.storage.timers.get("c1:sla").due_at == 3.5  # type: ignore[union-attr]


@pytest.mark.parametrize(("a", "b"), PAIRS, ids=[f"{a.label}+{b.label}" for a, b in PAIRS])
def test_the_sla_timer_against_its_racers(a: Operation, b: Operation) -> None:
    report = explore(
        build, [a, b], invariant=sla_held, exhaustive_limit=500, random_runs=40, probes=4
    )
    report.assert_ok()
    assert report.runs > 1 and report.longest > 2


@pytest.mark.parametrize(
    ("a", "b"), HELD_PAIRS, ids=[f"held:{a.label}+{b.label}" for a, b in HELD_PAIRS]
)
def test_a_held_chats_paused_clocks_against_their_racers(a: Operation, b: Operation) -> None:
    """c1 on hold (sla.pause_on_hold): the tick finds nothing of it due while it is held; the
    resume, the agent's reply while held, the end and a transfer each end or keep the pause
    in their own unit, and the breaches counted are the ones sent."""
    report = explore(
        build_held, [a, b], invariant=sla_held, exhaustive_limit=500, random_runs=40, probes=4
    )
    report.assert_ok()
    assert report.runs > 1 and report.longest > 2


def test_a_hold_racing_the_due_breach_sends_it_once() -> None:
    """c1's first response was due at 6; held at 7.5 and ticked at 10: whichever commits
    first sends the breach (the hold's unit sends a breach that happened before the hold),
    exactly once, and the clock stays paused."""
    breaches: set[int] = set()

    def recorded(storage: Storage, **kwargs: Any) -> list[str]:
        if kwargs.get("drained"):
            chat = storage.chats.get(ChatId("c1"))
            assert chat is not None and chat.sla is not None and chat.sla.first_response
            breaches.add(chat.sla.first_response.breaches)
        return sla_held(storage, **kwargs)

    report = explore(build, [TICK, HOLD], invariant=recorded, exhaustive_limit=500)
    report.assert_ok()
    assert breaches == {1}


def test_whichever_commits_first_raises_the_breach_once() -> None:
    """tick + reply: run each to completion first; the breach is raised by the tick's unit in
    one order and by the late reply's unit in the other, and the stored figures agree."""
    orders = {}
    for first, ops in enumerate(([TICK, REPLY], [REPLY, TICK])):
        # an empty schedule runs the first operation to its end, then the other
        m, violation = replay(build, ops, [], invariant=sla_held)
        assert violation is None
        events = [e for e in m.storage.outbox.events() if e.chat_id == "c1"]  # type: ignore[attr-defined]
        kinds = [e.type for e in events if e.type in ("sla.breached", "message.agent")]
        orders[first] = kinds
        clock = m.get_chat("c1").sla.first_response  # type: ignore[union-attr]
        assert clock is not None and (clock.breaches, clock.achieved_s) == (1, 7.0)
    assert orders[0] == ["sla.breached", "message.agent"]  # the tick raised it
    assert orders[1] == ["message.agent", "sla.breached"]  # the late reply raised it


def test_three_way_race() -> None:
    report = explore(
        build,
        [TICK, REPLY, TRANSFER],
        invariant=sla_held,
        exhaustive_limit=0,
        random_runs=40,
        probes=1,
        seed=5,
    )
    report.assert_ok()


def test_the_invariant_catches_a_lost_breach_event() -> None:
    """Drop every sla.breached event from the units of work: the check on the outbox fails."""

    def world() -> ChatManager:
        m = build()
        core = m._core
        original = core.chat_events

        def without_breaches(chat: Any, items: Any, now: float) -> Any:
            kept = [(t, d) for t, d in items if t != "sla.breached"]
            return original(chat, kept, now)

        core.chat_events = without_breaches  # type: ignore[method-assign]
        return m

    report = explore(world, [TICK, REPLY], invariant=sla_held, exhaustive_limit=50, probes=0)
    assert report.violations
    assert "sla.breached events" in " ".join(report.violations[0].messages)


@pytest.mark.parametrize("op", [TICK, REPLY, END, TRANSFER, TAG, HOLD], ids=lambda op: op.label)
def test_crash_points_leave_nothing_to_repair(op: Operation) -> None:
    report = crash_points(build, op, invariant=sla_held, now=60.0)
    report.assert_ok()
    assert report.points > 1 and report.repairs == {}


@pytest.mark.parametrize("op", [RESUME, TICK], ids=lambda op: op.label)
def test_crash_points_of_a_held_chat_leave_nothing_to_repair(op: Operation) -> None:
    report = crash_points(build_held, op, invariant=sla_held, now=60.0)
    report.assert_ok()
    assert report.points > 1 and report.repairs == {}
