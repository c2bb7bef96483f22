"""Capacity per channel (channel weights and limits on an agent) and the fairness cap
(assignments per agent per window), through the manager, on memory and SQLite.

The reference behaviour is the peers': TaskRouter's worker-channel capacity (a worker takes
tasks of a channel up to that channel's capacity), Zendesk's capacity rules (per-channel
maximums) and Chatwoot's per-inbox limits and fair distribution (at most N conversations per
agent per window, the agent skipped until the window slides).
"""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from chatmgmt import Agent, AgentStatus, ChatManager, ChatSettings, CustomerInfo
from chatmgmt.errors import AssignmentError, SettingsError, ValidationError
from chatmgmt.model import AgentId, AgentLoad, ChatState
from chatmgmt.storage import MemoryStorage
from chatmgmt.storage.sqlite import SQLiteStorage
from chatmgmt.testing import ManualClock, check_invariants, find_violations

KINDS = ("memory", "sqlite")


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def build(kind: str, tmp_path: Path, settings: dict[str, Any] | None = None) -> ChatManager:
    storage = MemoryStorage() if kind == "memory" else SQLiteStorage(tmp_path / "chat.db")
    return ChatManager(
        storage,
        ChatSettings.from_dict(settings or {}),
        clock=ManualClock(1000.0),
        rng=random.Random(7),
    )


def online(agent_id: str, limit: int = 3, order: int = 0, **kwargs: Any) -> Agent:
    return Agent(
        agent_id, reception_limit=limit, account_order=order, status=AgentStatus.ONLINE, **kwargs
    )


def open_on(m: ChatManager, chat_id: str, channel: str, now: float = 1000.0) -> str | None:
    """Open a chat of ``channel``; the agent it went to (None: it waits)."""
    chat = m.open_chat(CustomerInfo(name=chat_id, channel=channel), chat_id=chat_id, now=now)
    return chat.agent_id


def load(m: ChatManager, agent_id: str) -> AgentLoad:
    found = m.storage.agents.get(AgentId(agent_id))
    assert found is not None
    return found


# --------------------------------------------------------------------------- per channel


def test_a_channel_weight_takes_that_many_units(kind: str, tmp_path: Path) -> None:
    """ann (limit 3, WhatsApp weighs 2): a WhatsApp chat takes 2 units, so a second one does
    not fit (4 > 3) and goes to bob, while a web chat (1 unit) still fits at ann."""
    m = build(kind, tmp_path)
    m.register_agent(online("ann", limit=3, order=1, channel_weights={"whatsapp": 2}))
    m.register_agent(online("bob", limit=3, order=2))
    assert open_on(m, "w1", "whatsapp") == "ann"
    assert open_on(m, "w2", "whatsapp") == "bob"  # ann has 1 unit left, a WhatsApp chat needs 2
    assert open_on(m, "w3", "web") in ("ann", "bob")
    ann = load(m, "ann")
    assert ann.channels.get("w1") == "whatsapp"
    assert ann.used == (3 if "w3" in ann.chats else 2)
    check_invariants(m.storage, drained=True)


def test_a_channel_limit_caps_that_channel_only(kind: str, tmp_path: Path) -> None:
    """ann (limit 5, at most 1 WhatsApp chat): the second WhatsApp chat waits although ann
    has room, and web chats keep coming to her."""
    m = build(kind, tmp_path)
    m.register_agent(online("ann", limit=5, channel_limits={"whatsapp": 1}))
    assert open_on(m, "w1", "whatsapp") == "ann"
    assert open_on(m, "w2", "whatsapp") is None
    assert m.get_chat("w2").state is ChatState.QUEUED
    # a web chat opened behind the waiting WhatsApp chat: the drain passes over the head chat
    # that ann cannot take and gives her the web chat; the WhatsApp chat keeps its place
    m.open_chat(CustomerInfo(name="c", channel="web"), chat_id="web1", now=1001.0)
    assert m.get_chat("web1").agent_id == "ann"
    assert m.queue_status("w2") is not None and m.queue_status("w2").position == 0  # type: ignore[union-attr]
    check_invariants(m.storage, drained=True)
    # the WhatsApp chat ends: the waiting one is handed to ann
    m.end_chat("w1", now=1002.0)
    assert m.get_chat("w2").agent_id == "ann"
    check_invariants(m.storage, drained=True)


def test_a_zero_channel_limit_keeps_the_channel_away(kind: str, tmp_path: Path) -> None:
    m = build(kind, tmp_path)
    m.register_agent(online("ann", limit=5, order=1, channel_limits={"email": 0}))
    m.register_agent(online("bob", limit=1, order=2))
    assert open_on(m, "e1", "email") == "bob"
    assert open_on(m, "e2", "email") is None  # bob is full, ann takes no email
    assert open_on(m, "web1", "web") == "ann"


