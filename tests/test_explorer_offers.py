"""Offers and pull mode through the interleaving explorer and the crash points: accept vs
expire, decline vs end, two agents taking one chat, take vs drain... every interleaving of their
storage calls keeps the invariants, checked on the stored chat records (a pending offer holds a
slot: it counts against the agent's limit)."""

from __future__ import annotations

import functools
import itertools
import random
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

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

OFFERS = ChatSettings.from_dict({"assignment": {"offers": {"enabled": True, "timeout_s": 30}}})
PULL = ChatSettings.from_dict({"assignment": {"groups": {"p": {"pull": True}}}})


def offers_world(storage: Storage | None = None) -> ChatManager:
    """Offers on in group g (limit 1 each): c1 offered to ann, c2 accepted by bob, c3 offered
    to cat, c4 queued; dan (g) is OFFLINE. The offers expire at 31 and 33."""
    m = ChatManager(
        storage, OFFERS, rng=random.Random(7), ids=sequential_ids(), clock=ManualClock(100.0)
    )
    for i, (name, status) in enumerate(
        (
            ("ann", AgentStatus.ONLINE),
            ("bob", AgentStatus.ONLINE),
            ("cat", AgentStatus.ONLINE),
            ("dan", AgentStatus.OFFLINE),
        )
    ):
        agent = Agent(name, skill_groups={"g"}, status=status, reception_limit=1, account_order=i)
        m.register_agent(agent, now=0)
    for i in (1, 2, 3, 4):
        m.open_chat(CustomerInfo(name=f"c{i}"), skill_group="g", chat_id=f"c{i}", now=float(i))
    m.accept_offer("c2", "bob", now=5.0)
    return m


def _no_offer_to_a_decliner(
    storage: Storage,
    *,
    opened: Iterable[str] | None = None,
    drained: bool = False,
    allowance: Mapping[str, int] | None = None,
) -> Sequence[str]:
    out = list(find_violations(storage, opened=opened, drained=drained, allowance=allowance))
    for chat in storage.chats.list():
        if chat.state.holds_slot and chat.agent_id in chat.excluded:
            out.append(f"offers: chat {chat.id!r} is with {chat.agent_id!r}, who declined it")
    return out


OFFER_OPS: dict[str, Operation] = {
    op.label: op
    for op in (
        Operation("accept", lambda m: m.accept_offer("c1", "ann", now=10.0)),
        Operation("decline", lambda m: m.decline_offer("c1", "ann", reason="busy", now=11.0)),
        Operation("expire", lambda m: m.tick(40.0)),
        Operation("abandon", lambda m: m.abandon("c1", now=12.0)),
        Operation("end_other", lambda m: m.end_chat("c2", now=13.0)),
        Operation("decline_other", lambda m: m.decline_offer("c3", "cat", now=14.0)),
        Operation("status", lambda m: m.set_agent_status("dan", AgentStatus.ONLINE, now=15.0)),
        Operation("reconcile", lambda m: m.reconcile(now=16.0)),
        Operation("ann_leaves", lambda m: m.set_agent_status("ann", AgentStatus.OFFLINE, now=17.0)),
    )
}

OFFER_PAIRS = [
    ("accept", "expire"),
    ("accept", "decline"),
    ("decline", "abandon"),
    ("decline", "end_other"),
    ("decline", "decline_other"),
    ("expire", "end_other"),
    ("expire", "abandon"),
    ("decline", "status"),
    ("accept", "reconcile"),
    ("decline", "reconcile"),
    ("accept", "ann_leaves"),  # ann accepts while she goes offline: the withdrawal
    ("decline", "ann_leaves"),  # of her offer and her own answer race on the chat
    ("expire", "ann_leaves"),
]


def test_the_offers_world_holds_the_invariants() -> None:
    m = offers_world()
    assert [m.get_chat(c).state for c in ("c1", "c2", "c3", "c4")] == [
        ChatState.OFFERED,
        ChatState.ACTIVE,
        ChatState.OFFERED,
        ChatState.QUEUED,
    ]
    assert not _no_offer_to_a_decliner(m.storage, drained=True)


@pytest.mark.parametrize(("a", "b"), OFFER_PAIRS, ids=[f"{a}+{b}" for a, b in OFFER_PAIRS])
def test_offer_pairs_keep_the_invariants(a: str, b: str) -> None:
    report = explore(
        offers_world,
        [OFFER_OPS[a], OFFER_OPS[b]],
        invariant=_no_offer_to_a_decliner,
        exhaustive_limit=120,
        random_runs=40,
        probes=4,
        seed=len(a) * 31 + len(b),
    )
    report.assert_ok()
    assert report.runs > 1 and report.longest > 2


def test_accept_against_expiry_one_wins() -> None:
    """The acceptance and the expiry race on the chat's version: either ann has the chat
    (ACTIVE) and the expiry did not fire, or the offer expired and the acceptance failed."""
    report = explore(offers_world, [OFFER_OPS["accept"], OFFER_OPS["expire"]], exhaustive_limit=400)
    report.assert_ok()
    outcomes = {o[0] for o in report.outcomes}
    assert "ok" in outcomes  # some schedules accept first
    assert outcomes - {"ok"}  # and in some the expiry wins: the acceptance fails
    assert report.final_states > 1


