"""The simulator agrees with Erlang C and Erlang A, and policies differ only in fairness.

Every check uses several replications after a warm-up, a fixed seed and a Student t interval:
a theory value must lie inside the 99.9 % interval (about 25 checks share the module: at
99.9 % a correct simulator passes them all for ~97 % of seeds), and the 95 % interval must be
tight enough for the check to mean something. Arrivals, handle times and patience are drawn
from the seeded generators before the manager runs, so these figures do not move when the
core changes how it uses its own randomness. The module runs in about 20 s.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from chatmgmt.model import AgentLoad, Chat
from chatmgmt.simulation import (
    AgentSpec,
    ErlangResult,
    Estimate,
    Exponential,
    PoissonArrivals,
    Scenario,
    SimulationResult,
    compare,
    estimate,
    predict,
    simulate,
)

CONFIDENCE = 0.95
ACCEPT = 0.999


def _inside(est: Estimate, value: float) -> bool:
    return estimate(est.values, ACCEPT).contains(value)


def _check(result: SimulationResult, theory: ErlangResult, widths: dict[str, float]) -> None:
    pairs = {
        "p_wait": (result.p_wait, theory.p_wait),
        "mean_wait_s": (result.mean_wait_s, theory.mean_wait),
        "service_level": (result.service_level, theory.service_level),
        "p_abandon": (result.p_abandon, theory.p_abandon),
        "occupancy": (result.occupancy, theory.occupancy),
    }
    for name, (est, expected) in pairs.items():
        assert _inside(est, expected), f"{name}: theory {expected:.4f} outside {est}"
        if name in widths:
            assert est.half_width <= widths[name], f"{name}: interval too wide: {est}"


@pytest.fixture(scope="module")
def mm1() -> tuple[SimulationResult, ErlangResult]:
    sc = Scenario.simple(0.5, 1.0, 1, duration_s=2100, warmup_s=100, target_s=1.0)
    theory = predict(sc)
    assert theory is not None
    return simulate(sc, replications=8, seed=1, confidence=CONFIDENCE), theory


def test_mm1_matches_erlang_c(mm1: tuple[SimulationResult, ErlangResult]) -> None:
    result, theory = mm1
    assert theory.p_wait == pytest.approx(0.5) and theory.mean_wait == pytest.approx(1.0)
    _check(result, theory, {"p_wait": 0.03, "mean_wait_s": 0.2, "service_level": 0.04})
    p90 = result.overall.wait_p90_s
    assert _inside(p90, theory.wait_percentile(0.9)), p90


def test_mm3_matches_erlang_c() -> None:
    sc = Scenario.simple(2.0, 1.0, 3, duration_s=650, warmup_s=50, target_s=0.5)
    theory = predict(sc)
    assert theory is not None and theory.p_wait == pytest.approx(4 / 9)
    result = simulate(sc, "least_busy", replications=8, seed=2, confidence=CONFIDENCE)
    _check(result, theory, {"p_wait": 0.07, "mean_wait_s": 0.2, "service_level": 0.06})


def test_agents_with_several_slots_are_mmck() -> None:
    # 2 agents x 3 slots, handle time independent of load: M/M/6
    sc = Scenario.simple(4.0, 1.0, 2, slots=3, duration_s=330, warmup_s=30, target_s=0.25)
    theory = predict(sc)
    assert theory is not None and theory.servers == 6
    result = simulate(sc, "saturation", replications=8, seed=3, confidence=CONFIDENCE)
    _check(result, theory, {"p_wait": 0.07, "mean_wait_s": 0.1, "service_level": 0.06})
    assert _inside(result.overall.wait_p90_s, theory.wait_percentile(0.9))


def test_abandonment_matches_erlang_a() -> None:
    # 3 Erlangs offered to 3 slots: unstable without abandonment, fine with patience
    sc = Scenario.simple(
        3.0, 1.0, 3, patience_mean_s=2.0, duration_s=530, warmup_s=30, target_s=0.5
    )
    theory = predict(sc)
    assert theory is not None and theory.model == "A"
    result = simulate(sc, replications=8, seed=4, confidence=CONFIDENCE)
    _check(
        result,
        theory,
        {"p_wait": 0.04, "mean_wait_s": 0.06, "service_level": 0.05, "p_abandon": 0.03},
    )
    # P(abandon) = θ·E[Wq] holds replication by replication, up to sampling noise
    theta = 0.5
    gaps = [
        pa - theta * mw
        for pa, mw in zip(result.p_abandon.values, result.mean_wait_s.values, strict=True)
    ]
    assert _inside(estimate(gaps), 0.0)


def packing(loads: Sequence[AgentLoad], chat: Chat) -> AgentLoad | None:
    """A custom, work-conserving but unfair policy: fill agents in account order."""
    return min(loads, key=lambda ld: ld.agent.account_order)


@pytest.fixture(scope="module")
def heterogeneous() -> tuple[Scenario, dict[str, SimulationResult]]:
    # limits 2, 2, 2 and 6: 12 slots, 7 Erlangs offered
    stream = PoissonArrivals(7.0, handle=Exponential(1.0))
    agents = [AgentSpec(f"a{i}", k) for i, k in enumerate((2, 2, 2, 6))]
    sc = Scenario([stream], agents, duration_s=170, warmup_s=20, target_s=0.25)
    policies = ["round_robin", "least_busy", "saturation", packing]
    return sc, compare(sc, policies, replications=5, seed=5, confidence=CONFIDENCE)


def test_work_conserving_policies_give_the_same_queue_figures(
    heterogeneous: tuple[Scenario, dict[str, SimulationResult]],
) -> None:
    sc, results = heterogeneous
    theory = predict(sc)
    assert theory is not None
    for name in ("p_wait", "mean_wait_s", "service_level"):
        for a in results.values():
            for b in results.values():
                est_a, est_b = getattr(a, name), getattr(b, name)
                assert _inside(est_a, est_b.mean), (name, a.policy, b.policy)
    for result in results.values():
        _check(result, theory, {})
    # With common random numbers (same customers for every policy) an FCFS, work-conserving
    # core makes the queue the same customer by customer, whoever serves: identical figures.
    waits = {r.waits_s for r in results.values()}
    assert len(waits) == 1


def test_fairness_differs_between_policies(
    heterogeneous: tuple[Scenario, dict[str, SimulationResult]],
) -> None:
    _, results = heterogeneous
    sat, busy, pack = results["saturation"], results["least_busy"], results["packing"]
    # paired over replications (same customers): saturation evens occupancy out
    for other in (busy, pack, results["round_robin"]):
        jain_gain = [
            s - o for s, o in zip(sat.jain_index.values, other.jain_index.values, strict=True)
        ]
        assert estimate(jain_gain, ACCEPT).low > 0, other.policy
        spread_cut = [
            o - s for s, o in zip(sat.max_min_load.values, other.max_min_load.values, strict=True)
        ]
        assert estimate(spread_cut, ACCEPT).low > 0, other.policy
    # least busy ignores the limits: the 6-slot agent is the least occupied
    occ = {a: f.occupancy.mean for a, f in busy.agents.items()}
    assert min(occ, key=occ.__getitem__) == "a3"
    # packing loads the first agent most
    pocc = {a: f.occupancy.mean for a, f in pack.agents.items()}
    assert max(pocc, key=pocc.__getitem__) == "a0"
