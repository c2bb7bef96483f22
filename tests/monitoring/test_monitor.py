"""The live snapshot and the supervisor's actions (sync and async managers)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from chatmgmt import (
    AgentStatus,
    AsyncChatManager,
    ChatManager,
    ChatSettings,
    ChatState,
    CustomerInfo,
    EndReason,
)
from chatmgmt.assignment import RouteRequest
from chatmgmt.errors import AssignmentError, InvalidTransitionError, ValidationError
from chatmgmt.model import AgentId, MessageRole
from chatmgmt.monitoring import Snapshot
from chatmgmt.storage import MemoryStorage
from chatmgmt.storage.sqlite import SQLiteStorage
from chatmgmt.testing import ManualClock, RecordingEventSink, make_agent, sequential_ids

START = 1_700_000_000.0


def _settings() -> ChatSettings:
    return ChatSettings.from_dict(
        {
            "assignment": {"strategy": "least_busy"},
            "sensitive_words": {
                "customer": [{"word": "badword", "category": "abuse", "action": "mask"}],
            },
        }
    )


def _manager() -> tuple[ChatManager, ManualClock, RecordingEventSink]:
    clock = ManualClock(START)
    sink = RecordingEventSink()
    m = ChatManager(
        MemoryStorage(), _settings(), clock=clock, event_sink=sink, ids=sequential_ids()
    )
    m.register_agent(make_agent("ann", groups=["sales"], limit=1, order=1))
    m.register_agent(make_agent("bob", groups=["sales", "vip"], limit=2, order=2))
    m.register_agent(make_agent("sup", groups=["vip"], limit=3, order=3))
    m.register_agent(make_agent("cid", groups=["vip"], limit=1, order=4, status=AgentStatus.AWAY))
    return m, clock, sink


def _scenario(m: ChatManager, clock: ManualClock) -> list[str]:
    ids = []
    for i in range(5):
        ids.append(m.open_chat(CustomerInfo(partner_id=f"u{i}"), skill_group="sales").id)
        clock.advance(10)
    return ids


def test_snapshot_groups_agents_and_waits() -> None:
    m, clock, _ = _manager()
    ids = _scenario(m, clock)  # ann 1, bob 2: three active, two waiting in sales
    snap = m.monitor()
    assert isinstance(snap, Snapshot)
    sales = snap.groups["sales"]
    assert (sales.waiting, sales.online, sales.busy, sales.away, sales.free_slots) == (
        2,
        2,
        0,
        0,
        0,
    )
    assert sales.active_chats == 3
    assert sales.longest_wait_s == pytest.approx(20.0)  # ids[3] queued at START + 30, now + 50
    assert sales.estimated_wait_s == pytest.approx(3 * 300.0 / 3)
    vip = snap.groups["vip"]
    assert (vip.waiting, vip.online, vip.away, vip.free_slots, vip.active_chats) == (
        0,
        2,
        1,
        3,
        2,
    )
    assert vip.longest_wait_s is None
    assert "" not in snap.groups
    assert [ld.agent.id for ld in snap.agents] == ["ann", "bob", "sup", "cid"]
    m.end_chat(ids[0])  # ann frees a slot: the head of the queue is drained to her
    snap = m.monitor()
    assert snap.groups["sales"].waiting == 1
    assert snap.groups["sales"].longest_wait_s == pytest.approx(10.0)
    assert snap.to_dict()["groups"][0]["name"] == "sales"


def test_alerts_come_from_committed_moderation_events() -> None:
    m, clock, _ = _manager()
    ids = _scenario(m, clock)
    m.send_message(ids[0], "this badword here", sender="u0")
    m.send_message(ids[0], "fine", sender="u0")
    alerts = m.monitor().alerts
    assert [(a.type, a.chat_id, a.action, a.categories) for a in alerts] == [
        ("moderation.hit", ids[0], "mask", ("abuse",))
    ]
    assert m.monitor(alerts=0).alerts == ()


def test_join_leave_whisper_take_over_end() -> None:
    m, clock, sink = _manager()
    ids = _scenario(m, clock)
    chat = m.join_chat(ids[0], "sup", role="supervisor")
    assert chat.observers == frozenset({"sup"})
    assert m.join_chat(ids[0], "sup", role="supervisor").version == chat.version  # idempotent
    before = m.get_chat(ids[0])
    note = m.whisper(ids[0], "sup", "offer the refund", role="supervisor")
    assert note.role is MessageRole.WHISPER
    after = m.get_chat(ids[0])
    # a whisper moves nothing the customer or the timers see
    assert (after.agent_replied, after.last_agent_message_at, after.state) == (
        before.agent_replied,
        before.last_agent_message_at,
        before.state,
    )
    assert m.messages(ids[0])[-1] == note
    with pytest.raises(ValidationError):
        m.send_message(ids[0], "x", role=MessageRole.WHISPER, sender="sup")
    taken = m.take_over(ids[0], "sup", role="supervisor")
    assert (taken.state, taken.agent_id) == (ChatState.ACTIVE, "sup")
    assert "chat.transferred" in sink.types()
    assert m.agent("ann").active == 1  # ann's freed slot took the head of the queue
    with pytest.raises(AssignmentError):
        m.take_over(ids[0], "sup", role="supervisor")
    left = m.leave_chat(ids[0], "sup", role="supervisor")
    assert left.observers == frozenset()
    ended = m.supervisor_end(ids[0], "sup", role="admin")
    assert (ended.state, ended.end_reason, ended.ended_by) == (
        ChatState.ENDED,
        EndReason.SYSTEM,
        "sup",
    )
    with pytest.raises(InvalidTransitionError):
        m.whisper(ids[0], "sup", "too late", role="supervisor")
    types = sink.types()
    for t in (
        "supervisor.joined",
        "supervisor.whispered",
        "supervisor.took_over",
        "supervisor.left",
        "supervisor.ended",
    ):
        assert t in types
    assert not any(t == "message.whisper" for t in types)
    took = next(e for e in sink.events if e.type == "supervisor.took_over")
    transferred = next(e for e in sink.events if e.type == "chat.transferred")
    assert took.seq + 1 == transferred.seq  # one unit: consecutive numbers of the chat
    ended_ev = next(e for e in sink.events if e.type == "supervisor.ended")
    assert ended_ev.data["supervisor_role"] == "admin"


def test_take_over_of_a_waiting_chat_assigns_it() -> None:
    m, clock, _ = _manager()
    ids = _scenario(m, clock)
    waiting = ids[3]
    assert m.get_chat(waiting).state is ChatState.QUEUED
    chat = m.take_over(waiting, "sup", role="supervisor")
    assert (chat.state, chat.agent_id, chat.queue) == (ChatState.ACTIVE, "sup", None)
    assert m.monitor().groups["sales"].waiting == 1


def test_async_manager_same_snapshot_and_actions() -> None:
    async def run() -> tuple[Snapshot, Snapshot]:
        clock = ManualClock(START)
        a = AsyncChatManager(None, _settings(), clock=clock, ids=sequential_ids())
        sm, sclock, _ = _manager()
        for ld in sm.storage.agents.list():
            await a.register_agent(ld.agent, now=START)
        first = None
        for i in range(5):
            chat = await a.open_chat(CustomerInfo(partner_id=f"u{i}"), skill_group="sales")
            first = first or chat.id
            clock.advance(10)
        _scenario(sm, sclock)
        assert first is not None
        await a.join_chat(first, "sup", role="supervisor")
        await a.whisper(first, "sup", "hi", role="supervisor")
        return await a.monitor(), sm.monitor()

    got, want = asyncio.run(run())
    assert got.groups == want.groups
    assert [ld.agent.id for ld in got.agents] == [ld.agent.id for ld in want.agents]


def _held_on_records(m: ChatManager) -> tuple[dict[str, int], int]:
    """Per agent, its ACTIVE chat records on hold, and how many there are in all."""
    from chatmgmt.lifecycle import on_hold

    per: dict[str, int] = {}
    for chat in m.storage.chats.list(ChatState.ACTIVE):
        if on_hold(chat) and chat.agent_id is not None:
            per[chat.agent_id] = per.get(chat.agent_id, 0) + 1
    return per, sum(per.values())


@pytest.mark.parametrize(
    ("counts", "kind"), [(True, "memory"), (False, "memory"), (False, "sqlite")]
)
def test_chats_on_hold_per_agent_and_group(counts: bool, kind: str, tmp_path: Path) -> None:
    # with on_hold_chats_count off a held chat moves to the agent's inactive chats: counted
    # all the same
    settings = ChatSettings.from_dict({"assignment": {"on_hold_chats_count": counts}})
    clock = ManualClock(START)
    storage = MemoryStorage() if kind == "memory" else SQLiteStorage(tmp_path / "m.db")
    m = ChatManager(storage, settings, clock=clock, ids=sequential_ids())
    m.register_agent(make_agent("ann", groups=["sales"], limit=3, order=1))
    m.register_agent(make_agent("bob", groups=["sales", "vip"], limit=3, order=2))
    ids = [
        m.open_chat(
            CustomerInfo(), skill_group="sales", request=RouteRequest(designated_agent=AgentId(a))
        ).id
        for a in ("ann", "ann", "bob", "bob")
    ]
    by_agent = {cid: m.get_chat(cid).agent_id for cid in ids}
    ann = [c for c in ids if by_agent[c] == "ann"]
    bob = [c for c in ids if by_agent[c] == "bob"]
    assert len(ann) == 2 and len(bob) == 2
    plain = m.monitor()
    assert plain.on_hold is None and plain.groups["sales"].on_hold is None
    assert all(a["on_hold"] is None for a in plain.to_dict()["agents"])
    for cid in (*ann, bob[0]):
        m.hold_chat(cid, by=str(by_agent[cid]))
    snap = m.monitor(on_hold=True)
    per, total = _held_on_records(m)
    assert per == {"ann": 2, "bob": 1} and total == 3
    assert snap.on_hold == per
    assert (snap.groups["sales"].on_hold, snap.groups["vip"].on_hold) == (3, 1)
    assert {a["id"]: a["on_hold"] for a in snap.to_dict()["agents"]} == per
    assert snap.groups["sales"].active_chats == 4  # held chats stay the agents' chats
    m.resume_chat(ann[0], by="ann")
    m.end_chat(bob[0])
    again = m.monitor(on_hold=True)
    assert _held_on_records(m)[0] == {"ann": 1}
    assert again.on_hold == {"ann": 1, "bob": 0}
    assert (again.groups["sales"].on_hold, again.groups["vip"].on_hold) == (1, 0)
    held = asyncio.run(_async_on_hold(settings))
    assert held == {"ann": 1}


async def _async_on_hold(settings: ChatSettings) -> dict[str, int] | None:
    m = AsyncChatManager(None, settings, clock=ManualClock(START), ids=sequential_ids())
    await m.register_agent(make_agent("ann", groups=["sales"], limit=3, order=1))
    chat = await m.open_chat(CustomerInfo(), skill_group="sales")
    await m.hold_chat(chat.id, by="ann")
    return (await m.monitor(on_hold=True)).on_hold
