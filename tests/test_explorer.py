"""The interleaving explorer: every pair of manager operations, run through the interleavings
of their storage calls, keeps every invariant after every call (chatmgmt.testing.explore).

Sizes are kept small for CI; ``CHATMGMT_EXPLORE_SCALE=10`` runs ten times as many schedules.
"""

from __future__ import annotations

import itertools
import os
import random
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest

from chatmgmt import Agent, AgentStatus, ChatManager, ChatSettings, CustomerInfo
from chatmgmt._core import Op
from chatmgmt.model import AgentId, ChatState, MessageRole
from chatmgmt.ports import PICKED, AgentStore, Claim, RankedClaim, Storage
from chatmgmt.testing import (
    ManualClock,
    Operation,
    check_invariants,
    explore,
    find_violations,
    replay,
    sequential_ids,
)
from explorer_world import standard_world

SCALE = int(os.environ.get("CHATMGMT_EXPLORE_SCALE", "1"))
SETTINGS = ChatSettings()


def build(storage: Storage | None = None) -> ChatManager:
    """ann and bob (group g, limit 1) hold c1 and c2; c3 waits in queue/g; cat (group h,
    limit 1) is free; dan (group g, limit 1) is OFFLINE."""
    return standard_world(SETTINGS, storage)


def op_open(m: ChatManager) -> object:
    return m.open_chat(CustomerInfo(name="new"), skill_group="g", chat_id="c9", now=10.0)


OPERATIONS: dict[str, Operation] = {
    op.label: op
    for op in (
        Operation("open", op_open),
        Operation("end", lambda m: m.end_chat("c1", now=11.0)),
        Operation("abandon", lambda m: m.abandon("c3", now=12.0)),
        Operation("transfer_group", lambda m: m.transfer("c2", to_group="g", now=13.0)),
        Operation("transfer_agent", lambda m: m.transfer("c2", to_agent="cat", now=14.0)),
        Operation("drain", lambda m: m._core.drain("queue/g", 15.0)),
        Operation(
            "message",
            lambda m: m.send_message("c1", "hello", role=MessageRole.CUSTOMER, now=16.0),
        ),
        Operation("status", lambda m: m.set_agent_status("dan", AgentStatus.ONLINE, now=17.0)),
        Operation("limit", lambda m: m.set_reception_limit("ann", 2, now=18.0)),
        Operation("reconcile", lambda m: m.reconcile(now=19.0)),
    )
}

PAIRS = list(itertools.combinations(OPERATIONS, 2))


def test_the_world_holds_the_invariants() -> None:
    m = build()
    check_invariants(m.storage, opened=["c1", "c2", "c3"], drained=True)
    assert m.get_chat("c3").queue == "queue/g"


@pytest.mark.parametrize(("a", "b"), PAIRS, ids=[f"{a}+{b}" for a, b in PAIRS])
def test_every_pair_keeps_the_invariants(a: str, b: str) -> None:
    report = explore(
        build,
        [OPERATIONS[a], OPERATIONS[b]],
        exhaustive_limit=120 * SCALE,
        random_runs=40 * SCALE,
        probes=4,
        seed=len(a) * 31 + len(b),
    )
    report.assert_ok()
    assert report.runs > 1
    assert report.longest > 2  # both operations made storage calls
    assert report.final_states >= 1


def test_pairs_really_interleave() -> None:
    """Races change outcomes: the same pair ends in different stored states."""
    racing = [("end", "abandon"), ("end", "message"), ("abandon", "status"), ("status", "limit")]
    for a, b in racing:
        report = explore(build, [OPERATIONS[a], OPERATIONS[b]], exhaustive_limit=200)
        report.assert_ok()
        assert report.final_states > 1, (a, b, report)


TRIPLES = [
    ("open", "end", "transfer_group"),
    ("end", "status", "limit"),
    ("open", "abandon", "reconcile"),
]


@pytest.mark.parametrize("ops", TRIPLES, ids=["+".join(t) for t in TRIPLES])
def test_random_triples_keep_the_invariants(ops: tuple[str, str, str]) -> None:
    report = explore(
        build,
        [OPERATIONS[name] for name in ops],
        exhaustive_limit=0,
        random_runs=40 * SCALE,
        probes=1,
        seed=3,
    )
    report.assert_ok()
    assert report.runs > 1 and not report.exhaustive


def test_small_cases_are_exhaustive() -> None:
    """A pair whose tree is small is run completely, each interleaving once."""
    report = explore(
        build, [OPERATIONS["message"], OPERATIONS["limit"]], exhaustive_limit=5000, probes=4
    )
    report.assert_ok()
    assert report.exhaustive and report.interleavings > 1
    assert report.interleavings == report.runs - 4