@pytest.mark.parametrize("name", list(OFFER_OPS))
def test_offer_operations_at_each_crash_point(name: str) -> None:
    report = crash_points(
        offers_world, OFFER_OPS[name], invariant=_no_offer_to_a_decliner, now=50.0
    )
    report.assert_ok()
    assert report.points > 1
    assert report.repairs == {}, report.repairs


def pull_world(storage: Storage | None = None) -> ChatManager:
    """Group p in pull mode: ann (limit 1) and bob (limit 2) serve it; c1, c2, c3 wait in
    queue/p in that order; eve serves g (push) and holds nothing."""
    m = ChatManager(
        storage, PULL, rng=random.Random(3), ids=sequential_ids(), clock=ManualClock(100.0)
    )
    for name, groups, limit in (("ann", {"p"}, 1), ("bob", {"p"}, 2), ("eve", {"g"}, 1)):
        agent = Agent(name, skill_groups=groups, status=AgentStatus.ONLINE, reception_limit=limit)
        m.register_agent(agent, now=0)
    for i in (1, 2, 3):
        m.open_chat(CustomerInfo(name=f"c{i}"), skill_group="p", chat_id=f"c{i}", now=float(i))
    return m


# pull-mode queues never drain by themselves: the "drained" check does not apply to them
_pull_invariant = functools.partial(find_violations, off_duty=["p"])

PULL_OPS: dict[str, Operation] = {
    op.label: op
    for op in (
        Operation("ann_next", lambda m: m.take_chat("ann", now=10.0)),
        Operation("ann_next_again", lambda m: m.take_chat("ann", group="p", now=10.5)),
        Operation("bob_next", lambda m: m.take_chat("bob", now=11.0)),
        Operation("ann_c2", lambda m: m.take_chat("ann", chat_id="c2", now=12.0)),
        Operation("bob_c2", lambda m: m.take_chat("bob", chat_id="c2", now=13.0)),
        Operation("abandon", lambda m: m.abandon("c1", now=14.0)),
        Operation("drain", lambda m: m._core.drain("queue/p", 15.0)),
        Operation("limit", lambda m: m.set_reception_limit("ann", 0, now=16.0)),
        Operation("reconcile", lambda m: m.reconcile(now=17.0)),
    )
}

PULL_PAIRS = [
    ("ann_next", "bob_next"),
    ("ann_c2", "bob_c2"),
    ("ann_next", "ann_next_again"),
    ("ann_next", "abandon"),
    ("ann_next", "drain"),
    ("bob_c2", "drain"),
    ("ann_next", "limit"),
    ("bob_next", "reconcile"),
]


@pytest.mark.parametrize(("a", "b"), PULL_PAIRS, ids=[f"{a}+{b}" for a, b in PULL_PAIRS])
def test_pull_pairs_keep_the_invariants(a: str, b: str) -> None:
    report = explore(
        pull_world,
        [PULL_OPS[a], PULL_OPS[b]],
        invariant=_pull_invariant,
        exhaustive_limit=120,
        random_runs=40,
        probes=4,
        seed=len(a) * 17 + len(b),
    )
    report.assert_ok()
    assert report.runs > 1 and report.longest > 2


def test_two_agents_taking_one_chat_give_it_to_one() -> None:
    report = explore(
        pull_world,
        [PULL_OPS["ann_c2"], PULL_OPS["bob_c2"]],
        invariant=_pull_invariant,
        exhaustive_limit=400,
    )
    report.assert_ok()
    assert set(report.outcomes) == {("ok", "AssignmentError"), ("AssignmentError", "ok")}


def test_one_agent_at_its_limit_takes_one() -> None:
    """ann (limit 1) takes twice at once: one take succeeds, the other finds her full."""
    report = explore(
        pull_world,
        [PULL_OPS["ann_next"], PULL_OPS["ann_next_again"]],
        invariant=_pull_invariant,
        exhaustive_limit=400,
    )
    report.assert_ok()
    assert set(report.outcomes) == {("ok", "AssignmentError"), ("AssignmentError", "ok")}


@pytest.mark.parametrize("name", ["ann_next", "bob_c2", "abandon", "reconcile"])
def test_pull_operations_at_each_crash_point(name: str) -> None:
    report = crash_points(pull_world, PULL_OPS[name], invariant=_pull_invariant, now=50.0)
    report.assert_ok()
    assert report.points > 1
    assert report.repairs == {}, report.repairs


def test_sqlite(tmp_path: Path) -> None:
    from chatmgmt.storage.sqlite import SQLiteStorage

    counter = itertools.count()

    def offers() -> ChatManager:
        return offers_world(SQLiteStorage(tmp_path / f"o{next(counter)}.db"))

    def pull() -> ChatManager:
        return pull_world(SQLiteStorage(tmp_path / f"p{next(counter)}.db"))

    explore(
        offers, [OFFER_OPS["decline"], OFFER_OPS["end_other"]], random_runs=20, probes=2
    ).assert_ok()
    explore(
        pull,
        [PULL_OPS["ann_c2"], PULL_OPS["bob_c2"]],
        invariant=_pull_invariant,
        random_runs=20,
        probes=2,
    ).assert_ok()
    crash_points(offers, OFFER_OPS["expire"], now=50.0).assert_ok()
