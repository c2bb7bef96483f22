"""Interleaving explorer: reopening an ended Always On chat races the customer's message, an
admin's assignment, a purge, and another reopen; every interleaving keeps the invariants on the
stored records, and at the end the chat is open (with at most its limit per agent) or purged."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from chatmgmt import Agent, AgentStatus, ChatManager, ChatSettings, CustomerInfo
from chatmgmt.model import ChatId, ChatState, MessageRole
from chatmgmt.ports import Storage
from chatmgmt.testing import ManualClock, Operation, crash_points, explore, find_violations
from chatmgmt.testing import sequential_ids as ids

SETTINGS = ChatSettings.from_dict(
    {"reception_mode": "always_on", "retention": {"ended_chats_s": 100, "purge_on_tick": False}}
)


def build(storage: Storage | None = None) -> ChatManager:
    """ann (limit 1) served c1, which ended at 5; bob (limit 1) holds c2; cat (limit 1) is
    free. c1's retention runs out at 105."""
    m = ChatManager(storage, SETTINGS, rng=random.Random(3), ids=ids(), clock=ManualClock(50.0))
    for name in ("ann", "bob", "cat"):
        status = AgentStatus.ONLINE if name != "cat" else AgentStatus.OFFLINE
        m.register_agent(Agent(name, skill_groups={"g"}, status=status, reception_limit=1), now=0)
    m.open_chat(CustomerInfo(name="u", partner_id="u"), skill_group="g", chat_id="c1", now=1)
    m.open_chat(CustomerInfo(name="v"), skill_group="g", chat_id="c2", now=2)
    m.end_chat("c1", now=5)
    m.set_agent_status("cat", AgentStatus.ONLINE, now=6)
    return m


def c1_open_or_purged(
    storage: Storage,
    *,
    opened: Iterable[str] | None = None,
    drained: bool = False,
    allowance: Mapping[str, int] | None = None,
    **_: Any,
) -> list[str]:
    """The usual invariants; at the end of a run c1 is open (ACTIVE, or waiting in its pool:
    the usual invariants check its entry) or purged, never left ENDED by a reopen that lost."""
    found = find_violations(
        storage,
        opened=[c for c in (opened or ()) if c != "c1"],
        drained=drained,
        allowance=allowance,
    )
    if drained:
        chat = storage.chats.get(ChatId("c1"))
        if chat is not None and chat.state is ChatState.ENDED:
            found.append("c1 is still ended")
        if chat is not None and chat.ended_at is not None:
            found.append("c1 is open but keeps its end")
    return found


REOPEN_LAST = Operation("reopen_last", lambda m: m.reopen("c1", to="last_agent", by="x", now=60))
REOPEN_POOL = Operation("reopen_pool", lambda m: m.reopen("c1", by="y", now=61))
MESSAGE = Operation(
    "message", lambda m: m.send_message("c1", "back", role=MessageRole.CUSTOMER, now=62)
)
ASSIGN = Operation("assign", lambda m: m.assign("c1", "cat", by="admin", now=63))
PURGE = Operation("purge", lambda m: m.purge(now=200))  # c1's retention ran out by then
OPEN_FOR_ANN = Operation(  # a new chat for ann races the reopen for her one slot
    "open_for_ann",
    lambda m: m.open_chat(
        CustomerInfo(name="w"), skill_group="g", designated_agent="ann", chat_id="c5", now=64
    ),
)

PAIRS = [
    (REOPEN_LAST, REOPEN_POOL),
    (REOPEN_LAST, REOPEN_LAST),
    (REOPEN_LAST, MESSAGE),
    (REOPEN_POOL, MESSAGE),
    (REOPEN_LAST, ASSIGN),
    (REOPEN_POOL, ASSIGN),
    (REOPEN_LAST, OPEN_FOR_ANN),
    (MESSAGE, OPEN_FOR_ANN),
]


@pytest.mark.parametrize(("a", "b"), PAIRS, ids=[f"{a.label}+{b.label}" for a, b in PAIRS])
def test_reopen_races_keep_the_invariants(a: Operation, b: Operation) -> None:
    report = explore(
        build,
        [a, b],
        invariant=c1_open_or_purged,
        exhaustive_limit=400,
        random_runs=40,
        probes=4,
    )
    report.assert_ok()
    assert report.runs > 1 and report.longest > 2


def test_reopen_racing_a_purge_either_reopens_or_finds_it_gone() -> None:
    """A worker whose clock says c1 is still within its retention reopens it while another
    purges it: either the reopen wins (the chat is open, the purge leaves it) or the purge
    does (the reopen reads it missing: NotFoundError, an expected outcome)."""
    report = explore(build, [REOPEN_LAST, PURGE], invariant=c1_open_or_purged, exhaustive_limit=400)
    report.assert_ok()
    assert report.final_states > 1  # both outcomes happen


def test_two_reopens_end_in_different_stored_states() -> None:
    report = explore(build, [REOPEN_LAST, MESSAGE], invariant=c1_open_or_purged)
    report.assert_ok()
    assert report.final_states > 1


def test_the_last_agents_slot_goes_to_one_chat_only() -> None:
    """The reopen to ann and a new chat for ann race for her one slot: in every interleaving
    ann holds one of them (the limit invariant reads the stored records), and both outcomes
    happen: the claim is decided inside the store's unit of work, not by the earlier read."""
    holders: set[str] = set()

    def ann_holds_one(storage: Storage, **kwargs: Any) -> list[str]:
        found = c1_open_or_purged(storage, **kwargs)
        if kwargs.get("drained"):
            held = [c.id for c in storage.chats.list(state=ChatState.ACTIVE) if c.agent_id == "ann"]
            if len(held) != 1:
                found.append(f"ann holds {held}")
            holders.update(held)
        return found

    report = explore(build, [REOPEN_LAST, OPEN_FOR_ANN], invariant=ann_holds_one)
    report.assert_ok()
    assert holders == {"c1", "c5"}


def test_the_invariant_catches_a_chat_left_ended() -> None:
    report = explore(
        build,
        [Operation("noop", lambda m: m.get_chat("c1")), Operation("tick", lambda m: m.tick())],
        invariant=c1_open_or_purged,
        exhaustive_limit=20,
        random_runs=0,
        probes=0,
    )
    assert report.violations
    assert "c1 is still ended" in " ".join(report.violations[0].messages)


@pytest.mark.parametrize("op", [REOPEN_LAST, REOPEN_POOL, MESSAGE], ids=lambda o: o.label)
def test_reopen_at_each_crash_point_leaves_nothing_to_repair(op: Operation) -> None:
    report = crash_points(build, op, now=70.0)
    report.assert_ok()
    assert report.points > 1 and report.repairs == {}


def test_reopen_to_a_full_last_agent_at_each_crash_point() -> None:
    """The fallback path: the claim is refused, the reopen goes to the pool."""

    def full() -> ChatManager:
        m = build()
        m.open_chat(CustomerInfo(name="w"), skill_group="g", chat_id="c3", now=7)  # cat
        m.open_chat(
            CustomerInfo(name="z"), designated_agent="ann", chat_id="c4", skill_group="g", now=8
        )
        assert m.get_chat("c4").agent_id == "ann"
        return m

    report = crash_points(full, REOPEN_LAST, now=70.0)
    report.assert_ok()
    assert report.points > 1 and report.repairs == {}
