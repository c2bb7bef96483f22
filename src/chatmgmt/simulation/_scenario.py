"""What a simulation models: arrival streams, agents with slots and shifts, the horizon."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from typing import Any, TypeAlias, Union

import attrs

from ..errors import ValidationError
from ..settings import ChatSettings
from ._distributions import Distribution, Exponential
from ._formulas import ErlangResult, erlang_a, erlang_c

__all__ = [
    "AgentSpec",
    "Arrival",
    "ArrivalStream",
    "PoissonArrivals",
    "Scenario",
    "ScenarioError",
    "TraceArrivals",
    "predict",
]


class ScenarioError(ValidationError):
    """A scenario (or a scenario file) is invalid; the message names the bad field."""


def _check_group(_inst: Any, _attr: Any, value: Any) -> None:
    if not isinstance(value, str):
        raise ScenarioError(f"group must be a string, got {value!r}")


def _check_reply(_inst: Any, attribute: Any, value: Any) -> None:
    if value is not None and not isinstance(value, Distribution):
        raise ScenarioError(f"{attribute.name} must be a Distribution or None, got {value!r}")


def _check_distribution(_inst: Any, attribute: Any, value: Any) -> None:
    if value is None and attribute.name == "patience":
        return
    if not isinstance(value, Distribution):
        raise ScenarioError(f"{attribute.name} must be a Distribution, got {value!r}")


@attrs.frozen
class Arrival:
    """One customer: arrival time, skill group, handle time and patience (inf: waits forever);
    ``vip_level`` (0: a regular customer) and ``customer`` (a partner id; None: anonymous)."""

    time_s: float
    group: str
    handle_s: float
    patience_s: float
    vip_level: int = 0
    customer: str | None = None


def _share(_inst: Any, attribute: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ScenarioError(f"{attribute.name} must be a number from 0 to 1, got {value!r}")


def _level(_inst: Any, attribute: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
        raise ScenarioError(f"{attribute.name} must be an int from 1 to 1000, got {value!r}")


def _customers(stream: Any, arrivals: list[Arrival], rng: random.Random) -> list[Arrival]:
    """Mark VIPs (``vip_share``) and returning customers (``returning_share``: the arrival is
    a customer this stream saw before, drawn uniformly; else a new one). Draws from a generator
    of its own, only when a share is set: the other draws do not move."""
    if not stream.vip_share and not stream.returning_share:
        return arrivals
    own = random.Random(rng.getrandbits(64))
    seen: list[str] = []
    out: list[Arrival] = []
    for arrival in arrivals:
        vip = stream.vip_level if own.random() < stream.vip_share else 0
        if seen and own.random() < stream.returning_share:
            who = seen[own.randrange(len(seen))]
        else:
            who = f"{stream.group or 'all'}:{len(seen)}"
            seen.append(who)
        out.append(attrs.evolve(arrival, vip_level=vip, customer=who))
    return out


@attrs.frozen
class PoissonArrivals:
    """A Poisson stream of ``rate_per_s`` chats per second into skill ``group`` ("" = all).

    ``handle`` is the handle-time distribution (from assignment to end); ``patience`` how long
    a customer waits in the queue before leaving (None: forever). ``vip_share``: the share of
    customers of ``vip_level``; ``returning_share``: the share that are a customer of this
    stream coming back (for sticky routing; customers then carry partner ids).
    """

    rate_per_s: float = attrs.field(converter=float)
    group: str = attrs.field(default="", validator=_check_group)
    handle: Distribution = attrs.field(
        factory=lambda: Exponential(300.0), validator=_check_distribution
    )
    patience: Distribution | None = attrs.field(default=None, validator=_check_distribution)
    vip_share: float = attrs.field(default=0.0, validator=_share)
    vip_level: int = attrs.field(default=5, validator=_level)
    returning_share: float = attrs.field(default=0.0, validator=_share)

    @rate_per_s.validator
    def _check_rate(self, _attr: object, value: float) -> None:
        if not value > 0 or not math.isfinite(value):
            raise ScenarioError(f"rate_per_s must be a finite number > 0, got {value!r}")

    def generate(self, rng: random.Random, until_s: float) -> list[Arrival]:
        """The arrivals in ``[0, until_s)``, each with its handle time and patience drawn."""
        out: list[Arrival] = []
        t = rng.expovariate(self.rate_per_s)
        handle, patience = self.handle, self.patience
        while t < until_s:
            p = patience.sample(rng) if patience is not None else math.inf
            out.append(Arrival(t, self.group, handle.sample(rng), p))
            t += rng.expovariate(self.rate_per_s)
        return _customers(self, out, rng)


def _times(values: Iterable[float]) -> tuple[float, ...]:
    out = tuple(float(v) for v in values)
    if any(not v >= 0 or not math.isfinite(v) for v in out):
        raise ScenarioError("trace times must be finite numbers >= 0")
    return tuple(sorted(out))


def _opt_values(values: Iterable[float] | None) -> tuple[float, ...] | None:
    return None if values is None else tuple(float(v) for v in values)


@attrs.frozen
class TraceArrivals:
    """Arrivals replayed from a trace: ``times_s`` (seconds from the start, sorted here).

    ``handle_s`` / ``patience_s`` give each arrival's recorded handle time and patience (same
    order as ``times_s`` before sorting; use them together with already sorted times);
    when absent the values are drawn from ``handle`` / ``patience``. Every replication replays
    the same times; only what is drawn changes. ``vip_share``, ``vip_level`` and
    ``returning_share`` as in :class:`PoissonArrivals`.
    """

    times_s: tuple[float, ...] = attrs.field(converter=_times)
    group: str = attrs.field(default="", validator=_check_group)
    handle: Distribution = attrs.field(
        factory=lambda: Exponential(300.0), validator=_check_distribution
    )
    patience: Distribution | None = attrs.field(default=None, validator=_check_distribution)
    handle_s: tuple[float, ...] | None = attrs.field(default=None, converter=_opt_values)
    patience_s: tuple[float, ...] | None = attrs.field(default=None, converter=_opt_values)
    vip_share: float = attrs.field(default=0.0, validator=_share)
    vip_level: int = attrs.field(default=5, validator=_level)
    returning_share: float = attrs.field(default=0.0, validator=_share)

    def __attrs_post_init__(self) -> None:
        for name in ("handle_s", "patience_s"):
            given = getattr(self, name)
            if given is not None and len(given) != len(self.times_s):
                raise ScenarioError(
                    f"{name} has {len(given)} values for {len(self.times_s)} arrival times"
                )

    @property
    def rate_per_s(self) -> float:
        """The trace's mean arrival rate (arrivals over the span of the trace)."""
        if len(self.times_s) < 2 or self.times_s[-1] <= 0:
            return 0.0
        return len(self.times_s) / self.times_s[-1]

    def generate(self, rng: random.Random, until_s: float) -> list[Arrival]:
        """The trace's arrivals in ``[0, until_s)``."""
        out: list[Arrival] = []
        for i, t in enumerate(self.times_s):
            if t >= until_s:
                break
            h = self.handle_s[i] if self.handle_s is not None else self.handle.sample(rng)
            if self.patience_s is not None:
                p = self.patience_s[i]
            else:
                p = self.patience.sample(rng) if self.patience is not None else math.inf
            out.append(Arrival(t, self.group, h, p))
        return _customers(self, out, rng)


