"""Live overflow: chats waiting in a starved group's queue move to an overflow layer when its
condition becomes true while they wait (its agents free up, a per-layer wait passes, the group
goes off duty), in queue order, without overtaking. Then the explorer and crash points."""

from __future__ import annotations

import random
from typing import Any

import pytest

from assignment.assign_helpers import agent, customer, manager
from chatmgmt import AgentStatus, ChatManager, ChatSettings, CustomerInfo, SettingsError
from chatmgmt.model import AgentId, ChatState
from chatmgmt.ports import Storage
from chatmgmt.testing import (
    ManualClock,
    Operation,
    check_invariants,
    crash_points,
    explore,
    find_violations,
    sequential_ids,
)

QUIET = {"end_of_chat": {"warn_after_s": 0, "end_after_s": 0}}
WED_0800 = 1_764_144_000.0  # 2025-11-26 08:00 UTC, a Wednesday


def settings(*layers: dict[str, Any], **assignment: Any) -> dict[str, Any]:
    return {**QUIET, "assignment": {"overflow": list(layers), **assignment}}


def starved(m: ChatManager, *, now: float = 0.0) -> ChatManager:
    """ann (g, limit 1) holds c0; c1 .. c3 wait in queue/g; cat (h, limit 2) is OFFLINE."""
    m.register_agent(agent("ann", limit=1, groups=("g",)), now=now)
    m.register_agent(agent("cat", limit=2, groups=("h",), status=AgentStatus.OFFLINE), now=now)
    for i in range(4):
        m.open_chat(customer(name=f"c{i}"), skill_group="g", chat_id=f"c{i}", now=now + i)
    assert [m.get_chat(f"c{i}").state for i in range(4)] == [ChatState.ACTIVE] + [
        ChatState.QUEUED
    ] * 3
    return m


def where(m: ChatManager) -> list[str | None]:
    return [m.get_chat(f"c{i}").agent_id for i in range(1, 4)]


def test_waiting_chats_move_when_the_layer_frees_up_in_queue_order() -> None:
    m = starved(manager(settings({"target_group": "h", "conditions": ["all_busy"]})))
    m.set_agent_status("cat", AgentStatus.ONLINE, now=5)
    assert where(m) == [None, None, None]  # routing tried the layer once, at arrival
    assert m.tick(now=9.9) == 0
    assert m.tick(now=10) == 1  # the queue's check (every 10 s)
    assert where(m) == ["cat", "cat", None]  # the two oldest, in order; c3 keeps waiting
    c1 = m.get_chat("c1")
    assert c1.route_reason["via"] == "overflow[0]" and c1.route_reason["live"] is True
    assert c1.route_reason["overflow"] == [{"layer": 0, "condition": "all_busy"}]
    check_invariants(m.storage, drained=True)
    m.end_chat("c1", now=12)  # cat frees up: the next check moves c3
    m.tick(now=20)
    assert m.get_chat("c3").agent_id == "cat"


def test_a_layer_with_a_wait_takes_only_chats_that_waited_that_long() -> None:
    layer = {"target_group": "h", "conditions": ["all_busy"], "after_wait_s": 60}
    m = starved(manager(settings(layer)))
    m.set_agent_status("cat", AgentStatus.ONLINE, now=5)
    for t in (10, 20, 30, 40, 50, 60):
        m.tick(now=t)
    assert where(m) == [None, None, None]  # c1 arrived at 1: 59 s at the check at 60
    m.tick(now=70)
    assert where(m) == ["cat", "cat", None]  # c1 (69 s) and c2 (68 s); c3 waits for 60 + 3


def test_the_group_going_off_duty_sends_its_queue_on() -> None:
    hours = {"timezone": "UTC", "weekly": {"wed": ["08:00-09:00"]}}
    layer = {"target_group": "h", "conditions": ["off_duty"]}
    m = manager(settings(layer, groups={"g": {"hours": hours}}), clock=ManualClock(WED_0800))
    starved(m, now=WED_0800)
    m.set_agent_status("cat", AgentStatus.ONLINE, now=WED_0800 + 5)
    m.tick(now=WED_0800 + 1800)
    assert where(m) == [None, None, None]  # on duty and all busy: not this layer's condition
    m.tick(now=WED_0800 + 3610)  # 09:00:10, off duty
    assert where(m) == ["cat", "cat", None]
    assert m.get_chat("c1").route_reason["overflow"][0]["condition"] == "off_duty"


