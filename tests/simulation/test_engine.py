"""The engine drives the real ChatManager: deterministic traces, shifts, groups, patience."""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Sequence

import pytest

from chatmgmt.assignment import ROUND_ROBIN, with_tiers
from chatmgmt.model import AgentLoad, Chat
from chatmgmt.simulation import (
    AgentSpec,
    Empirical,
    Exponential,
    Fixed,
    LogNormal,
    PoissonArrivals,
    Scenario,
    ScenarioError,
    TraceArrivals,
    compare,
    predict,
    run_replication,
    scenario_from_dict,
    simulate,
)


def _trace(times: Sequence[float], handle: Sequence[float], **kw: object) -> TraceArrivals:
    return TraceArrivals(times, handle_s=handle, **kw)  # type: ignore[arg-type]


def test_trace_through_one_agent_gives_exact_waits() -> None:
    sc = Scenario([_trace([0, 1, 2], [10, 10, 10])], [AgentSpec("ann")], 100.0, 0.0, 5.0)
    rep = run_replication(sc, "round_robin", random.Random(1))
    assert rep.waits_s == (0.0, 9.0, 18.0)
    assert rep.waited == (False, True, True)
    assert rep.answered == (True, True, True)
    assert rep.chats == (3,)
    assert rep.occupancy[0] == pytest.approx(30 / 100)


def test_slots_are_parallel_servers() -> None:
    sc = Scenario([_trace([0, 1, 2, 3], [10, 10, 10, 10])], [AgentSpec("ann", slots=3)], 100, 0)
    rep = run_replication(sc, "least_busy", random.Random(1))
    assert rep.waits_s == (0.0, 0.0, 0.0, 7.0)  # the 4th waits for the first to end at 10


def test_patience_abandons_only_while_queued() -> None:
    trace = TraceArrivals([0, 1, 2], handle_s=[10, 10, 10], patience_s=[3, 3, 30])
    sc = Scenario([trace], [AgentSpec("ann")], 100, 0, target_s=5)
    result = simulate(sc, replications=1)
    rep = run_replication(sc, "round_robin", random.Random(0))
    # chat 0 is answered at once (its patience never matters); chat 1 leaves at 4;
    # chat 2 is answered at 10, after waiting 8 s
    assert rep.waits_s == (0.0, 3.0, 8.0)
    assert rep.abandoned == (False, True, False)
    assert rep.answered == (True, False, True)
    assert result.p_abandon.mean == pytest.approx(1 / 3)
    assert result.service_level.mean == pytest.approx(1 / 3)  # only chat 0 within 5 s


def test_shifts_bring_agents_online_and_offline() -> None:
    ann = AgentSpec("ann", shifts=[(50, 100)])
    sc = Scenario([_trace([0, 10], [10, 10])], [ann], duration_s=100, warmup_s=0)
    rep = run_replication(sc, "round_robin", random.Random(0))
    assert rep.waits_s == (50.0, 50.0)  # both wait for the shift; the second for ann's slot too
    assert rep.occupancy[0] == pytest.approx(20 / 50)  # 20 s busy over 50 s online


def test_going_offline_keeps_chats_but_takes_no_new_ones() -> None:
    ann = AgentSpec("ann", slots=2, shifts=[(0, 5)])
    bob = AgentSpec("bob", shifts=[(20, 100)])
    sc = Scenario([_trace([0, 6], [10, 10])], [ann, bob], duration_s=100, warmup_s=0)
    rep = run_replication(sc, "round_robin", random.Random(0))
    # chat 0 stays with ann after she leaves at 5; chat 1 waits for bob at 20
    assert rep.waits_s == (0.0, 14.0)
    assert rep.chats == (1, 1)


def test_customers_left_without_agents_are_neither_answered_nor_abandoned() -> None:
    sc = Scenario([_trace([0, 1], [10, 10])], [AgentSpec("ann", shifts=[(0, 5)])], 100, 0)
    rep = run_replication(sc, "round_robin", random.Random(0))
    assert rep.answered == (True, False) and rep.abandoned == (False, False)
    assert rep.waits_s[1] == 99.0  # counted up to the end of the run


def test_skill_groups_are_served_by_their_agents() -> None:
    sales = _trace([0, 1], [10, 10], group="sales")
    support = _trace([0, 1], [10, 10], group="support")
    agents = [AgentSpec("s", groups={"sales"}), AgentSpec("p", groups={"support"}, slots=2)]
    sc = Scenario([sales, support], agents, duration_s=100, warmup_s=0, target_s=5)
    result = simulate(sc, replications=1)
    assert set(result.groups) == {"sales", "support"}
    assert result.groups["sales"].mean_wait_s.mean == pytest.approx(9 / 2)
    assert result.groups["support"].mean_wait_s.mean == 0.0
    assert result.overall.customers.mean == 4


