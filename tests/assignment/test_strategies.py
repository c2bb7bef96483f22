"""Built-in strategies, eligibility, custom strategies, per-group strategies."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from assignment.assign_helpers import agent, clock_of, customer, manager
from chatmgmt import AgentLoad, AgentStatus, Chat, ChatState
from chatmgmt.assignment import (
    LEAST_BUSY,
    LONGEST_IDLE,
    ROUND_ROBIN,
    SATURATION_LONGEST,
    SATURATION_RANDOM,
    rank_scan,
    with_tiers,
)
from chatmgmt.model import AgentId, ChatId
from chatmgmt.storage import MemoryStorage
from chatmgmt.testing import claim_ranked, claim_slot, release_slot


def open_n(m, n, **kwargs):  # type: ignore[no-untyped-def]
    out = []
    for i in range(n):
        clock_of(m).advance(1)
        out.append(m.open_chat(customer(f"u{i}-{clock_of(m).now()}"), **kwargs))
    return out


def test_round_robin_takes_turns_in_account_order() -> None:
    m = manager()
    for i, name in enumerate(["ann", "bob", "cy"]):
        m.register_agent(agent(name, order=i, limit=5))
    picks = [c.agent_id for c in open_n(m, 6)]
    assert picks == ["ann", "bob", "cy", "ann", "bob", "cy"]


def test_round_robin_skips_full_and_offline_agents_and_stays_fair_after_offline() -> None:
    m = manager()
    m.register_agent(agent("ann", order=0, limit=1))
    m.register_agent(agent("bob", order=1, limit=5))
    m.register_agent(agent("cy", order=2, limit=5))
    picks = [c.agent_id for c in open_n(m, 3)]
    assert picks == ["ann", "bob", "cy"]
    # ann is full: skipped, never waited for
    assert [c.agent_id for c in open_n(m, 2)] == ["bob", "cy"]
    m.set_agent_status("bob", AgentStatus.OFFLINE)
    assert [c.agent_id for c in open_n(m, 2)] == ["cy", "cy"]
    # bob comes back: he is the longest since his last assignment, so he goes first (fair),
    # not skipped and not flooded
    m.set_agent_status("bob", AgentStatus.ONLINE)
    assert [c.agent_id for c in open_n(m, 2)] == ["bob", "cy"]


def test_spare_capacity_vs_saturation_reference_example() -> None:
    # REFERENCE.md: A at 1/2, B at 8/10. Most free slots picks B; lowest saturation picks A.
    m = manager({"assignment": {"strategy": "saturation"}})
    m.register_agent(agent("A", limit=2, order=0))
    m.register_agent(agent("B", limit=10, order=1))
    storage = m.storage
    for i in range(1):
        claim_slot(storage, AgentId("A"), ChatId(f"a{i}"), 0.0, 0.0)
    for i in range(8):
        claim_slot(storage, AgentId("B"), ChatId(f"b{i}"), 0.0, 0.0)
    loads = storage.agents.list()
    most_free = max(loads, key=lambda ld: ld.free)
    assert most_free.agent.id == "B"
    chat = m.open_chat(customer("u1"))
    assert chat.agent_id == "A"
    assert chat.route_reason["strategy"] == "saturation"


def test_saturation_random_tiebreak_uses_injected_rng() -> None:
    def first_pick(seed: int) -> str:
        m = manager({"assignment": {"strategy": "saturation"}}, rng=random.Random(seed))
        for i in range(4):
            m.register_agent(agent(f"a{i}", limit=4, order=i))
        chat = m.open_chat(customer("u"))
        assert chat.agent_id is not None
        return chat.agent_id

    picks = {first_pick(seed) for seed in range(40)}
    assert len(picks) > 1  # ties really are broken at random
    assert first_pick(3) == first_pick(3)  # and reproducibly so


def test_saturation_longest_tiebreak_is_deterministic_round_robin() -> None:
    m = manager(
        {"assignment": {"strategy": "saturation", "saturation_tiebreak": "longest_since_assigned"}}
    )
    m.register_agent(agent("a", limit=2, order=0))
    m.register_agent(agent("b", limit=2, order=1))
    picks = [c.agent_id for c in open_n(m, 4)]
    assert sorted(picks[:2]) == ["a", "b"]
    assert sorted(picks[2:]) == ["a", "b"]


def test_least_busy_picks_fewest_chats() -> None:
    m = manager({"assignment": {"strategy": "least_busy"}})
    m.register_agent(agent("a", limit=10, order=0))
    m.register_agent(agent("b", limit=10, order=1))
    for i in range(3):
        claim_slot(m.storage, AgentId("a"), ChatId(f"x{i}"), 0.0, 0.0)
    picks = [c.agent_id for c in open_n(m, 3)]
    assert picks == ["b", "b", "b"]
    assert open_n(m, 1)[0].agent_id in {"a", "b"}


def test_longest_idle_prefers_the_agent_idle_longest() -> None:
    m = manager({"assignment": {"strategy": "longest_idle"}})
    m.register_agent(agent("a", limit=5, order=0))
    m.register_agent(agent("b", limit=5, order=1))
    first = open_n(m, 1)[0]
    assert first.agent_id == "a"
    clock_of(m).advance(10)
    m.end_chat(first.id)  # a is idle again since now; b has been idle since registration
    assert open_n(m, 1)[0].agent_id == "b"


def test_priority_tiers_wrap_the_inner_strategy() -> None:
    m = manager({"assignment": {"priority_tiers": True}})
    m.register_agent(agent("junior", tier=0, order=0, limit=5))
    m.register_agent(agent("senior1", tier=2, order=1, limit=1))
    m.register_agent(agent("senior2", tier=2, order=2, limit=1))
    picks = [c.agent_id for c in open_n(m, 4)]
    assert picks == ["senior1", "senior2", "junior", "junior"]


def test_custom_strategy_is_a_plain_callable_and_claims_are_checked() -> None:
    seen: list[int] = []

    def newest_account(eligible: Sequence[AgentLoad], chat: Chat) -> AgentLoad | None:
        seen.append(len(eligible))
        return max(eligible, key=lambda ld: ld.agent.account_order, default=None)

    m = manager(strategies={"*": newest_account})
    m.register_agent(agent("old", order=0, limit=1))
    m.register_agent(agent("new", order=5, limit=1))
    picks = [c.agent_id for c in open_n(m, 3)]
    assert picks == ["new", "old", None]
    assert seen[:2] == [2, 1]


def test_strategy_per_skill_group_with_global_default() -> None:
    m = manager(
        {"assignment": {"strategy": "round_robin", "groups": {"vip": {"strategy": "least_busy"}}}}
    )
    m.register_agent(agent("a", groups=("vip", "sales"), order=0, limit=5))
    chat_sales = m.open_chat(customer("u1"), skill_group="sales")
    chat_vip = m.open_chat(customer("u2"), skill_group="vip")
    assert chat_sales.route_reason["strategy"] == "round_robin"
    assert chat_vip.route_reason["strategy"] == "least_busy"


@pytest.mark.parametrize("status", [AgentStatus.BUSY, AgentStatus.AWAY, AgentStatus.OFFLINE])
def test_only_online_agents_are_eligible(status: AgentStatus) -> None:
    m = manager()
    m.register_agent(agent("a", status=status))
    chat = m.open_chat(customer("u"))
    assert chat.state is ChatState.QUEUED
    assert chat.route_reason["ineligible"][status.value] == 1


def test_outside_the_group_is_not_eligible() -> None:
    m = manager()
    m.register_agent(agent("a", groups=("billing",)))
    chat = m.open_chat(customer("u"), skill_group="sales")
    assert chat.state is ChatState.QUEUED
    assert m.open_chat(customer("v"), skill_group="billing").agent_id == "a"


def test_inactive_chats_stop_counting_when_the_setting_says_so() -> None:
    for counts in (True, False):
        m = manager({"assignment": {"inactive_chats_count": counts}})
        m.register_agent(agent("a", limit=1))
        first = m.open_chat(customer("u1"))
        assert first.agent_id == "a"
        m.set_inactive(first.id)
        second = m.open_chat(customer("u2"))
        if counts:
            assert second.state is ChatState.QUEUED
        else:
            assert second.agent_id == "a"


@pytest.mark.parametrize(
    "ranking",
    [
        ROUND_ROBIN,
        LEAST_BUSY,
        SATURATION_RANDOM,
        SATURATION_LONGEST,
        LONGEST_IDLE,
        with_tiers(ROUND_ROBIN),
    ],
)
def test_indexed_claim_agrees_with_the_reference_scan(ranking) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(11)
    storage = MemoryStorage()
    for i in range(60):
        storage.agents.put(
            agent(
                f"a{i}",
                limit=rng.randint(1, 4),
                order=rng.randint(0, 5),
                tier=rng.randint(0, 2),
                status=rng.choice([AgentStatus.ONLINE, AgentStatus.ONLINE, AgentStatus.AWAY]),
            ),
            float(rng.randint(0, 100)),
        )
    for step in range(150):
        eligible = [
            ld
            for ld in storage.agents.list()
            if ld.agent.status is AgentStatus.ONLINE and ld.free > 0
        ]
        expected = rank_scan(eligible, ranking)
        got = claim_ranked(
            storage, "", ranking, ChatId(f"c{step}"), frozenset(), float(step), rng.random()
        )
        assert got == (expected.agent.id if expected else None)
        if step % 3 == 0 and got is not None:
            release_slot(storage, got, ChatId(f"c{step - 3}"), float(step), rng.random())


@pytest.mark.parametrize("seed", range(5))
def test_flat_index_entries_sort_as_rank_entries(seed: int) -> None:
    """The memory index's flat entries (``rank_entry_function``) order agents exactly as
    ``rank_entry`` does, for the built-in rankings and random ones, ties included."""
    from chatmgmt.assignment._load import rank_entry, rank_entry_function
    from chatmgmt.model import Agent, Ranking, RankKey

    rng = random.Random(seed)
    loads = [
        AgentLoad(
            Agent(
                AgentId(f"a{i}"),
                reception_limit=rng.randint(1, 4),
                account_order=rng.randint(0, 3),
                tier=rng.randint(0, 2),
            ),
            chats=frozenset(ChatId(f"c{i}-{k}") for k in range(rng.randint(0, 3))),
            last_assigned_at=float(rng.randint(0, 5)),
            idle_since=float(rng.randint(0, 5)),
            tiebreak=rng.choice([0.0, 0.5, rng.random()]),
        )
        for i in range(40)
    ]
    fields = ["active", "saturation", "free", "last_assigned_at", "idle_since", "tier"]
    rankings = [
        ROUND_ROBIN,
        LEAST_BUSY,
        LONGEST_IDLE,
        SATURATION_LONGEST,
        SATURATION_RANDOM,
        Ranking("mixed", tuple(RankKey(f, rng.random() < 0.5) for f in rng.sample(fields, 3))),
        Ranking("one", (RankKey(rng.choice(fields), True),)),
    ]
    for ranking in rankings:
        entry = rank_entry_function(ranking)
        by_pair = sorted(loads, key=lambda ld: rank_entry(ld, ranking))
        by_flat = sorted(loads, key=entry)
        assert [ld.agent.id for ld in by_flat] == [ld.agent.id for ld in by_pair]
        assert all(entry(ld) == (*rank_entry(ld, ranking)[0], ld.agent.id) for ld in loads)