def test_a_layer_whose_condition_does_not_hold_moves_nothing() -> None:
    m = starved(manager(settings({"target_group": "h", "conditions": ["no_agent_online"]})))
    m.set_agent_status("cat", AgentStatus.ONLINE, now=5)
    m.tick(now=30)
    assert where(m) == [None, None, None]  # ann is online (all busy), not "no agent online"


def test_the_group_itself_serves_its_queue_first() -> None:
    m = starved(manager(settings({"target_group": "h", "conditions": ["all_busy"]})))
    m.set_agent_status("cat", AgentStatus.ONLINE, now=5)
    m.end_chat("c0", now=6)  # ann frees up: c1 goes to ann by the drain, not to the layer
    assert m.get_chat("c1").agent_id == "ann"
    m.tick(now=10)
    assert where(m) == ["ann", "cat", "cat"]


def test_an_agent_layer_and_the_chain() -> None:
    layers = (
        {"target_group": "h", "conditions": ["all_busy"]},
        {"target_agent": "dan", "conditions": ["no_agent_online"]},
    )
    m = starved(manager(settings(*layers)))
    m.register_agent(agent("dan", limit=1, groups=("x",)), now=5)
    m.tick(now=10)  # h has nobody online (cat OFFLINE): the chain goes on to dan
    assert where(m) == ["dan", None, None]
    assert m.get_chat("c1").route_reason["via"] == "overflow[1]"


def test_off_when_the_check_is_zero() -> None:
    m = starved(
        manager(settings({"target_group": "h", "conditions": ["all_busy"]}, overflow_check_s=0))
    )
    m.set_agent_status("cat", AgentStatus.ONLINE, now=5)
    assert m.tick(now=100) == 0
    assert where(m) == [None, None, None]


def test_the_settings_are_checked() -> None:
    with pytest.raises(SettingsError, match=r"assignment\.overflow\[0\]\.after_wait_s"):
        ChatSettings.from_dict(settings({"target_group": "h", "after_wait_s": -5}))
    with pytest.raises(SettingsError, match=r"assignment\.overflow_check_s"):
        ChatSettings.from_dict(settings(overflow_check_s=-1))


# --------------------------------------------------------------------------- the proof


def world() -> ChatManager:
    """starved(): c1 .. c3 wait in queue/g; cat (layer h) is ONLINE and free; the check is
    due at 10."""
    m = ChatManager(
        None,
        ChatSettings.from_dict(settings({"target_group": "h", "conditions": ["all_busy"]})),
        rng=random.Random(4),
        ids=sequential_ids(),
        clock=ManualClock(9),
    )
    starved(m)
    m.set_agent_status("cat", AgentStatus.ONLINE, now=5)
    return m


OPS = {
    op.label: op
    for op in (
        Operation("overflow", lambda m: m.tick(now=10.0)),
        Operation("drain", lambda m: m._core.drain("queue/g", 11.0)),
        Operation("end", lambda m: m.end_chat("c0", now=11.0)),
        Operation("abandon", lambda m: m.abandon("c1", now=12.0)),
        Operation("open_h", lambda m: m.open_chat(CustomerInfo(), skill_group="h", now=13.0)),
    )
}
PAIRS = [
    ("overflow", "drain"),
    ("overflow", "end"),
    ("overflow", "abandon"),
    ("overflow", "open_h"),
]


@pytest.mark.parametrize(("a", "b"), PAIRS, ids=["+".join(p) for p in PAIRS])
def test_the_overflow_move_against_each_operation(a: str, b: str) -> None:
    report = explore(world, [OPS[a], OPS[b]], exhaustive_limit=150, random_runs=40, seed=len(b))
    report.assert_ok()
    assert report.runs > 1 and report.longest > 2


def _moved_on(storage: Storage, **kwargs: Any) -> list[str]:
    """The invariants, and once reconcile() and tick() ran: no chat waits in queue/g while
    the layer's agent cat has a free slot (g is all busy, the layer's condition)."""
    out = find_violations(storage, **kwargs)
    cat = storage.agents.get(AgentId("cat"))
    if kwargs.get("drained") and cat is not None and cat.free > 0:
        for chat in storage.chats.list(ChatState.QUEUED):
            out.append(f"live overflow: {chat.id!r} waits while cat has {cat.free} free")
    return out


def test_crash_points_of_the_overflow_move() -> None:
    """Wherever the host dies while the check runs, the next tick (the timer's lease over)
    moves what it did not."""
    report = crash_points(world, OPS["overflow"], invariant=_moved_on, now=60.0)
    report.assert_ok()
    assert report.points > 2 and report.repairs == {}