ArrivalStream: TypeAlias = Union[PoissonArrivals, TraceArrivals]  # noqa: UP007
"""A stream of arrivals into one skill group."""


def _groups(values: Iterable[str]) -> frozenset[str]:
    if isinstance(values, str):
        raise ScenarioError(f"groups must be a collection of names, got the string {values!r}")
    return frozenset(values)


def _specs(values: Iterable[AgentSpec]) -> tuple[AgentSpec, ...]:
    out = tuple(values)
    for spec in out:
        if not isinstance(spec, AgentSpec):
            raise ScenarioError(f"agents must be AgentSpec values, got {spec!r}")
    return out


def _shifts(values: Iterable[Sequence[float]]) -> tuple[tuple[float, float], ...]:
    spans: list[tuple[float, float]] = []
    for span in values:
        if len(span) != 2:
            raise ScenarioError(f"a shift is [start_s, end_s], got {list(span)!r}")
        start, end = float(span[0]), float(span[1])
        if not 0 <= start < end:
            raise ScenarioError(f"a shift needs 0 <= start_s < end_s, got [{start}, {end}]")
        spans.append((start, end))
    spans.sort()
    merged: list[tuple[float, float]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)


@attrs.frozen
class AgentSpec:
    """An agent: ``slots`` (reception limit), skill ``groups``, ``tier`` and online ``shifts``.

    ``shifts`` are ``(start_s, end_s)`` spans when the agent is ONLINE; empty means online for
    the whole run. Chats an agent holds when going offline continue until they end.
    ``reply``: how long the agent takes to answer a chat it was given (None: at once); with
    ``assignment.auto_transfer_s`` a slower answer is an auto-transfer. With offers on
    (``assignment.offers``), ``offer_reply`` is how long the agent takes to answer an offer
    (None: at once; longer than the offer's timeout: it runs out) and ``decline_share`` the
    share of offers it declines.
    """

    id: str
    slots: int = 1
    groups: frozenset[str] = attrs.field(default=frozenset(), converter=_groups)
    tier: int = 0
    shifts: tuple[tuple[float, float], ...] = attrs.field(default=(), converter=_shifts)
    reply: Distribution | None = attrs.field(default=None, validator=_check_reply)
    offer_reply: Distribution | None = attrs.field(default=None, validator=_check_reply)
    decline_share: float = attrs.field(default=0.0, validator=_share)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ScenarioError(f"agent id must be a non-empty string, got {self.id!r}")
        if not isinstance(self.slots, int) or isinstance(self.slots, bool) or self.slots < 1:
            raise ScenarioError(f"agent {self.id}: slots must be an int >= 1, got {self.slots!r}")

    def online_at(self, t: float) -> bool:
        """Whether the agent is scheduled ONLINE at time ``t``."""
        if not self.shifts:
            return True
        return any(start <= t < end for start, end in self.shifts)


