"""Queue position events (``assignment.queue.position_events_s``): a waiting chat hears of its
new place when chats ahead are served, leave or are removed, at most once per throttle, and
always hears the latest place in the end. Then the explorer and crash points."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from assignment.assign_helpers import agent, customer, manager, sink_of
from chatmgmt import AgentStatus, ChatManager, ChatSettings, CustomerInfo, SettingsError
from chatmgmt.model import ChatState
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


def settings(every_s: float = 10.0) -> dict[str, Any]:
    return {**QUIET, "assignment": {"queue": {"position_events_s": every_s}}}


def queue_of_five(every_s: float = 10.0, storage: Storage | None = None) -> ChatManager:
    """ann (limit 1) holds c0; c1 .. c4 wait in queue/g."""
    m = manager(settings(every_s)) if storage is None else _on(storage, every_s)
    m.register_agent(agent("ann", limit=1, groups=("g",)), now=0)
    for i in range(5):
        m.open_chat(customer(name=f"c{i}"), skill_group="g", chat_id=f"c{i}", now=float(i))
    return m


def _on(storage: Storage, every_s: float) -> ChatManager:
    from chatmgmt.testing import RecordingEventSink

    return ChatManager(
        storage,
        ChatSettings.from_dict(settings(every_s)),
        clock=ManualClock(0.0),
        rng=random.Random(1),
        event_sink=RecordingEventSink(),
    )


def positions(m: ChatManager) -> list[tuple[str, int]]:
    """The position events sent since the last call: (chat, position)."""
    sink = sink_of(m)
    out = [
        (e.data["chat_id"], e.data["position"])
        for e in sink.events
        if e.type == "chat.queue_position"
    ]
    sink.events.clear()
    return out


def test_each_waiting_chat_hears_its_place_and_its_changes() -> None:
    m = queue_of_five()
    m.tick(now=5)
    assert positions(m) == [("c1", 0), ("c2", 1), ("c3", 2), ("c4", 3)]
    m.end_chat("c0", now=20)  # c1 is served: everyone behind moves up
    m.tick(now=20)
    assert positions(m) == [("c2", 0), ("c3", 1), ("c4", 2)]
    event = m.get_chat("c4").position_event
    assert event == (2, 20)
    m.tick(now=40)
    assert positions(m) == []  # nothing changed: nothing sent


def test_the_throttle_holds_back_then_sends_the_latest_place() -> None:
    m = queue_of_five(every_s=10)
    m.tick(now=5)
    positions(m)
    m.abandon("c1", now=6)
    m.tick(now=6)
    m.abandon("c2", now=7)
    m.tick(now=7)
    assert positions(m) == []  # within 10 s of the last event of each chat
    assert m.tick(now=14.9) == 0
    m.tick(now=15)  # the throttle ends: the latest place, once
    assert positions(m) == [("c3", 0), ("c4", 1)]
    status = m.queue_status("c4", now=15)
    assert status is not None and status.position == 1


def test_a_priority_chat_moves_the_others_down() -> None:
    m = queue_of_five()
    m.tick(now=5)
    positions(m)
    m.open_chat(CustomerInfo(name="vip", vip_level=3), skill_group="g", chat_id="v", now=30)
    m.tick(now=30)
    got = dict(positions(m))
    assert got["v"] == 0 and got["c1"] == 1 and got["c4"] == 4


def test_the_event_carries_the_wait_estimate_and_the_length() -> None:
    m = queue_of_five()
    m.tick(now=5)
    event = next(e for e in sink_of(m).events if e.type == "chat.queue_position")
    assert event.data["queue"] == "queue/g" and event.data["length"] == 4
    assert event.data["estimated_wait_s"] == 300.0  # (0 + 1) x 300 s / 1 slot online
    m.set_agent_status("ann", AgentStatus.OFFLINE, now=6)
    m.abandon("c1", now=20)
    m.tick(now=20)
    last = [e for e in sink_of(m).events if e.type == "chat.queue_position"][-1]
    assert last.data["estimated_wait_s"] is None  # nobody online: unknown, not infinity


def test_off_by_default() -> None:
    m = manager(QUIET)
    m.register_agent(agent("ann", limit=1, groups=("g",)), now=0)
    for i in range(3):
        m.open_chat(customer(name=f"c{i}"), skill_group="g", chat_id=f"c{i}", now=float(i))
    m.end_chat("c0", now=5)
    assert m.tick(now=5) == 0 and positions(m) == []
    assert m.get_chat("c2").position_event is None


def test_the_setting_is_checked() -> None:
    with pytest.raises(SettingsError, match=r"assignment\.queue\.position_events_s"):
        ChatSettings.from_dict({"assignment": {"queue": {"position_events_s": -1}}})


def test_on_sqlite(tmp_path: Path) -> None:
    from chatmgmt.storage.sqlite import SQLiteStorage

    m = queue_of_five(storage=SQLiteStorage(tmp_path / "p.db"))
    m.tick(now=5)
    m.end_chat("c0", now=20)
    m.tick(now=20)
    assert m.get_chat("c4").position_event == (2, 20)
    check_invariants(m.storage, drained=True)


# --------------------------------------------------------------------------- the proof


def world() -> ChatManager:
    """ann (limit 1) holds c0; c1 .. c4 wait; the first position events went out at 5."""
    m = ChatManager(
        None,
        ChatSettings.from_dict(settings(1.0)),
        rng=random.Random(2),
        ids=sequential_ids(),
        clock=ManualClock(9),
    )
    m.register_agent(agent("ann", limit=1, groups=("g",)), now=0)
    for i in range(5):
        m.open_chat(CustomerInfo(name=f"c{i}"), skill_group="g", chat_id=f"c{i}", now=i)
    m.tick(now=5)
    return m


OPS = {
    op.label: op
    for op in (
        Operation("tick", lambda m: m.tick(now=20.0)),
        Operation("end", lambda m: m.end_chat("c0", now=11.0)),
        Operation("abandon", lambda m: m.abandon("c2", now=12.0)),
        Operation("drain", lambda m: m._core.drain("queue/g", 13.0)),
        Operation("open", lambda m: m.open_chat(CustomerInfo(vip_level=2), skill_group="g")),
    )
}
PAIRS = [("tick", "end"), ("tick", "abandon"), ("tick", "open"), ("end", "abandon")]


@pytest.mark.parametrize(("a", "b"), PAIRS, ids=["+".join(p) for p in PAIRS])
def test_position_events_against_each_operation(a: str, b: str) -> None:
    # the world's tick at 5 already sent; end/abandon/open change places; tick at 20 sends
    def moved() -> ChatManager:
        m = world()
        m.abandon("c1", now=10)  # c2 .. c4 move up: the positions timer is due
        return m

    report = explore(
        moved,
        [OPS[a], OPS[b]],
        exhaustive_limit=150,
        random_runs=40,
        seed=len(b),
    )
    report.assert_ok()
    assert report.runs > 1


def _told_their_place(storage: Storage, **kwargs: Any) -> list[str]:
    """The invariants, and once reconcile() and tick() ran after the crash: every
    waiting chat was told its current place."""
    out = find_violations(storage, **kwargs)
    if kwargs.get("drained"):
        for chat in storage.chats.list(ChatState.QUEUED):
            place = storage.queues.position(chat.queue or "", chat.id)
            told = chat.position_event
            if told is None or told[0] != place:
                out.append(f"position: {chat.id!r} is at {place} but was told {told}")
    return out


def test_crash_points_of_the_position_events() -> None:
    """Wherever the host dies while the positions timer fires, the next tick (its lease
    over) tells every waiting chat its place."""

    def moved() -> ChatManager:
        m = world()
        m.abandon("c1", now=10)
        return m

    report = crash_points(moved, OPS["tick"], invariant=_told_their_place, now=60.0)
    report.assert_ok()
    assert report.points > 2 and report.repairs == {}