def test_without_channel_config_nothing_changes(kind: str, tmp_path: Path) -> None:
    """No per-channel configuration: every chat is one slot whatever its channel, and the
    stored agent record has exactly the shape it had before capacity per channel existed."""
    m = build(kind, tmp_path)
    m.register_agent(online("ann", limit=2))
    assert open_on(m, "a", "whatsapp") == "ann"
    assert open_on(m, "b", "email") == "ann"
    assert open_on(m, "c", "web") is None
    ann = load(m, "ann")
    assert ann.channels == {} and ann.recent == () and ann.used == 2
    if kind == "sqlite":
        conn = sqlite3.connect(tmp_path / "chat.db")
        data, channels, recent = conn.execute(
            "SELECT data, channels, recent FROM agents WHERE id = 'ann'"
        ).fetchone()
        conn.close()
        stored = json.loads(data)  # the configuration: as before capacity per channel
        assert "channel_limits" not in stored and "channel_weights" not in stored
        assert channels is None and recent is None


def test_lowering_a_channel_limit_keeps_the_chats_held(kind: str, tmp_path: Path) -> None:
    """ann holds 2 WhatsApp chats; her WhatsApp limit goes down to 1: both stay with her, and
    she gets no WhatsApp chat until she holds fewer than 1; web chats still come."""
    m = build(kind, tmp_path)
    m.register_agent(online("ann", limit=5, channel_limits={"whatsapp": 2}))
    assert open_on(m, "w1", "whatsapp") == "ann"
    assert open_on(m, "w2", "whatsapp") == "ann"
    m.register_agent(online("ann", limit=5, channel_limits={"whatsapp": 1}))
    assert {"w1", "w2"} <= load(m, "ann").chats
    assert open_on(m, "w3", "whatsapp") is None
    m.end_chat("w1", now=1001.0)
    assert m.get_chat("w3").state is ChatState.QUEUED  # ann still holds 1 = her new limit
    assert open_on(m, "web1", "web") == "ann"
    m.end_chat("w2", now=1002.0)
    assert m.get_chat("w3").agent_id == "ann"
    check_invariants(m.storage, drained=True)


def test_a_named_agent_claim_respects_the_channel(kind: str, tmp_path: Path) -> None:
    """An admin's assign and a transfer to a named agent are refused when the chat's channel
    does not fit there (AssignmentError), like a full agent."""
    m = build(kind, tmp_path)
    m.register_agent(online("ann", limit=3, order=1, channel_weights={"whatsapp": 2}))
    m.register_agent(online("bob", limit=3, order=2))
    assert open_on(m, "w1", "whatsapp") == "ann"
    assert open_on(m, "w2", "whatsapp") == "bob"
    with pytest.raises(AssignmentError):
        m.transfer("w2", to_agent="ann", now=1001.0)
    assert m.get_chat("w2").agent_id == "bob"
    m.transfer("w1", to_agent="bob", now=1002.0)  # bob: 1 + 1 = 2 chats of weight 1 there
    assert m.get_chat("w1").agent_id == "bob"
    check_invariants(m.storage, drained=True)


def test_a_custom_strategy_sees_only_agents_the_chat_fits(kind: str, tmp_path: Path) -> None:
    seen: list[list[str]] = []

    def spy(eligible: Any, chat: Any) -> Any:
        seen.append(sorted(ld.agent.id for ld in eligible))
        return eligible[0] if eligible else None

    storage = MemoryStorage() if kind == "memory" else SQLiteStorage(tmp_path / "chat.db")
    m = ChatManager(storage, clock=ManualClock(1000.0), strategies={"*": spy})
    m.register_agent(online("ann", limit=5, channel_limits={"whatsapp": 0}))
    m.register_agent(online("bob", limit=5))
    assert open_on(m, "w1", "whatsapp") == "bob"
    assert seen[-1] == ["bob"]
    open_on(m, "web1", "web")
    assert seen[-1] == ["ann", "bob"]


def test_channel_config_is_validated() -> None:
    with pytest.raises(ValidationError, match=r"channel_weights\.whatsapp"):
        Agent("ann", channel_weights={"whatsapp": 0})
    with pytest.raises(ValidationError, match=r"channel_limits\.web"):
        Agent("ann", channel_limits={"web": -1})
    with pytest.raises(ValidationError, match="channel_limits"):
        Agent("ann", channel_limits={"web": True})
    with pytest.raises(ValidationError, match="channel_weights"):
        Agent("ann", channel_weights=[("web", 1)])  # type: ignore[arg-type]
    assert Agent("ann", channel_weights=None).channel_weights == {}  # type: ignore[arg-type]


# --------------------------------------------------------------------------- fairness cap


