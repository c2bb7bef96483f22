"""Summaries over replications: queue figures, fairness, VIP, sticky and auto-transfer figures
with confidence intervals; :func:`simulate` and :func:`compare` (the loop is in
:mod:`._replication`)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from .._stats import Estimate, estimate, jain_index, percentile
from ..assignment._leave import leaves
from ..model import AgentStatus
from ..settings import StrategyName
from ._policy import POLICY_NAMES, Policy, Variant, policy_name, resolve_policy
from ._replication import Replication, run_replication
from ._scenario import Scenario, ScenarioError

__all__ = [
    "POLICY_NAMES",
    "AgentFigures",
    "Policy",
    "QueueFigures",
    "Replication",
    "SimulationResult",
    "Variant",
    "compare",
    "policy_name",
    "run_replication",
    "simulate",
]

ProgressCallback = Callable[[int, int], None]


@attrs.frozen
class QueueFigures:
    """Queue figures of one skill group (or all), each an :class:`Estimate` over replications.

    ``p_wait``: share of customers who queued at all; ``mean_wait_s`` and ``wait_p50_s`` /
    ``wait_p90_s`` / ``wait_p99_s``: time in queue (answered or not); ``service_level``: share
    answered within the target; ``p_abandon``: share that left the queue; ``customers``:
    measured arrivals per replication.
    """

    customers: Estimate
    p_wait: Estimate
    mean_wait_s: Estimate
    wait_p50_s: Estimate
    wait_p90_s: Estimate
    wait_p99_s: Estimate
    service_level: Estimate
    p_abandon: Estimate


@attrs.frozen
class AgentFigures:
    """One agent's ``occupancy`` (busy slots over slots while online) and ``chats`` taken."""

    occupancy: Estimate
    chats: Estimate


def _queue_figures(
    reps: Sequence[Replication],
    group: str | None,
    target: float,
    confidence: float,
    vip: bool | None = None,
) -> QueueFigures:
    cols: dict[str, list[float]] = {
        k: [] for k in ("n", "pw", "mw", "p50", "p90", "p99", "sl", "pa")
    }
    for rep in reps:
        idx = [
            i
            for i, g in enumerate(rep.groups)
            if (group is None or g == group) and (vip is None or rep.vip[i] is vip)
        ]
        n = len(idx)
        cols["n"].append(n)
        if n == 0:
            for k in ("pw", "mw", "p50", "p90", "p99", "sl", "pa"):
                cols[k].append(math.nan)
            continue
        waits = sorted(rep.waits_s[i] for i in idx)
        cols["pw"].append(sum(rep.waited[i] for i in idx) / n)
        cols["mw"].append(math.fsum(waits) / n)
        cols["p50"].append(percentile(waits, 0.50))
        cols["p90"].append(percentile(waits, 0.90))
        cols["p99"].append(percentile(waits, 0.99))
        cols["sl"].append(sum(rep.answered[i] and rep.waits_s[i] <= target for i in idx) / n)
        cols["pa"].append(sum(rep.abandoned[i] for i in idx) / n)
    e = {k: estimate(v, confidence) for k, v in cols.items()}
    # a t interval may cross a natural bound: clip shares to [0, 1] and times to >= 0
    for k in e:
        top = 1.0 if k in ("pw", "sl", "pa") else math.inf
        est = e[k]
        e[k] = attrs.evolve(est, low=max(0.0, est.low), high=min(top, est.high))
    return QueueFigures(e["n"], e["pw"], e["mw"], e["p50"], e["p90"], e["p99"], e["sl"], e["pa"])