def test_sqlite(tmp_path: Path) -> None:
    """The explorer drives any sync storage: here a SQLite file per world."""
    from chatmgmt.storage.sqlite import SQLiteStorage

    counter = itertools.count()

    def world() -> ChatManager:
        return build(SQLiteStorage(tmp_path / f"w{next(counter)}.db"))

    report = explore(
        world,
        [OPERATIONS["end"], OPERATIONS["transfer_group"]],
        exhaustive_limit=0,
        random_runs=12 * SCALE,
        probes=1,
    )
    report.assert_ok()
    assert report.runs > 1 and report.final_states > 1


# --------------------------------------------------------------------------- it can fail


def split_claims(gen: Generator[Op, Any, Any]) -> Generator[Op, Any, Any]:
    """A BROKEN unit of work: a claim is checked by one storage call (read the agents) and
    taken by another (a forced claim), so another operation can claim in between."""
    result: Any = None
    error: BaseException | None = None
    while True:
        try:
            op = gen.send(result) if error is None else gen.throw(error)
        except StopIteration as stop:
            return stop.value
        result, error = None, None
        change = op.args[0] if op.fn is Storage.apply else None
        claim = getattr(change, "claim", None)
        if change is not None and (
            isinstance(claim, RankedClaim) or (isinstance(claim, Claim) and not claim.force)
        ):
            group = claim.group if isinstance(claim, RankedClaim) else None
            loads = yield Op(AgentStore.list, (group,), {})
            free = [
                ld.agent.id
                for ld in loads
                if ld.agent.status is AgentStatus.ONLINE
                and len(ld.chats) < ld.agent.reception_limit
                and (isinstance(claim, RankedClaim) or ld.agent.id == claim.agent_id)
            ]
            if not free:
                from chatmgmt.errors import PreconditionFailed

                reason = "no_agent" if isinstance(claim, RankedClaim) else "agent_unavailable"
                error = PreconditionFailed(reason, change.chat_id)
                continue
            agent = AgentId(free[0])
            bound = change.bind(agent) if isinstance(claim, RankedClaim) else change
            import attrs

            forced = attrs.evolve(bound, claim=Claim(agent, force=True))
            try:
                result = yield Op(Storage.apply, (forced,), {})
            except Exception as exc:  # handed back as the storage would
                error = exc
            continue
        try:
            result = yield op
        except Exception as exc:
            error = exc


def broken(start: Callable[[ChatManager], object]) -> Callable[[ChatManager], object]:
    def run(m: ChatManager) -> object:
        gen = start(m)
        assert isinstance(gen, Generator)
        return split_claims(gen)

    return run


def test_the_explorer_catches_a_claim_split_in_two_steps() -> None:
    """Two opens racing for ann's last slot through a claim split in two calls: the explorer
    finds the interleaving where both read a free slot, and reports ann over her limit."""

    def world() -> ChatManager:
        m = ChatManager(
            None, SETTINGS, rng=random.Random(1), ids=sequential_ids(), clock=ManualClock(1.0)
        )
        m.register_agent(
            Agent("ann", skill_groups={"g"}, status=AgentStatus.ONLINE, reception_limit=1), now=0
        )
        return m

    def opener(cid: str) -> Callable[[ChatManager], object]:
        return lambda m: m.open_chat(CustomerInfo(name=cid), skill_group="g", chat_id=cid, now=2)

    ops = [Operation("open a", broken(opener("a"))), Operation("open b", broken(opener("b")))]
    report = explore(world, ops, exhaustive_limit=2000)
    assert report.violations, "the explorer missed a claim split in two steps"
    found = report.violations[0]
    assert any(m.startswith("limit: agent 'ann' has 2 ACTIVE chats") for m in found.messages)
    with pytest.raises(AssertionError, match="over its limit"):
        report.assert_ok()
    # the schedule replays to the same violation
    _m, again = replay(world, ops, found.schedule)
    assert again is not None and again.messages == found.messages
    # the same operations, unbroken, hold
    fixed = [Operation("open a", opener("a")), Operation("open b", opener("b"))]
    explore(world, fixed, exhaustive_limit=2000).assert_ok()


def test_find_violations_reads_records_not_counters() -> None:
    """A chat ACTIVE with an agent whose slot does not hold it is reported."""
    from chatmgmt.model import evolve
    from chatmgmt.ports import Change

    m = build()
    c3 = m.get_chat("c3")
    lost = evolve(
        c3, state=ChatState.ACTIVE, agent_id=AgentId("ann"), queue=None, version=c3.version + 1
    )
    m.storage.apply(Change(c3.id, c3.version, 50.0, chat=lost, remove=("queue/g",)))
    found = find_violations(m.storage)
    assert any(v.startswith("limit: agent 'ann' has 2 ACTIVE chats") for v in found), found
    assert any(v.startswith("counters: agent 'ann'") for v in found), found
    assert not find_violations(m.storage, allowance={"ann": 2}, opened=["c1"])[0].startswith(
        "limit"
    )
    assert PICKED not in str(found)