def test_an_agent_in_two_groups_serves_both() -> None:
    sales = _trace([0], [10], group="sales")
    support = _trace([1], [10], group="support")
    sc = Scenario([sales, support], [AgentSpec("ann", groups={"sales", "support"})], 100, 0)
    rep = run_replication(sc, "round_robin", random.Random(0))
    assert rep.waits_s == (0.0, 9.0)


def test_warmup_excludes_early_customers() -> None:
    sc = Scenario([_trace([0, 1, 60], [10, 10, 10])], [AgentSpec("ann")], 100, 50)
    rep = run_replication(sc, "round_robin", random.Random(0))
    assert rep.waits_s == (0.0,)
    assert rep.chats == (1,)


def test_same_seed_same_figures_and_other_seed_other_figures() -> None:
    sc = Scenario.simple(1.0, 2.0, 2, slots=2, duration_s=300, warmup_s=20)
    a = simulate(sc, "saturation", replications=2, seed=7)
    b = simulate(sc, "saturation", replications=2, seed=7)
    c = simulate(sc, "saturation", replications=2, seed=8)
    assert a.mean_wait_s.values == b.mean_wait_s.values
    assert a.jain_index.values == b.jain_index.values
    assert a.overall.customers.values != c.overall.customers.values


def test_custom_callable_policy_is_called_with_eligible_agents() -> None:
    seen: list[int] = []

    def last_in_account_order(loads: Sequence[AgentLoad], chat: Chat) -> AgentLoad | None:
        seen.append(len(loads))
        return max(loads, key=lambda ld: ld.agent.account_order)

    sc = Scenario(
        [_trace([0, 1, 2], [10, 10, 10])], [AgentSpec("a"), AgentSpec("b", slots=2)], 100, 0
    )
    result = simulate(sc, last_in_account_order, replications=1)
    assert result.policy == "last_in_account_order"
    assert result.agents["b"].chats.mean == 2 and result.agents["a"].chats.mean == 1
    assert seen == [2, 2, 1]


def test_rankings_are_policies_too() -> None:
    agents = [AgentSpec("low"), AgentSpec("high", tier=1)]
    sc = Scenario([_trace([0, 20, 40], [5, 5, 5])], agents, 100, 0)
    result = simulate(sc, with_tiers(ROUND_ROBIN), replications=1)
    assert result.policy == "tiers+round_robin"
    assert result.agents["high"].chats.mean == 3


def test_compare_accepts_named_policies() -> None:
    sc = Scenario([_trace([0, 1], [3, 3])], [AgentSpec("a"), AgentSpec("b")], 50, 0)
    out = compare(sc, {"rr": "round_robin", "busy": "least-busy"}, replications=1)
    assert list(out) == ["rr", "busy"]


def test_unknown_policy_fails_before_running() -> None:
    sc = Scenario.simple(1.0, 1.0, 1, duration_s=10, warmup_s=0)
    with pytest.raises(ScenarioError, match="unknown policy 'fastest'"):
        simulate(sc, "fastest")


@pytest.mark.parametrize(
    "build",
    [
        lambda: Scenario([], [AgentSpec("a")]),
        lambda: Scenario([PoissonArrivals(1.0)], []),
        lambda: Scenario([PoissonArrivals(1.0)], [AgentSpec("a"), AgentSpec("a")]),
        lambda: Scenario([PoissonArrivals(1.0)], [AgentSpec("a")], 100, 200),
        lambda: PoissonArrivals(0.0),
        lambda: AgentSpec("a", slots=0),
        lambda: AgentSpec("a", shifts=[(10, 5)]),
        lambda: TraceArrivals([0, 1], handle_s=[1.0]),
    ],
)
def test_invalid_scenarios_are_refused(build: object) -> None:
    with pytest.raises(ValueError):
        build()  # type: ignore[operator]


def test_distributions_have_their_means() -> None:
    rng = random.Random(3)
    for dist, tol in [
        (Exponential(300), 0.03),
        (LogNormal(300, 0.8), 0.03),
        (Fixed(42), 0.0),
        (Empirical([10, 20, 60]), 0.03),
    ]:
        draws = [dist.sample(rng) for _ in range(20_000)]
        assert sum(draws) / len(draws) == pytest.approx(dist.mean, rel=tol), dist.describe()
    assert set(Empirical([10, 20]).sample(rng) for _ in range(50)) == {10.0, 20.0}