@attrs.frozen
class SimulationResult:
    """What :func:`simulate` measured for one policy, with confidence intervals.

    ``overall`` and ``groups`` hold the queue figures; ``agents`` each agent's occupancy and
    chats; ``occupancy`` is busy slot-time over online slot-time, all agents together.
    Fairness is ``jain_index`` (Jain's index of agent occupancies: 1 = perfectly even) and
    ``max_min_load`` (highest over lowest agent occupancy). ``waits_s`` pools every measured
    wait of every replication (sorted), for charts. The queue figures are also reachable
    directly (``result.p_wait`` ...). ``classes`` holds the queue figures of ``"vip"`` and
    ``"regular"`` customers when the scenario has VIPs; ``p_same_agent`` the share of returning
    customers answered by their last agent (None: no returning customer); ``auto_transfers``
    the automatic transfers per customer (None: auto-transfer off); with a leave policy that
    moves chats, ``leave_moves`` (moves per customer) and ``rewait_s`` (the mean time a moved
    chat waited for its next agent; NaN when none moved); with offers on, ``offer_declines``
    (offers declined or run out, per customer).
    """

    policy: str
    replications: int
    confidence: float
    target_s: float
    overall: QueueFigures
    groups: Mapping[str, QueueFigures]
    agents: Mapping[str, AgentFigures]
    occupancy: Estimate
    jain_index: Estimate
    max_min_load: Estimate
    waits_s: tuple[float, ...] = attrs.field(repr=False)
    classes: Mapping[str, QueueFigures] = attrs.field(factory=dict)
    p_same_agent: Estimate | None = None
    auto_transfers: Estimate | None = None
    leave_moves: Estimate | None = None
    rewait_s: Estimate | None = None
    offer_declines: Estimate | None = None

    @property
    def p_wait(self) -> Estimate:
        """Share of customers who queued at all."""
        return self.overall.p_wait

    @property
    def mean_wait_s(self) -> Estimate:
        """Mean time in queue (answered or not), seconds."""
        return self.overall.mean_wait_s

    @property
    def service_level(self) -> Estimate:
        """Share answered within ``target_s``."""
        return self.overall.service_level

    @property
    def p_abandon(self) -> Estimate:
        """Share that left the queue before an agent took the chat."""
        return self.overall.p_abandon

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures: ``p_wait``, ``p_wait_ci`` ([low, high]) and so on."""
        out: dict[str, Any] = {
            "policy": self.policy,
            "replications": self.replications,
            "confidence": self.confidence,
            "target_s": self.target_s,
        }
        out.update(_figures_dict(self.overall))
        for name, est in (
            ("occupancy", self.occupancy),
            ("jain_index", self.jain_index),
            ("max_min_load", self.max_min_load),
        ):
            out[name] = _num(est.mean)
            out[f"{name}_ci"] = [_num(est.low), _num(est.high)]
        out["agents"] = {
            aid: {
                "occupancy": _num(f.occupancy.mean),
                "occupancy_ci": [_num(f.occupancy.low), _num(f.occupancy.high)],
                "chats": _num(f.chats.mean),
            }
            for aid, f in self.agents.items()
        }
        if len(self.groups) > 1:
            out["groups"] = {g: _figures_dict(f) for g, f in self.groups.items()}
        if self.classes:
            out["classes"] = {c: _figures_dict(f) for c, f in self.classes.items()}
        for name, maybe in (
            ("p_same_agent", self.p_same_agent),
            ("auto_transfers", self.auto_transfers),
            ("leave_moves", self.leave_moves),
            ("rewait_s", self.rewait_s),
            ("offer_declines", self.offer_declines),
        ):
            if maybe is not None:
                out[name] = _num(maybe.mean)
                out[f"{name}_ci"] = [_num(maybe.low), _num(maybe.high)]
        return out


def _num(x: float) -> float | None:
    """JSON has no inf or NaN: those become None."""
    return x if math.isfinite(x) else None


def _figures_dict(f: QueueFigures) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in (
        "p_wait",
        "mean_wait_s",
        "wait_p50_s",
        "wait_p90_s",
        "wait_p99_s",
        "service_level",
        "p_abandon",
        "customers",
    ):
        est: Estimate = getattr(f, name)
        out[name] = _num(est.mean)
        out[f"{name}_ci"] = [_num(est.low), _num(est.high)]
    return out


def _summarize(
    scenario: Scenario,
    name: str,
    reps: Sequence[Replication],
    confidence: float,
    auto: bool = False,
    leave: bool = False,
    offers: bool = False,
) -> SimulationResult:
    target = scenario.target_s
    overall = _queue_figures(reps, None, target, confidence)
    groups = {g: _queue_figures(reps, g, target, confidence) for g in scenario.groups}
    agents = {
        spec.id: AgentFigures(
            estimate([rep.occupancy[a] for rep in reps], confidence),
            estimate([float(rep.chats[a]) for rep in reps], confidence),
        )
        for a, spec in enumerate(scenario.agents)
    }
    means, jains, ratios = [], [], []
    for rep in reps:
        occ = [x for x in rep.occupancy if not math.isnan(x)]
        capacity = math.fsum(rep.online_slot_s)
        means.append(math.fsum(rep.busy_slot_s) / capacity if capacity > 0 else math.nan)
        jains.append(jain_index(occ))
        lo = min(occ) if occ else math.nan
        ratios.append(max(occ) / lo if occ and lo > 0 else math.inf)
    waits = sorted(w for rep in reps for w in rep.waits_s)
    classes = {}
    if any(any(rep.vip) for rep in reps):
        classes = {
            name: _queue_figures(reps, None, target, confidence, vip=flag)
            for name, flag in (("vip", True), ("regular", False))
        }
    leave_figures: tuple[Estimate | None, Estimate | None] = (
        _leave_figures(reps, confidence) if leave else (None, None)
    )
    return SimulationResult(
        name,
        len(reps),
        confidence,
        target,
        overall,
        groups,
        agents,
        estimate(means, confidence),
        estimate(jains, confidence),
        estimate(ratios, confidence),
        tuple(waits),
        classes,
        _share_same_agent(reps, confidence),
        _transfers(reps, confidence, auto),
        *leave_figures,
        _per_customer([rep.declined for rep in reps], confidence) if offers else None,
    )


def _per_customer(counts: Sequence[Sequence[int]], confidence: float) -> Estimate:
    return estimate([sum(c) / len(c) if c else 0.0 for c in counts], confidence)


def _leave_figures(reps: Sequence[Replication], confidence: float) -> tuple[Estimate, Estimate]:
    moves, rewaits = [], []
    for rep in reps:
        moves.append(sum(rep.moved) / len(rep.moved) if rep.moved else 0.0)
        waits = [w for m, w in zip(rep.moved, rep.rewait_s, strict=True) if m]
        rewaits.append(math.fsum(waits) / len(waits) if waits else math.nan)
    return estimate(moves, confidence), estimate(rewaits, confidence)


def _share_same_agent(reps: Sequence[Replication], confidence: float) -> Estimate | None:
    values = []
    for rep in reps:
        back = [i for i, r in enumerate(rep.returning) if r and rep.answered[i]]
        values.append(sum(rep.same_agent[i] for i in back) / len(back) if back else math.nan)
    if all(math.isnan(v) for v in values):
        return None
    return estimate(values, confidence)


def _transfers(reps: Sequence[Replication], confidence: float, auto: bool) -> Estimate | None:
    if not auto:
        return None
    return _per_customer([rep.transfers for rep in reps], confidence)


def _seeds(seed: int, replications: int) -> list[random.Random]:
    return [random.Random(f"chatmgmt-sim:{seed}:{r}") for r in range(replications)]


def simulate(
    scenario: Scenario,
    policy: Policy = StrategyName.ROUND_ROBIN,
    *,
    replications: int = 10,
    seed: int = 0,
    confidence: float = 0.95,
    progress: ProgressCallback | None = None,
) -> SimulationResult:
    """Run ``replications`` independent replications and summarize them.

    Replication ``r`` uses ``random.Random`` seeded from ``(seed, r)``: the same seed gives the
    same figures, and two policies simulated with the same seed serve the same customers.
    ``progress(done, total)`` is called after every replication.
    """
    return compare(
        scenario,
        [policy],
        replications=replications,
        seed=seed,
        confidence=confidence,
        progress=progress,
    )[policy_name(policy)]


def compare(
    scenario: Scenario,
    policies: Iterable[Policy] | Mapping[str, Policy],
    *,
    replications: int = 10,
    seed: int = 0,
    confidence: float = 0.95,
    progress: ProgressCallback | None = None,
) -> dict[str, SimulationResult]:
    """Simulate several policies on the same customers; results keyed by policy name.

    A mapping names the policies itself (handy for several callables or rankings).
    """
    if not isinstance(replications, int) or replications < 1:
        raise ScenarioError(f"replications must be an int >= 1, got {replications!r}")
    if not 0 < confidence < 1:
        raise ScenarioError(f"confidence must be in (0, 1), got {confidence!r}")
    named: list[tuple[str, Policy]]
    if isinstance(policies, Mapping):
        named = list(policies.items())
    else:
        named = [(policy_name(p), p) for p in policies]
    if not named:
        raise ScenarioError("give at least one policy")
    if len({n for n, _ in named}) != len(named):
        raise ScenarioError("policy names must be unique")
    for _name, p in named:
        resolve_policy(p, scenario.settings)  # fail before running anything
    total = len(named) * replications
    done = 0
    out: dict[str, SimulationResult] = {}
    for name, p in named:
        reps = []
        for rng in _seeds(seed, replications):
            reps.append(run_replication(scenario, p, rng))
            done += 1
            if progress is not None:
                progress(done, total)
        assignment = resolve_policy(p, scenario.settings)[0].assignment
        auto = assignment.auto_transfer_s > 0
        leave = leaves(assignment.leave, AgentStatus.OFFLINE)
        offers = assignment.offers.enabled or bool(assignment.offers.groups)
        out[name] = _summarize(scenario, name, reps, confidence, auto, leave, offers)
    return out