def _streams(values: Iterable[ArrivalStream]) -> tuple[ArrivalStream, ...]:
    out = tuple(values)
    for s in out:
        if not isinstance(s, (PoissonArrivals, TraceArrivals)):
            raise ScenarioError(f"arrivals must be PoissonArrivals or TraceArrivals, got {s!r}")
    return out


@attrs.frozen
class Scenario:
    """A whole model: arrival streams, agents, horizon, warm-up and service-level target.

    Customers arriving in ``[warmup_s, duration_s)`` are measured; arrivals stop at
    ``duration_s`` and the run continues until every measured customer was answered or left.
    ``settings`` are the base :class:`~chatmgmt.ChatSettings` (the policy sets the strategy).
    """

    arrivals: tuple[ArrivalStream, ...] = attrs.field(converter=_streams)
    agents: tuple[AgentSpec, ...] = attrs.field(converter=_specs)
    duration_s: float = attrs.field(default=8 * 3600.0, converter=float)
    warmup_s: float = attrs.field(default=1800.0, converter=float)
    target_s: float = attrs.field(default=20.0, converter=float)
    settings: ChatSettings | None = None

    def __attrs_post_init__(self) -> None:
        if not self.arrivals:
            raise ScenarioError("a scenario needs at least one arrival stream")
        if not self.agents:
            raise ScenarioError("a scenario needs at least one agent")
        ids = [a.id for a in self.agents]
        if len(set(ids)) != len(ids):
            raise ScenarioError("agent ids must be unique")
        if not 0 <= self.warmup_s < self.duration_s or not math.isfinite(self.duration_s):
            raise ScenarioError(
                f"need 0 <= warmup_s < duration_s, got warmup_s={self.warmup_s:g}, "
                f"duration_s={self.duration_s:g}"
            )
        if not self.target_s >= 0:
            raise ScenarioError(f"target_s must be >= 0, got {self.target_s!r}")

    @classmethod
    def simple(
        cls,
        arrival_rate: float,
        handle_mean_s: float,
        agents: int,
        *,
        slots: int = 1,
        patience_mean_s: float | None = None,
        handle: Distribution | None = None,
        duration_s: float = 8 * 3600.0,
        warmup_s: float = 1800.0,
        target_s: float = 20.0,
        group: str = "",
    ) -> Scenario:
        """One Poisson stream (``arrival_rate`` per second) and ``agents`` identical agents.

        Exponential handle time of mean ``handle_mean_s`` unless ``handle`` is given; exponential
        patience of mean ``patience_mean_s`` when given. With the defaults this is M/M/(c·k).
        """
        if not isinstance(agents, int) or agents < 1:
            raise ScenarioError(f"agents must be an int >= 1, got {agents!r}")
        stream = PoissonArrivals(
            arrival_rate,
            group,
            handle if handle is not None else Exponential(handle_mean_s),
            Exponential(patience_mean_s) if patience_mean_s is not None else None,
        )
        groups = frozenset({group}) if group else frozenset()
        specs = tuple(AgentSpec(f"a{i:02d}", slots, groups) for i in range(agents))
        return cls((stream,), specs, duration_s, warmup_s, target_s)

    @property
    def groups(self) -> tuple[str, ...]:
        """The skill groups that receive arrivals, in order of first appearance."""
        return tuple(dict.fromkeys(s.group for s in self.arrivals))

    def generate(self, rng: random.Random) -> list[Arrival]:
        """All arrivals of one replication, merged in time order.

        Each stream draws from its own generator seeded from ``rng`` so that a stream's
        customers do not change when another stream is added.
        """
        merged: list[Arrival] = []
        for stream in self.arrivals:
            merged.extend(stream.generate(random.Random(rng.getrandbits(64)), self.duration_s))
        merged.sort(key=lambda a: a.time_s)
        return merged