def test_predict_only_for_erlang_scenarios() -> None:
    assert predict(Scenario.simple(1 / 60, 180, 4, slots=3)).model == "C"  # type: ignore[union-attr]
    with_patience = predict(Scenario.simple(1 / 60, 180, 4, patience_mean_s=60))
    assert with_patience is not None and with_patience.model == "A"
    assert with_patience.servers == 4
    assert predict(Scenario.simple(1 / 60, 180, 4, handle=LogNormal(180, 1))) is None
    shifted = Scenario([PoissonArrivals(0.1)], [AgentSpec("a", shifts=[(0, 100)])], 1000, 0)
    assert predict(shifted) is None


def test_scenario_from_dict_full_example() -> None:
    loaded = scenario_from_dict(
        {
            "duration_s": 600,
            "warmup_s": 60,
            "target_s": 15,
            "replications": 3,
            "seed": 4,
            "policies": ["saturation"],
            "arrivals": [
                {
                    "group": "sales",
                    "per_min": 6,
                    "handle": {"dist": "lognormal", "mean_s": 60, "cv": 0.5},
                    "patience": 90,
                },
                {
                    "group": "support",
                    "trace": [{"at_s": 5, "handle_s": 30}, {"at_s": 1, "handle_s": 20}],
                },
            ],
            "agents": [
                {"id": "ann", "slots": 2, "groups": ["sales", "support"], "shifts": [[0, 300]]},
                {"count": 2, "prefix": "s", "groups": ["support"]},
            ],
            "settings": {"assignment": {"saturation_tiebreak": "longest_since_assigned"}},
        }
    )
    sc = loaded.scenario
    assert [a.id for a in sc.agents] == ["ann", "s01", "s02"]
    assert sc.groups == ("sales", "support")
    assert loaded.policies == ("saturation",) and loaded.replications == 3 and loaded.seed == 4
    trace = sc.arrivals[1]
    assert isinstance(trace, TraceArrivals)
    assert trace.times_s == (1.0, 5.0) and trace.handle_s == (20.0, 30.0)
    result = simulate(sc, "saturation", replications=2)
    assert math.isfinite(result.mean_wait_s.mean)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"arrivals": [], "agents": [{"id": "a"}]}, "arrivals: must be a non-empty list"),
        ({"arrivals": [{"per_min": -1}], "agents": [{"id": "a"}]}, r"arrivals\[0\].per_min"),
        (
            {"arrivals": [{"per_min": 1, "handle": {"dist": "gamma"}}], "agents": [{"id": "a"}]},
            r"arrivals\[0\].handle.dist",
        ),
        ({"arrivals": [{"per_min": 1}], "agents": [{"id": "a", "slots": 0}]}, r"agents\[0\].slots"),
        ({"arrivals": [{"per_min": 1}], "agents": [{"id": "a"}], "colour": 1}, "colour"),
        (
            {
                "arrivals": [{"per_min": 1}],
                "agents": [{"id": "a"}],
                "settings": {"assignment": {"strategy": "fastest"}},
            },
            "settings",
        ),
    ],
)
def test_scenario_from_dict_names_the_bad_field(data: dict[str, object], message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        scenario_from_dict(data)


@pytest.mark.parametrize(("agents", "slots", "rate"), [(1, 1, 0.5), (3, 1, 2.0), (2, 3, 4.0)])
def test_waits_equal_the_fcfs_multiserver_recursion(agents: int, slots: int, rate: float) -> None:
    """Customer by customer, the real core behaves as an FCFS queue with agents x slots servers.

    The Kiefer-Wolfowitz recursion on the same arrivals and handle times gives each exact wait.
    """
    sc = Scenario.simple(rate, 1.0, agents, slots=slots, duration_s=300, warmup_s=0)
    rep = run_replication(sc, "round_robin", random.Random(11))
    replay = random.Random(11)
    replay.getrandbits(64)  # the manager's seed is drawn first
    free = [0.0] * (agents * slots)
    expected = []
    for arrival in sc.generate(replay):
        start = max(arrival.time_s, heapq.heappop(free))
        expected.append(start - arrival.time_s)
        heapq.heappush(free, start + arrival.handle_s)
    assert rep.waits_s == pytest.approx(expected, abs=1e-9)
    assert sum(w > 0 for w in expected) > 0  # the case does queue
