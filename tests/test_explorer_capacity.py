"""The interleaving explorer and crash points on claims at a per-channel limit and at the
fairness cap: every interleaving of two or three operations racing for an agent's last unit,
its last chat of a channel, or its last assignment in the window keeps the invariants read
from the chat records (units per agent, chats per channel, assignments per window)."""

from __future__ import annotations

import functools
import itertools
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chatmgmt import Agent, AgentStatus, ChatManager, ChatSettings, CustomerInfo
from chatmgmt.model import ChatState
from chatmgmt.ports import Storage
from chatmgmt.testing import (
    ManualClock,
    Operation,
    crash_points,
    explore,
    find_violations,
    sequential_ids,
)
from test_explorer import broken

CHANNELS = ChatSettings()


def in_g(name: str, limit: int, order: int = 0, **channels: Any) -> Agent:
    """An ONLINE agent of group g (``channels``: its channel weights and limits)."""
    return Agent(
        name,
        skill_groups={"g"},
        status=AgentStatus.ONLINE,
        reception_limit=limit,
        account_order=order,
        **channels,
    )


def channel_world(storage: Storage | None = None) -> ChatManager:
    """ann (group g, limit 3, WhatsApp weighs 2, at most 1 email) holds w0 (WhatsApp, 2 of her
    3 units); bob (group g, limit 2, at most 1 WhatsApp) holds b0 (WhatsApp); q0 (WhatsApp)
    waits in queue/g: ann has 1 unit left, bob is at his WhatsApp limit."""
    m = ChatManager(
        storage, CHANNELS, rng=random.Random(3), ids=sequential_ids(), clock=ManualClock(100.0)
    )
    ann = in_g("ann", 3, 1, channel_weights={"whatsapp": 2}, channel_limits={"email": 1})
    m.register_agent(ann, now=0)
    m.register_agent(in_g("bob", 2, 2, channel_limits={"whatsapp": 1}), now=0)
    for cid, channel, now in (
        ("w0", "whatsapp", 1.0),
        ("b0", "whatsapp", 2.0),
        ("q0", "whatsapp", 3.0),
    ):
        m.open_chat(CustomerInfo(name=cid, channel=channel), skill_group="g", chat_id=cid, now=now)
    return m


def opener(cid: str, channel: str, now: float) -> Callable[[ChatManager], object]:
    def start(m: ChatManager) -> object:
        customer = CustomerInfo(name=cid, channel=channel)
        return m.open_chat(customer, skill_group="g", chat_id=cid, now=now)

    return start


CHANNEL_OPS: dict[str, Operation] = {
    op.label: op
    for op in (
        Operation("open web", opener("x1", "web", 10.0)),
        Operation("open email", opener("x2", "email", 11.0)),
        Operation("open email 2", opener("x3", "email", 11.5)),
        Operation("open whatsapp", opener("x4", "whatsapp", 12.0)),
        Operation("end w0", lambda m: m.end_chat("w0", now=13.0)),
        Operation("end b0", lambda m: m.end_chat("b0", now=14.0)),
        Operation("transfer b0 to ann", lambda m: m.transfer("b0", to_agent="ann", now=15.0)),
        Operation(
            "ann's weights go",
            lambda m: m.register_agent(in_g("ann", 3, 1, channel_limits={"email": 1}), now=16.0),
        ),
        Operation("limit", lambda m: m.set_reception_limit("ann", 2, now=17.0)),
        Operation("reconcile", lambda m: m.reconcile(now=18.0)),
    )
}

CHANNEL_PAIRS = [
    ("open web", "open email"),
    ("open email", "open email 2"),
    ("open web", "open whatsapp"),
    ("open whatsapp", "end w0"),
    ("open whatsapp", "end b0"),
    ("open web", "transfer b0 to ann"),
    ("open email", "ann's weights go"),
    ("open web", "limit"),
    ("end w0", "reconcile"),
    ("open email", "end b0"),
]


def test_the_channel_world() -> None:
    m = channel_world()
    assert m.get_chat("w0").agent_id == "ann" and m.get_chat("b0").agent_id == "bob"
    assert m.get_chat("q0").state is ChatState.QUEUED  # ann: 1 unit left; bob: 1 WhatsApp
    assert not find_violations(m.storage, drained=True)


@pytest.mark.parametrize(("a", "b"), CHANNEL_PAIRS, ids=[f"{a}+{b}" for a, b in CHANNEL_PAIRS])
def test_channel_pairs_keep_the_invariants(a: str, b: str) -> None:
    report = explore(
        channel_world,
        [CHANNEL_OPS[a], CHANNEL_OPS[b]],
        exhaustive_limit=150,
        random_runs=40,
        probes=4,
        seed=len(a) + 7 * len(b),
    )
    report.assert_ok()
    assert report.runs > 1 and report.longest > 2


def test_racing_for_the_last_unit_really_races() -> None:
    """A web and an email chat race for ann's last unit: in some interleavings the web chat
    wins it, in others the email chat; never both."""
    report = explore(
        channel_world, [CHANNEL_OPS["open web"], CHANNEL_OPS["open email"]], exhaustive_limit=500
    )
    report.assert_ok()
    assert report.final_states > 1


