"""The discrete-event loop that drives the real :class:`~chatmgmt.ChatManager`.

Events sit in a ``heapq`` list (chat ends, abandonments, shift changes); arrivals are a
pre-drawn sorted list merged with it. A :class:`~chatmgmt.testing.ManualClock` is moved to each
event's time and the manager is called as a host would call it: ``open_chat`` on arrival,
``end_chat`` when the handle time has elapsed, ``abandon`` when a queued customer's patience
runs out, ``set_agent_status`` at shift changes. Which agent took which chat — at once, or later
when ``end_chat`` frees a slot and the core drains the queue — is read from the
``chat.assigned`` events the manager emits to its event sink.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeAlias, Union

import attrs

from .._clock import ManualClock
from .._stats import Estimate, estimate, jain_index, percentile
from ..assignment._strategies import SATURATION_LONGEST, CustomStrategy, Strategy, strategy_name
from ..manager import ChatManager
from ..model import Agent, AgentId, AgentStatus, ChatState, CustomerInfo, Event, Ranking
from ..settings import AssignmentSettings, ChatSettings, StrategyName
from ..storage.memory import MemoryStorage
from ._scenario import Scenario, ScenarioError

__all__ = [
    "POLICY_NAMES",
    "AgentFigures",
    "Policy",
    "QueueFigures",
    "Replication",
    "SimulationResult",
    "compare",
    "policy_name",
    "run_replication",
    "simulate",
]

Policy: TypeAlias = Union[str, StrategyName, Ranking, CustomStrategy]  # noqa: UP007
"""A built-in strategy name (``"round_robin"``, ``"least_busy"``, ``"saturation"``,
``"saturation_longest"``, ``"longest_idle"``), a :class:`~chatmgmt.model.Ranking`, or a custom
callable ``(eligible_loads, chat) -> load | None``."""

POLICY_NAMES = (*(s.value for s in StrategyName), "saturation_longest")
"""The policy names :func:`simulate` accepts as strings."""

ProgressCallback = Callable[[int, int], None]

_END, _ABANDON, _ONLINE, _OFFLINE = 0, 1, 2, 3
_ASSIGNED = "chat.assigned"


def policy_name(policy: Policy) -> str:
    """The name a policy is reported under."""
    if isinstance(policy, StrategyName):
        return policy.value
    if isinstance(policy, str):
        return policy.strip().lower().replace("-", "_")
    if isinstance(policy, Ranking):
        return policy.name
    return strategy_name(policy)


def _resolve(policy: Policy, base: ChatSettings | None) -> tuple[ChatSettings, dict[str, Strategy]]:
    settings = base if base is not None else ChatSettings()
    if isinstance(policy, (str, StrategyName)):
        name = policy_name(policy)
        if name == "saturation_longest":
            return settings, {"*": SATURATION_LONGEST}
        try:
            strategy = StrategyName(name)
        except ValueError:
            raise ScenarioError(
                f"unknown policy {policy!r}; one of {', '.join(POLICY_NAMES)} or a callable"
            ) from None
        assignment: AssignmentSettings = attrs.evolve(settings.assignment, strategy=strategy)
        return attrs.evolve(settings, assignment=assignment), {}
    if isinstance(policy, Ranking) or callable(policy):
        return settings, {"*": policy}
    raise ScenarioError(f"a policy is a name, a Ranking or a callable, got {policy!r}")


class _AssignSink:
    """The manager's event sink: keeps (chat id, agent id) of every ``chat.assigned``."""

    def __init__(self) -> None:
        self.assigned: list[tuple[str, str]] = []

    def emit(self, event: Event) -> None:
        if event.type == _ASSIGNED:
            self.assigned.append((str(event.chat_id), str(event.data["agent_id"])))


@attrs.frozen
class Replication:
    """The raw outcome of one replication, for your own statistics.

    Per measured customer (arrival in the window): ``groups``, ``waits_s`` (time in queue, up to
    the answer or the abandonment), ``waited`` (queued at all), ``answered``; per agent (in
    scenario order): ``occupancy`` (busy slot-time over slot-time while online, inside the
    window; NaN when never online) and ``chats`` (assignments inside the window);
    ``busy_slot_s`` / ``online_slot_s`` are the two integrals behind ``occupancy``.
    A customer neither answered nor ``abandoned`` was still queued when the run ran out of
    events (no agent left online to take the chat); its wait counts up to ``end_s``.
    """

    groups: tuple[str, ...]
    waits_s: tuple[float, ...]
    waited: tuple[bool, ...]
    answered: tuple[bool, ...]
    abandoned: tuple[bool, ...]
    occupancy: tuple[float, ...]
    chats: tuple[int, ...]
    end_s: float
    busy_slot_s: tuple[float, ...] = ()
    online_slot_s: tuple[float, ...] = ()