def predict(scenario: Scenario) -> ErlangResult | None:
    """The Erlang C (or A) prediction when the scenario is one: else None.

    That is one Poisson stream with exponential handle time (and exponential patience, or
    none), no VIP share, served by agents that are all in the stream's group, online throughout
    and answering at once; the servers are their total slots.
    """
    if len(scenario.arrivals) != 1:
        return None
    stream = scenario.arrivals[0]
    if not isinstance(stream, PoissonArrivals) or not isinstance(stream.handle, Exponential):
        return None
    if stream.patience is not None and not isinstance(stream.patience, Exponential):
        return None
    if stream.vip_share > 0:
        return None  # two priority classes: the one-class formulas do not describe each
    servers = 0
    for agent in scenario.agents:
        if stream.group and stream.group not in agent.groups:
            continue  # does not serve this stream
        if agent.reply is not None or agent.offer_reply is not None or agent.decline_share:
            return None  # time to answer (auto-transfers, offers) adds to the handle time
        if agent.shifts and not all(s <= 0 and e >= scenario.duration_s for s, e in agent.shifts):
            return None
        servers += agent.slots
    if servers == 0:
        return None
    mu = 1.0 / stream.handle.mean_s
    if stream.patience is None:
        return erlang_c(stream.rate_per_s, mu, servers, scenario.target_s)
    return erlang_a(stream.rate_per_s, mu, servers, 1.0 / stream.patience.mean_s, scenario.target_s)