def test_the_fairness_cap_skips_an_agent_until_the_window_slides(kind: str, tmp_path: Path) -> None:
    """At most 2 assignments per agent per 60 s (Chatwoot's fair distribution): ann, first by
    round robin, gets 2 chats; the third goes to bob although ann has room; at 61 s after her
    first assignment ann is eligible again."""
    m = build(kind, tmp_path, {"assignment": {"fairness": {"max_assignments": 2, "window_s": 60}}})
    m.register_agent(online("ann", limit=9, order=1))
    m.register_agent(online("bob", limit=9, order=2))
    got = []
    for i, now in enumerate((1000.0, 1001.0, 1002.0, 1003.0)):
        got.append(open_on(m, f"c{i}", "web", now=now))
        m.end_chat(f"c{i}", now=now + 0.5)  # nobody holds anything: only the cap decides
    assert got.count("ann") == 2 and got.count("bob") == 2
    assert open_on(m, "c4", "web", now=1004.0) is None  # both at the cap: the chat waits
    check_invariants(m.storage, fairness=(2, 60.0))
    assert load(m, "ann").recent == (1000.0, 1002.0) or load(m, "ann").recent == (1000.0, 1001.0)
    # the window slides past the agent's first assignment: the waiting chat is taken by the
    # next drain (here a chat that opens then), never more than 2 within any 60 s
    first = min(load(m, "ann").recent[0], load(m, "bob").recent[0])
    m.set_agent_status("ann", AgentStatus.ONLINE, now=first + 60.5)  # a drain, as coming online
    m.open_chat(CustomerInfo(name="x"), chat_id="c5", now=first + 60.6)
    assert m.get_chat("c4").agent_id in ("ann", "bob")
    check_invariants(m.storage, fairness=(2, 60.0))


def test_the_fairness_cap_per_group_overrides_the_global_one(kind: str, tmp_path: Path) -> None:
    settings = {
        "assignment": {
            "fairness": {"max_assignments": 5, "window_s": 600},
            "groups": {"vip": {"fairness": {"max_assignments": 1, "window_s": 600}}},
        }
    }
    m = build(kind, tmp_path, settings)
    m.register_agent(online("ann", limit=9, order=1, skill_groups={"vip", "sales"}))
    m.register_agent(online("bob", limit=9, order=2, skill_groups={"vip", "sales"}))

    def open_in(group: str, cid: str, now: float) -> str | None:
        chat = m.open_chat(CustomerInfo(name=cid), skill_group=group, chat_id=cid, now=now)
        return chat.agent_id

    assert {open_in("vip", "v1", 1000.0), open_in("vip", "v2", 1001.0)} == {"ann", "bob"}
    assert open_in("vip", "v3", 1002.0) is None  # each had 1 assignment within 600 s
    # the sales group's cap is the global 5: assignments keep coming there
    assert open_in("sales", "s1", 1003.0) in ("ann", "bob")
    assert m.settings.assignment.fairness_keep_s == 600.0


def test_explicit_assignments_are_not_capped_but_counted(kind: str, tmp_path: Path) -> None:
    """An admin's assign is a person's decision: the cap does not refuse it, and it counts
    toward the agent's assignments in the window."""
    m = build(kind, tmp_path, {"assignment": {"fairness": {"max_assignments": 1}}})
    m.register_agent(online("ann", limit=9))
    assert open_on(m, "c1", "web") == "ann"
    assert open_on(m, "c2", "web") is None  # at the cap
    m.assign("c2", "ann", by="admin", now=1001.0)
    assert m.get_chat("c2").agent_id == "ann"
    assert load(m, "ann").recent == (1000.0, 1001.0)
    found = find_violations(m.storage, fairness=(1, 3600.0))
    assert any("fairness" in v for v in found)  # the records show what the admin did


def test_fairness_settings_are_validated() -> None:
    with pytest.raises(SettingsError, match=r"assignment\.fairness\.max_assignments"):
        ChatSettings.from_dict({"assignment": {"fairness": {"max_assignments": -1}}})
    with pytest.raises(SettingsError, match=r"assignment\.groups\.vip\.fairness\.window_s"):
        ChatSettings.from_dict(
            {"assignment": {"groups": {"vip": {"fairness": {"max_assignments": 1, "window_s": 0}}}}}
        )
    off = ChatSettings.from_dict({"assignment": {"fairness": {"window_s": 60}}})
    assert off.assignment.fairness_keep_s == 0.0  # no cap on: no assignment times kept


def test_the_slot_helpers_take_a_channel(kind: str, tmp_path: Path) -> None:
    from chatmgmt.assignment import LEAST_BUSY
    from chatmgmt.testing import claim_ranked, claim_slot

    m = build(kind, tmp_path)
    m.register_agent(online("ann", limit=3, order=1, channel_limits={"whatsapp": 1}))
    m.register_agent(online("bob", limit=3, order=2, channel_limits={"whatsapp": 0}))
    s = m.storage
    assert claim_slot(s, "ann", "x1", channel="whatsapp")
    assert not claim_slot(s, "ann", "x2", channel="whatsapp")
    assert claim_slot(s, "ann", "x3", channel="web")
    assert claim_ranked(s, "", LEAST_BUSY, "x4", channel="whatsapp") is None
    assert claim_ranked(s, "", LEAST_BUSY, "x5", channel="web") == "bob"
