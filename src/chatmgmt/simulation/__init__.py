"""Discrete-event simulation of assignment policies over the real assignment core.

:func:`simulate` and :func:`compare` run a :class:`Scenario` — Poisson or trace arrivals,
handle-time and patience distributions, agents with slots, skill groups and shifts — through a
real :class:`~chatmgmt.ChatManager` on :class:`~chatmgmt.MemoryStorage` and a manual clock, and
report queue figures and fairness with confidence intervals over replications.
:func:`erlang_c` and :func:`erlang_a` give the textbook predictions to compare with.
See ``docs/simulation.md``.
"""

from .._stats import Estimate, estimate, jain_index, percentile, t_quantile
from ._chart import wait_chart_png, wait_chart_svg
from ._distributions import Distribution, Empirical, Exponential, Fixed, LogNormal
from ._engine import (
    POLICY_NAMES,
    AgentFigures,
    Policy,
    QueueFigures,
    Replication,
    SimulationResult,
    Variant,
    compare,
    policy_name,
    run_replication,
    simulate,
)
from ._file import ScenarioFile, load_scenario, scenario_from_dict
from ._formulas import ErlangResult, erlang_a, erlang_b, erlang_c
from ._scenario import (
    AgentSpec,
    Arrival,
    ArrivalStream,
    PoissonArrivals,
    Scenario,
    ScenarioError,
    TraceArrivals,
    predict,
)

__all__ = [
    "POLICY_NAMES",
    "AgentFigures",
    "AgentSpec",
    "Arrival",
    "ArrivalStream",
    "Distribution",
    "Empirical",
    "ErlangResult",
    "Estimate",
    "Exponential",
    "Fixed",
    "LogNormal",
    "PoissonArrivals",
    "Policy",
    "QueueFigures",
    "Replication",
    "Scenario",
    "ScenarioError",
    "ScenarioFile",
    "SimulationResult",
    "TraceArrivals",
    "Variant",
    "compare",
    "erlang_a",
    "erlang_b",
    "erlang_c",
    "estimate",
    "jain_index",
    "load_scenario",
    "percentile",
    "policy_name",
    "predict",
    "run_replication",
    "scenario_from_dict",
    "simulate",
    "t_quantile",
    "wait_chart_png",
    "wait_chart_svg",
]