def test_a_triple_at_the_channel_limit() -> None:
    report = explore(
        channel_world,
        [CHANNEL_OPS["open email"], CHANNEL_OPS["open email 2"], CHANNEL_OPS["end w0"]],
        exhaustive_limit=0,
        random_runs=40,
        probes=1,
        seed=5,
    )
    report.assert_ok()


def test_the_explorer_catches_a_channel_limit_broken_by_a_split_claim() -> None:
    """Two email chats for ann (at most 1 email) through a claim split in two calls that
    checks only her reception limit: the explorer reports the channel limit broken."""

    def world() -> ChatManager:
        m = ChatManager(None, CHANNELS, ids=sequential_ids(), clock=ManualClock(1.0))
        m.register_agent(in_g("ann", 5, channel_limits={"email": 1}), now=0)
        return m

    ops = [
        Operation("email a", broken(opener("a", "email", 2.0))),
        Operation("email b", broken(opener("b", "email", 2.0))),
    ]
    report = explore(world, ops, exhaustive_limit=2000)
    assert report.violations
    assert any(
        "ACTIVE email chats over its email limit 1" in msg for msg in report.violations[0].messages
    )


# --------------------------------------------------------------------------- fairness cap

CAPPED = ChatSettings.from_dict(
    {"assignment": {"fairness": {"max_assignments": 1, "window_s": 100}}}
)
CAP = (1, 100.0)


def capped_world(storage: Storage | None = None) -> ChatManager:
    """ann and bob (group g, limit 5, cap 1 per 100 s): ann was assigned c0 at 1 s and it
    ended; bob is free of assignments."""
    m = ChatManager(
        storage, CAPPED, rng=random.Random(5), ids=sequential_ids(), clock=ManualClock(50.0)
    )
    for i, name in enumerate(("ann", "bob")):
        m.register_agent(in_g(name, 5, i), now=0)
    m.open_chat(CustomerInfo(name="c0"), skill_group="g", chat_id="c0", now=1.0)
    m.end_chat("c0", now=2.0)
    return m


CAP_OPS: dict[str, Operation] = {
    op.label: op
    for op in (
        Operation("open a", opener("a", "web", 10.0)),
        Operation("open b", opener("b", "web", 10.5)),
        Operation("open late", opener("late", "web", 101.5)),
        Operation("bob leaves", lambda m: m.set_agent_status("bob", AgentStatus.AWAY, now=11.0)),
        Operation("transfer", lambda m: m.transfer("c0", to_group="g", now=12.0)),
        Operation("reconcile", lambda m: m.reconcile(now=13.0)),
    )
}

CAP_PAIRS = [
    ("open a", "open b"),
    ("open a", "open late"),
    ("open a", "bob leaves"),
    ("open b", "reconcile"),
]

with_cap: Any = functools.partial(find_violations, fairness=CAP)


def test_the_capped_world() -> None:
    m = capped_world()
    assert m.get_chat("c0").state is ChatState.ENDED
    a = m.storage.agents.get("ann")  # type: ignore[arg-type]
    assert a is not None and a.recent == (1.0,)
    assert not with_cap(m.storage, drained=True)


@pytest.mark.parametrize(("a", "b"), CAP_PAIRS, ids=[f"{a}+{b}" for a, b in CAP_PAIRS])
def test_cap_pairs_keep_the_invariants(a: str, b: str) -> None:
    report = explore(
        capped_world,
        [CAP_OPS[a], CAP_OPS[b]],
        invariant=with_cap,
        exhaustive_limit=150,
        random_runs=40,
        probes=4,
    )
    report.assert_ok()
    assert report.runs > 1


def test_three_opens_at_the_cap() -> None:
    """Three chats race for two agents who may each take one more assignment in the window
    (ann only after 101 s): at most one each, the rest wait; never two for one agent."""
    report = explore(
        capped_world,
        [CAP_OPS["open a"], CAP_OPS["open b"], CAP_OPS["open late"]],
        invariant=with_cap,
        exhaustive_limit=0,
        random_runs=40,
        probes=1,
        seed=2,
    )
    report.assert_ok()


# --------------------------------------------------------------------------- crash points


@pytest.mark.parametrize("name", ["open email", "open whatsapp", "end w0", "transfer b0 to ann"])
def test_channel_crash_points(name: str) -> None:
    report = crash_points(channel_world, CHANNEL_OPS[name], now=50.0)
    report.assert_ok()
    assert report.points > 1 and report.repairs == {}, report.repairs


@pytest.mark.parametrize("name", ["open a", "open late"])
def test_cap_crash_points(name: str) -> None:
    report = crash_points(capped_world, CAP_OPS[name], invariant=with_cap, now=120.0)
    report.assert_ok()
    assert report.points > 1 and report.repairs == {}, report.repairs


def test_sqlite(tmp_path: Path) -> None:
    counter = itertools.count()

    def world() -> ChatManager:
        from chatmgmt.storage.sqlite import SQLiteStorage

        return channel_world(SQLiteStorage(tmp_path / f"w{next(counter)}.db"))

    report = explore(
        world,
        [CHANNEL_OPS["open web"], CHANNEL_OPS["open email"]],
        exhaustive_limit=0,
        random_runs=10,
        probes=1,
    )
    report.assert_ok()
    assert report.runs > 1
