"""The agent leave policy and ``unassign``: examples from the peers' documented behaviour, then
the interleaving explorer and crash points on the stored chat records.

Peers: Rocket.Chat Omnichannel moves an offline agent's chats after a configured wait (forward
to the department or back to the queue); LiveChat redistributes a disconnected agent's chats;
Intercom reassigns conversations of a teammate in away mode (when "reassign replies" is on).
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from assignment.assign_helpers import agent, customer, manager, sink_of
from chatmgmt import (
    AgentStatus,
    AsyncChatManager,
    ChatManager,
    ChatSettings,
    CustomerInfo,
    InvalidTransitionError,
    SettingsError,
)
from chatmgmt.model import ChatState, MessageRole
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


def leave(action: str, grace_s: float = 0.0, **more: Any) -> dict[str, Any]:
    return {"assignment": {"leave": {"action": action, "grace_s": grace_s, **more}}}


def staffed(settings: dict[str, Any], *, mode: str = "real_time") -> ChatManager:
    """ann (limit 2) holds c1, c2; bob (limit 1) holds c3; c4 waits; all in group g."""
    quiet = {"end_of_chat": {"warn_after_s": 0, "end_after_s": 0}}  # no inactivity ends
    m = manager({**quiet, **settings, "reception_mode": mode})
    m.register_agent(agent("ann", limit=2, groups=("g",), order=1), now=0)
    for i in (1, 2, 3, 4):
        if i == 3:
            m.register_agent(agent("bob", limit=1, groups=("g",), order=2), now=0)
        m.open_chat(customer(name=f"c{i}"), skill_group="g", chat_id=f"c{i}", now=float(i))
    assert [m.get_chat(f"c{i}").agent_id for i in (1, 2, 3, 4)] == ["ann", "ann", "bob", None]
    return m


def types(m: ChatManager, chat_id: str) -> list[str]:
    return [e.type for e in sink_of(m).events if e.data.get("chat_id") == chat_id]


# --------------------------------------------------------------------------- the policy


def test_requeue_after_the_grace_time_keeps_their_place() -> None:
    """Rocket.Chat: after the wait time an offline agent's chats go back to the queue; here
    they keep their place, ahead of c4 that arrived later."""
    m = staffed(leave("requeue", 30))
    m.set_agent_status("ann", AgentStatus.OFFLINE, now=10)
    assert m.tick(now=39) == 0
    assert m.get_chat("c1").agent_id == "ann"  # within the grace time nothing moves
    m.tick(now=40)
    for cid, position in (("c1", 0), ("c2", 1), ("c4", 2)):
        chat = m.get_chat(cid)
        assert chat.state is ChatState.QUEUED and chat.agent_id is None
        status = m.queue_status(cid, now=40)
        assert status is not None and status.position == position
    assert m.agent("ann").active == 0
    assert types(m, "c1")[-2:] == ["chat.returned", "chat.queued"]
    returned = next(e for e in sink_of(m).events if e.type == "chat.returned")
    assert returned.data["from_agent_id"] == "ann" and returned.data["why"] == "agent_offline"
    assert returned.data["by"] == "leave_policy" and returned.data["queue"] == "queue/g"
    check_invariants(m.storage, opened=["c1", "c2", "c3", "c4"], drained=True)


def test_forward_redistributes_at_once_to_free_agents() -> None:
    """LiveChat: a disconnected agent's chats go to the other agents of the group; with no
    free agent they wait in the queue (keeping their place) and are handed out in order."""
    m = staffed(leave("forward"))
    m.register_agent(agent("cat", limit=1, groups=("g",), order=3), now=5)  # takes c4
    m.end_chat("c4", now=6)
    m.set_agent_status("ann", AgentStatus.OFFLINE, now=10)
    c1, c2 = m.get_chat("c1"), m.get_chat("c2")
    assert c1.agent_id == "cat" and c1.state is ChatState.ACTIVE
    assert c1.route_reason["via"] == "agent_left" and c1.route_reason["by"] == "leave_policy"
    assert c2.state is ChatState.QUEUED  # nobody else free: back to the queue
    assert "chat.transferred" in types(m, "c1")
    m.end_chat("c3", now=20)  # bob frees up: c2 is first in line
    assert m.get_chat("c2").agent_id == "bob"
    check_invariants(m.storage, drained=True)


def test_an_agent_back_within_the_grace_time_keeps_its_chats() -> None:
    m = staffed(leave("requeue", 60))
    m.set_agent_status("ann", AgentStatus.OFFLINE, now=10)
    m.set_agent_status("ann", AgentStatus.ONLINE, now=50)
    assert m.tick(now=1000) == 0  # the grace timer was cancelled (and nothing else is due)
    assert m.get_chat("c1").agent_id == "ann" and m.agent("ann").active == 2


def test_leaving_again_restarts_the_grace_time() -> None:
    m = staffed(leave("requeue", 60))
    m.set_agent_status("ann", AgentStatus.OFFLINE, now=10)
    m.set_agent_status("ann", AgentStatus.ONLINE, now=20)
    m.set_agent_status("ann", AgentStatus.OFFLINE, now=40)
    m.tick(now=75)  # 60 s after the first leave, 35 s after the second
    assert m.get_chat("c1").agent_id == "ann"
    m.tick(now=100)
    assert m.get_chat("c1").state is ChatState.QUEUED


@pytest.mark.parametrize(("away_counts", "moved"), [(True, True), (False, False)])
def test_away_counts_only_when_the_setting_says_so(away_counts: bool, moved: bool) -> None:
    """Intercom: conversations of a teammate set to away are reassigned when the workspace
    says so; here ``away_counts`` decides (OFFLINE always counts)."""
    m = staffed(leave("requeue", 0, away_counts=away_counts))
    m.set_agent_status("ann", AgentStatus.AWAY, now=10)
    assert (m.get_chat("c1").state is ChatState.QUEUED) is moved
    m.set_agent_status("bob", AgentStatus.BUSY, now=11)  # busy never counts
    assert m.get_chat("c3").agent_id == "bob"
    if moved:
        event = next(e for e in sink_of(m).events if e.type == "chat.returned")
        assert event.data["why"] == "agent_away"


def test_always_on_chats_return_to_the_pool() -> None:
    m = staffed(leave("pool"), mode="always_on")
    m.set_agent_status("ann", AgentStatus.OFFLINE, now=10)
    c1 = m.get_chat("c1")
    assert c1.state is ChatState.UNASSIGNED and c1.queue == "pool/g"
    assert types(m, "c1")[-2:] == ["chat.returned", "chat.unassigned"]
    m.register_agent(agent("cat", limit=5, groups=("g",)), now=20)  # handed out in order
    assert [m.get_chat(c).agent_id for c in ("c1", "c2", "c4")] == ["cat", "cat", "cat"]
    check_invariants(m.storage, drained=True)


def test_keep_is_the_default_and_leaves_the_chats() -> None:
    m = staffed({})
    m.set_agent_status("ann", AgentStatus.OFFLINE, now=10)
    m.tick(now=10_000)
    assert m.get_chat("c1").agent_id == "ann" and m.agent("ann").active == 2


def test_the_chat_group_decides_with_its_own_grace_time() -> None:
    settings = leave("requeue", 100, groups={"vip": {"grace_s": 10}, "sales": {"action": "keep"}})
    m = manager(settings)
    m.register_agent(agent("ann", limit=3, groups=("g", "vip", "sales")), now=0)
    for cid, group in (("g1", "g"), ("v1", "vip"), ("s1", "sales")):
        m.open_chat(customer(name=cid), skill_group=group, chat_id=cid, now=1)
    m.set_agent_status("ann", AgentStatus.OFFLINE, now=10)
    m.tick(now=20)  # the vip grace time passed, the global one not yet
    assert [m.get_chat(c).state.value for c in ("g1", "v1", "s1")] == [
        "active",
        "queued",
        "active",
    ]
    m.tick(now=110)
    assert [m.get_chat(c).state.value for c in ("g1", "v1", "s1")] == [
        "queued",
        "queued",
        "active",
    ]


def test_inactive_chats_move_too() -> None:
    m = staffed({**leave("requeue"), "assignment": {**leave("requeue")["assignment"]}})
    m.set_inactive("c1", True, now=5)
    m.set_agent_status("ann", AgentStatus.OFFLINE, now=10)
    assert m.get_chat("c1").state is ChatState.QUEUED
    check_invariants(m.storage, drained=True)


def test_the_leave_settings_are_checked() -> None:
    with pytest.raises(SettingsError, match=r"assignment\.leave\.grace_s"):
        ChatSettings.from_dict(leave("requeue", -1))
    with pytest.raises(SettingsError, match=r"assignment\.leave\.action"):
        ChatSettings.from_dict(leave("close"))
    with pytest.raises(SettingsError, match=r"assignment\.leave\.groups\.vip\.grace_s"):
        ChatSettings.from_dict(leave("requeue", 5, groups={"vip": {"grace_s": -2}}))
    with pytest.raises(SettingsError, match=r"assignment\.leave\.groups\.vip\.groups"):
        ChatSettings.from_dict(leave("requeue", 5, groups={"vip": {"groups": {}}}))
    s = ChatSettings.from_dict(leave("forward", 5, groups={"vip": {"action": "keep"}}))
    assert ChatSettings.from_dict(s.to_dict()) == s


# --------------------------------------------------------------------------- Real-Time deadlines


def reminded(settings: dict[str, Any]) -> ChatManager:
    m = manager(settings)
    m.register_agent(agent("ann", limit=2, groups=("g",)), now=0)
    m.register_agent(agent("bob", limit=2, groups=("g",), status=AgentStatus.OFFLINE), now=0)
    m.open_chat(customer(name="x"), skill_group="g", chat_id="x", now=1)
    m.send_message("x", "hello?", role=MessageRole.CUSTOMER, now=2)
    return m


def test_no_reminder_to_an_agent_who_left() -> None:
    settings = {"end_of_chat": {"agent_reminder_s": 30, "warn_after_s": 0, "end_after_s": 0}}
    m = reminded({**settings, **leave("keep")})
    m.tick(now=40)
    assert "chat.agent_reminded" in types(m, "x")  # ONLINE: reminded
    m2 = reminded({**settings, **leave("keep")})
    m2.set_agent_status("ann", AgentStatus.OFFLINE, now=5)
    m2.tick(now=40)
    assert "chat.agent_reminded" not in types(m2, "x")


def test_auto_transfer_follows_the_policy_of_an_agent_who_left() -> None:
    base = {"end_of_chat": {"warn_after_s": 0, "end_after_s": 0}}
    auto = {"auto_transfer_s": 20, "leave": {"action": "requeue", "grace_s": 600}}
    m = reminded({**base, "assignment": auto})
    m.set_agent_status("ann", AgentStatus.OFFLINE, now=5)
    m.tick(now=25)  # the auto-transfer deadline, long before the grace time: requeued now
    chat = m.get_chat("x")
    assert chat.state is ChatState.QUEUED and chat.queue == "queue/g"
    assert types(m, "x")[-2:] == ["chat.returned", "chat.queued"]
    # keep: auto-transfer as before (to another agent of the group, excluding ann)
    m2 = reminded({**base, "assignment": {**auto, "leave": {"action": "keep"}}})
    m2.set_agent_status("bob", AgentStatus.ONLINE, now=3)
    m2.set_agent_status("ann", AgentStatus.OFFLINE, now=5)
    m2.tick(now=25)
    assert m2.get_chat("x").agent_id == "bob"


# --------------------------------------------------------------------------- unassign


def test_unassign_returns_the_chat_to_its_queue_keeping_its_place() -> None:
    m = staffed({})
    back = m.unassign("c1", by="admin_1", exclude=True, now=10)
    assert back.state is ChatState.QUEUED and back.agent_id is None
    assert "ann" in back.excluded
    status = m.queue_status("c1", now=10)
    assert status is not None and status.position == 0  # ahead of c4, which came later
    returned = next(e for e in sink_of(m).events if e.type == "chat.returned")
    assert returned.data["why"] == "admin" and returned.data["by"] == "admin_1"
    # ann has room again, but c1 is excluded for her: c4 is served first-available
    assert m.get_chat("c4").agent_id == "ann"
    check_invariants(m.storage, drained=True)


def test_unassign_without_exclusion_may_give_it_back() -> None:
    m = staffed({})
    back = m.unassign("c1", now=10)  # ann is the one free agent: the drain gives it back
    assert back.agent_id == "ann" and back.state is ChatState.ACTIVE
    assert types(m, "c1")[-3:] == ["chat.returned", "chat.queued", "chat.assigned"]


def test_unassign_in_always_on_goes_to_the_pool() -> None:
    m = staffed({}, mode="always_on")
    back = m.unassign("c3", exclude=True, now=10)
    assert back.state is ChatState.UNASSIGNED and back.queue == "pool/g"


def test_unassign_refuses_a_chat_that_is_not_active() -> None:
    m = staffed({})
    with pytest.raises(InvalidTransitionError):
        m.unassign("c4", now=10)
    m.end_chat("c1", now=11)
    with pytest.raises(InvalidTransitionError):
        m.unassign("c1", now=12)


def test_unassign_on_the_async_manager() -> None:
    async def main() -> None:
        m = AsyncChatManager(settings=ChatSettings(), clock=ManualClock(0.0))
        await m.register_agent(agent("ann", limit=1), now=0)
        await m.open_chat(CustomerInfo(name="a"), chat_id="a", now=1)
        back = await m.unassign("a", exclude=True, now=2)
        assert back.state is ChatState.QUEUED and back.queue == "queue/"

    asyncio.run(main())


# --------------------------------------------------------------------------- the proof


def _no_chat_with_a_leaver(storage: Storage, **kwargs: Any) -> list[str]:
    """The invariants, and once everything ran: no ACTIVE chat left with an OFFLINE agent
    (the policy moves them all; grace 0)."""
    out = find_violations(storage, **kwargs)
    if kwargs.get("drained"):
        offline = {
            ld.agent.id for ld in storage.agents.list() if ld.agent.status is AgentStatus.OFFLINE
        }
        for chat in storage.chats.list(ChatState.ACTIVE):
            if chat.agent_id in offline:
                out.append(f"leave: chat {chat.id!r} is still with {chat.agent_id!r}, who left")
    return out


def world(action: str = "requeue", grace_s: float = 0.0) -> Any:
    settings = ChatSettings.from_dict(leave(action, grace_s))

    def build(storage: Storage | None = None) -> ChatManager:
        """ann (limit 2) holds c1, c2; bob (limit 1) holds c3; c4 waits; dan is OFFLINE."""
        m = ChatManager(
            storage, settings, rng=random.Random(3), ids=sequential_ids(), clock=ManualClock(9)
        )
        for name, limit, status in (
            ("ann", 2, AgentStatus.ONLINE),
            ("bob", 1, AgentStatus.ONLINE),
            ("dan", 1, AgentStatus.OFFLINE),
        ):
            m.register_agent(agent(name, limit=limit, groups=("g",), status=status), now=0)
        for i in (1, 2, 3, 4):
            m.open_chat(CustomerInfo(name=f"c{i}"), skill_group="g", chat_id=f"c{i}", now=i)
        if grace_s:
            m.set_agent_status("ann", AgentStatus.OFFLINE, now=5)
        return m

    return build


LEAVE = Operation("leave", lambda m: m.set_agent_status("ann", AgentStatus.OFFLINE, now=20.0))
OPS = {
    op.label: op
    for op in (
        Operation("open", lambda m: m.open_chat(CustomerInfo(), skill_group="g", chat_id="c9")),
        Operation("drain", lambda m: m._core.drain("queue/g", 15.0)),
        Operation("end", lambda m: m.end_chat("c1", now=11.0)),
        Operation("end_bob", lambda m: m.end_chat("c3", now=12.0)),
        Operation("dan_online", lambda m: m.set_agent_status("dan", AgentStatus.ONLINE, now=13)),
        Operation("transfer", lambda m: m.transfer("c1", to_agent="dan", now=14.0)),
        Operation("unassign", lambda m: m.unassign("c1", now=16.0)),
        Operation("tick", lambda m: m.tick(now=100.0)),
        Operation("back", lambda m: m.set_agent_status("ann", AgentStatus.ONLINE, now=17.0)),
        Operation(
            "message",
            lambda m: m.send_message("c1", "hi", role=MessageRole.CUSTOMER, now=18.0),
        ),
    )
}

LEAVE_PAIRS = [
    ("requeue", "open"),
    ("requeue", "drain"),
    ("requeue", "end"),
    ("requeue", "end_bob"),
    ("requeue", "unassign"),
    ("requeue", "message"),
    ("forward", "dan_online"),
    ("forward", "end_bob"),
    ("forward", "end"),
]


@pytest.mark.parametrize(("action", "other"), LEAVE_PAIRS, ids=["+".join(p) for p in LEAVE_PAIRS])
def test_leave_against_each_operation(action: str, other: str) -> None:
    report = explore(
        world(action),
        [LEAVE, OPS[other]],
        invariant=_no_chat_with_a_leaver,
        exhaustive_limit=150,
        random_runs=40,
        seed=len(other),
    )
    report.assert_ok()
    assert report.runs > 1 and report.longest > 2


GRACE_PAIRS = [("tick", "end"), ("tick", "back"), ("tick", "message"), ("tick", "unassign")]


@pytest.mark.parametrize(("a", "b"), GRACE_PAIRS, ids=["+".join(p) for p in GRACE_PAIRS])
def test_the_grace_timer_against_each_operation(a: str, b: str) -> None:
    """ann left at 5 with a grace time of 30 s; the tick at 100 fires it."""
    report = explore(
        world("requeue", 30.0),
        [OPS[a], OPS[b]],
        invariant=_no_chat_with_a_leaver,
        exhaustive_limit=150,
        random_runs=40,
        seed=len(b),
    )
    report.assert_ok()
    assert report.runs > 1


UNASSIGN_PAIRS = [("unassign", "transfer"), ("unassign", "end"), ("unassign", "drain")]


@pytest.mark.parametrize(("a", "b"), UNASSIGN_PAIRS, ids=["+".join(p) for p in UNASSIGN_PAIRS])
def test_unassign_against_each_operation(a: str, b: str) -> None:
    report = explore(
        world("keep"),
        [OPS[a], OPS[b]],
        exhaustive_limit=150,
        random_runs=40,
        seed=len(b),
    )
    report.assert_ok()
    assert report.runs > 1 and report.final_states > 1


@pytest.mark.parametrize(
    ("action", "grace_s", "op"),
    [("requeue", 0.0, LEAVE), ("forward", 0.0, LEAVE), ("requeue", 30.0, OPS["tick"])],
)
def test_crash_points_of_the_leave(action: str, grace_s: float, op: Operation) -> None:
    """Wherever the host dies while an agent leaves (or its grace timer fires), the next
    tick moves every chat the policy moves: the timer is set before the status."""
    report = crash_points(world(action, grace_s), op, invariant=_no_chat_with_a_leaver, now=200.0)
    report.assert_ok()
    assert report.points > 2 and report.repairs == {}


def test_crash_points_of_unassign() -> None:
    report = crash_points(world("keep"), OPS["unassign"], now=50.0)
    report.assert_ok()
    assert report.points > 2 and report.repairs == {}