def run_replication(
    scenario: Scenario,
    policy: Policy = StrategyName.ROUND_ROBIN,
    rng: random.Random | None = None,
) -> Replication:
    """Run one replication of ``scenario`` under ``policy`` with the seeded ``rng``.

    The arrivals (with handle times and patience) are drawn first from ``rng``; the manager's
    own randomness (ids, random tie-breaks) comes from a generator seeded from it next. So two
    policies run with equally seeded generators serve exactly the same customers (common random
    numbers), which sharpens every comparison.
    """
    rng = rng if rng is not None else random.Random(0)
    manager_rng = random.Random(rng.getrandbits(64))
    arrivals = scenario.generate(rng)
    settings, strategies = _resolve(policy, scenario.settings)
    clock = ManualClock(0.0)
    sink = _AssignSink()
    manager = ChatManager(
        MemoryStorage(),
        settings,
        clock=clock,
        rng=manager_rng,
        strategies=strategies,
        event_sink=sink,
    )
    w0, w1 = scenario.warmup_s, scenario.duration_s

    specs = scenario.agents
    index = {spec.id: i for i, spec in enumerate(specs)}
    n_agents = len(specs)
    slots = [spec.slots for spec in specs]
    active = [0] * n_agents
    online = [False] * n_agents
    last = [0.0] * n_agents
    busy_area = [0.0] * n_agents
    online_time = [0.0] * n_agents
    chats = [0] * n_agents

    heap: list[tuple[float, int, int, int]] = []
    seq = 0
    for i, spec in enumerate(specs):
        online[i] = spec.online_at(0.0)
        status = AgentStatus.ONLINE if online[i] else AgentStatus.OFFLINE
        manager.register_agent(
            Agent(
                AgentId(spec.id),
                skill_groups=spec.groups,
                reception_limit=spec.slots,
                tier=spec.tier,
                account_order=i,
                status=status,
            ),
            now=0.0,
        )
        for start, end in spec.shifts:
            if start > 0:
                heapq.heappush(heap, (start, seq, _ONLINE, i))
                seq += 1
            heapq.heappush(heap, (end, seq, _OFFLINE, i))
            seq += 1

    n = len(arrivals)
    arrival_t = [a.time_s for a in arrivals]
    handle = [a.handle_s for a in arrivals]
    start_t = [math.nan] * n
    left_t = [math.nan] * n
    waited = [False] * n
    abandoned = [False] * n
    agent_of = [-1] * n

    def touch(a: int, t: float) -> None:
        lo = last[a] if last[a] > w0 else w0
        hi = t if t < w1 else w1
        if hi > lo and online[a]:
            online_time[a] += hi - lo
            busy_area[a] += active[a] * (hi - lo)
        last[a] = t

    def take_assigned(now: float) -> None:
        nonlocal seq
        for cid, aid in sink.assigned:
            i = int(cid[1:])
            a = index[aid]
            start_t[i] = now
            agent_of[i] = a
            touch(a, now)
            active[a] += 1
            if active[a] > slots[a]:
                raise AssertionError(
                    f"agent {aid} holds {active[a]} chats over its limit {slots[a]}"
                )
            if w0 <= now < w1:
                chats[a] += 1
            heapq.heappush(heap, (now + handle[i], seq, _END, i))
            seq += 1
        sink.assigned.clear()

    customer = CustomerInfo()
    nxt = 0
    now = 0.0
    take_assigned(now)  # an agent registered ONLINE may drain nothing yet: keeps the sink clean
    while nxt < n or heap:
        if heap and (nxt >= n or heap[0][0] <= arrival_t[nxt]):
            now, _s, kind, i = heapq.heappop(heap)
            clock.set(now)
            if kind == _END:
                a = agent_of[i]
                touch(a, now)
                active[a] -= 1
                left_t[i] = now
                manager.end_chat(f"c{i}", now=now)
            elif kind == _ABANDON:
                if math.isnan(start_t[i]) and math.isnan(left_t[i]):
                    left_t[i] = now
                    abandoned[i] = True
                    manager.abandon(f"c{i}", now=now)
            else:
                touch(i, now)
                online[i] = kind == _ONLINE
                status = AgentStatus.ONLINE if online[i] else AgentStatus.OFFLINE
                manager.set_agent_status(specs[i].id, status, now=now)
        else:
            i = nxt
            nxt += 1
            now = arrival_t[i]
            clock.set(now)
            arrival = arrivals[i]
            chat = manager.open_chat(customer, skill_group=arrival.group, chat_id=f"c{i}", now=now)
            if chat.state is not ChatState.ACTIVE:
                waited[i] = True
                if math.isfinite(arrival.patience_s):
                    heapq.heappush(heap, (now + arrival.patience_s, seq, _ABANDON, i))
                    seq += 1
        take_assigned(now)

    end = max(now, w1)
    for a in range(n_agents):
        touch(a, end)
    groups: list[str] = []
    waits: list[float] = []
    flags: list[bool] = []
    answered: list[bool] = []
    gave_up: list[bool] = []
    for i in range(n):
        if not w0 <= arrival_t[i] < w1:
            continue
        groups.append(arrivals[i].group)
        flags.append(waited[i])
        gave_up.append(abandoned[i])
        if not math.isnan(start_t[i]):
            waits.append(start_t[i] - arrival_t[i])
            answered.append(True)
        else:  # abandoned, or never answered (no agent left to take it)
            left = left_t[i] if not math.isnan(left_t[i]) else end
            waits.append(left - arrival_t[i])
            answered.append(False)
    occupancy = tuple(
        busy_area[a] / (slots[a] * online_time[a]) if online_time[a] > 0 else math.nan
        for a in range(n_agents)
    )
    return Replication(
        tuple(groups),
        tuple(waits),
        tuple(flags),
        tuple(answered),
        tuple(gave_up),
        occupancy,
        tuple(chats),
        end,
        tuple(busy_area),
        tuple(online_time[a] * slots[a] for a in range(n_agents)),
    )


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
    reps: Sequence[Replication], group: str | None, target: float, confidence: float
) -> QueueFigures:
    cols: dict[str, list[float]] = {
        k: [] for k in ("n", "pw", "mw", "p50", "p90", "p99", "sl", "pa")
    }
    for rep in reps:
        idx = [i for i, g in enumerate(rep.groups) if group is None or g == group]
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
    directly (``result.p_wait`` ...).
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
    )


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
        _resolve(p, scenario.settings)  # fail before running anything
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
        out[name] = _summarize(scenario, name, reps, confidence)
    return out
