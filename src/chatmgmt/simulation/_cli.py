"""``python -m chatmgmt simulate``: simulate one policy or compare several."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, NoReturn

from .._stats import Estimate
from ._chart import EXTRA_HINT, charts_available, wait_chart_png, wait_chart_svg
from ._distributions import Distribution, Exponential, Fixed, LogNormal
from ._engine import POLICY_NAMES, SimulationResult, compare
from ._file import load_scenario
from ._formulas import ErlangResult
from ._policy import Variant
from ._scenario import Scenario, ScenarioError, predict

__all__ = ["simulate_main"]

_PROG = "chatmgmt simulate"
_DEFAULTS: dict[str, Any] = {
    "arrivals_per_min": 3.0,
    "handle_time_s": 180.0,
    "handle_dist": "exponential",
    "handle_cv": 1.0,
    "agents": 4,
    "slots": 3,
    "target_s": 20.0,
    "duration_s": 8 * 3600.0,
    "warmup_s": 1800.0,
    "replications": 10,
    "seed": 0,
    "confidence": 0.95,
}
_MODEL_FLAGS = (
    "arrivals_per_min",
    "handle_time_s",
    "handle_dist",
    "handle_cv",
    "agents",
    "slots",
    "patience_s",
)


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage dump) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value > 0 or (isinstance(value, float) and not math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _parser() -> _Parser:
    p = _Parser(
        prog=_PROG,
        description=(
            "Simulate assignment policies on the real assignment core and compare them with "
            "Erlang C/A. Model flags describe one Poisson stream served by identical agents; "
            "--scenario reads a JSON (or TOML) file for anything richer."
        ),
    )
    m = p.add_argument_group("model (or --scenario)")
    m.add_argument("--scenario", metavar="FILE", help="scenario file (.json, .toml)")
    m.add_argument(
        "--arrivals-per-min",
        type=_positive(float),
        metavar="R",
        help=f"Poisson arrivals per minute (default {_DEFAULTS['arrivals_per_min']:g})",
    )
    m.add_argument(
        "--handle-time-s",
        type=_positive(float),
        metavar="S",
        help=f"mean handle time (default {_DEFAULTS['handle_time_s']:g})",
    )
    m.add_argument(
        "--handle-dist",
        choices=("exponential", "lognormal", "fixed"),
        help="handle-time distribution (default exponential)",
    )
    m.add_argument(
        "--handle-cv",
        type=_positive(float),
        metavar="CV",
        help="coefficient of variation for --handle-dist lognormal (default 1)",
    )
    m.add_argument(
        "--agents", type=_positive(int), metavar="N", help=f"agents (default {_DEFAULTS['agents']})"
    )
    m.add_argument(
        "--slots",
        type=_positive(int),
        metavar="K",
        help=f"chats each agent holds at once (default {_DEFAULTS['slots']})",
    )
    m.add_argument(
        "--patience-s",
        type=_positive(float),
        metavar="S",
        help="mean (exponential) patience in the queue; default: customers never leave",
    )
    r = p.add_argument_group("run")
    r.add_argument(
        "--policy",
        action="append",
        metavar="NAME",
        help=f"policy, repeat to compare: {', '.join(POLICY_NAMES)} (default round_robin)",
    )
    r.add_argument(
        "--target-s",
        type=_non_negative,
        metavar="S",
        help=f"service-level target (default {_DEFAULTS['target_s']:g})",
    )
    r.add_argument(
        "--duration-s",
        type=_positive(float),
        metavar="S",
        help=f"simulated time per replication (default {_DEFAULTS['duration_s']:g})",
    )
    r.add_argument(
        "--warmup-s",
        type=_non_negative,
        metavar="S",
        help=f"warm-up not measured (default {_DEFAULTS['warmup_s']:g})",
    )
    r.add_argument(
        "--replications",
        type=_positive(int),
        metavar="N",
        help=f"independent replications (default {_DEFAULTS['replications']})",
    )
    r.add_argument("--seed", type=_seed, metavar="N", help="random seed (default 0)")
    r.add_argument(
        "--confidence",
        type=float,
        metavar="P",
        help="confidence level of the intervals (default 0.95)",
    )
    o = p.add_argument_group("output")
    o.add_argument("--json", action="store_true", help="print JSON instead of a table")
    o.add_argument(
        "--chart", metavar="FILE.svg|png", help="write a chart of the waits (SVG or PNG)"
    )
    o.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    return p


def _handle(args: argparse.Namespace) -> Distribution:
    mean = float(args.handle_time_s)
    if args.handle_dist == "lognormal":
        return LogNormal(mean, float(args.handle_cv))
    if args.handle_dist == "fixed":
        return Fixed(mean)
    return Exponential(mean)


def _build(args: argparse.Namespace) -> tuple[Scenario, list[str | Variant], int, int, float]:
    policies: list[str | Variant] = list(args.policy or [])
    run: dict[str, Any] = {
        k: getattr(args, k)
        for k in ("target_s", "duration_s", "warmup_s", "replications", "seed", "confidence")
        if getattr(args, k) is not None
    }
    if args.scenario is not None:
        given = [f"--{k.replace('_', '-')}" for k in _MODEL_FLAGS if getattr(args, k) is not None]
        if given:
            raise ScenarioError(f"{', '.join(given)} cannot be combined with --scenario")
        loaded = load_scenario(args.scenario)
        scenario = loaded.scenario
        changes = {k: run[k] for k in ("target_s", "duration_s", "warmup_s") if k in run}
        if changes:
            import attrs

            scenario = attrs.evolve(scenario, **changes)
        policies = policies or list(loaded.policies)
        replications = run.get("replications", loaded.replications)
        seed = run.get("seed", loaded.seed)
        confidence = run.get("confidence", loaded.confidence)
    else:
        for k in _MODEL_FLAGS:
            if getattr(args, k) is None and k in _DEFAULTS:
                setattr(args, k, _DEFAULTS[k])
        if args.handle_cv != 1.0 and args.handle_dist != "lognormal":
            raise ScenarioError("--handle-cv applies to --handle-dist lognormal only")
        scenario = Scenario.simple(
            args.arrivals_per_min / 60.0,
            args.handle_time_s,
            args.agents,
            slots=args.slots,
            patience_mean_s=args.patience_s,
            handle=_handle(args),
            duration_s=run.get("duration_s", _DEFAULTS["duration_s"]),
            warmup_s=run.get("warmup_s", _DEFAULTS["warmup_s"]),
            target_s=run.get("target_s", _DEFAULTS["target_s"]),
        )
        replications, seed, confidence = (
            run.get("replications"),
            run.get("seed"),
            run.get("confidence"),
        )
    if confidence is not None and not 0 < confidence < 1:
        raise ScenarioError(f"--confidence must be in (0, 1), got {confidence:g}")
    return (
        scenario,
        policies or ["round_robin"],
        replications if replications is not None else _DEFAULTS["replications"],
        seed if seed is not None else _DEFAULTS["seed"],
        confidence if confidence is not None else _DEFAULTS["confidence"],
    )


class _Progress:
    """A ``\\r`` counter on stderr, shown only once a run has taken more than a second."""

    def __init__(self, stream: IO[str], enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled
        self.start = time.monotonic()
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or time.monotonic() - self.start < 1.0:
            return
        self.shown = True
        self.stream.write(f"\rsimulating: {done}/{total} replications")
        self.stream.flush()

    def close(self) -> None:
        if self.shown:
            self.stream.write("\r" + " " * 40 + "\r")
            self.stream.flush()


def _pm(e: Estimate, digits: int = 3) -> str:
    if not math.isfinite(e.mean):
        return "n/a"
    if not math.isfinite(e.half_width):
        return f"{e.mean:.{digits}f}"
    if abs((e.mean - e.low) - (e.high - e.mean)) > 1e-9 * max(1.0, abs(e.mean)):
        # clipped at a natural bound (0 or 1): show the interval itself
        return f"{e.mean:.{digits}f} [{e.low:.{digits}f}, {e.high:.{digits}f}]"
    return f"{e.mean:.{digits}f} ±{e.half_width:.{digits}f}"


def _describe(scenario: Scenario, replications: int, confidence: float) -> list[str]:
    lines = []
    for s in scenario.arrivals:
        group = f" → group {s.group!r}" if s.group else ""
        rate = f"{s.rate_per_s * 60:g}/min"
        kind = "Poisson" if not hasattr(s, "times_s") else "trace"
        patience = s.patience.describe() if s.patience is not None else "none"
        lines.append(
            f"arrivals: {kind} {rate}{group}; handle {s.handle.describe()}; patience {patience}"
        )
    slots = sum(a.slots for a in scenario.agents)
    lines.append(
        f"agents: {len(scenario.agents)} ({slots} slots); target {scenario.target_s:g} s; "
        f"{replications} replications of {scenario.duration_s:g} s after "
        f"{scenario.warmup_s:g} s warm-up; {confidence:.0%} intervals"
    )
    return lines


def _table(results: dict[str, SimulationResult], prediction: ErlangResult | None) -> list[str]:
    head = (
        "policy",
        "P(wait)",
        "mean wait s",
        "p90 wait s",
        "service level",
        "abandoned",
        "occupancy",
        "Jain",
        "max/min",
    )
    rows: list[tuple[str, ...]] = []
    for name, r in results.items():
        ratio = r.max_min_load.mean
        rows.append(
            (
                name,
                _pm(r.p_wait),
                _pm(r.mean_wait_s, 2),
                _pm(r.overall.wait_p90_s, 1),
                _pm(r.service_level),
                _pm(r.p_abandon),
                _pm(r.occupancy),
                f"{r.jain_index.mean:.3f}",
                f"{ratio:.2f}" if math.isfinite(ratio) else "inf",
            )
        )
    if prediction is not None:
        if prediction.stable:
            p90 = f"{prediction.wait_percentile(0.9):.1f}" if prediction.model == "C" else ""
            rows.append(
                (
                    f"Erlang {prediction.model}",
                    f"{prediction.p_wait:.3f}",
                    f"{prediction.mean_wait:.2f}",
                    p90,
                    f"{prediction.service_level:.3f}",
                    f"{prediction.p_abandon:.3f}",
                    f"{prediction.occupancy:.3f}",
                    "",
                    "",
                )
            )
        else:
            rows.append((f"Erlang {prediction.model}", "unstable: load ≥ slots", *[""] * 7))
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return [fmt.format(*head), "  ".join("-" * w for w in widths), *(fmt.format(*r) for r in rows)]


def _erlang_dict(prediction: ErlangResult | None) -> dict[str, Any] | None:
    if prediction is None:
        return None
    finite = prediction.stable
    return {
        "model": f"erlang_{prediction.model.lower()}",
        "servers": prediction.servers,
        "stable": prediction.stable,
        "p_wait": prediction.p_wait,
        "mean_wait_s": prediction.mean_wait if finite else None,
        "service_level": prediction.service_level,
        "p_abandon": prediction.p_abandon,
        "occupancy": prediction.occupancy,
    }


def simulate_main(argv: list[str]) -> int:
    """Run ``chatmgmt simulate`` with ``argv`` (without the program and command names).

    Returns the exit status: 0 on success, 2 on a bad flag or scenario file (one line on
    stderr), 1 when the chart cannot be written (or matplotlib, the ``charts`` extra, is
    missing: checked before the simulation runs).
    """
    err = sys.stderr
    try:
        args = _parser().parse_args(argv)
        chart = Path(args.chart) if args.chart else None
        if chart is not None and chart.suffix.lower() not in (".svg", ".png"):
            raise ScenarioError(
                f"--chart {chart}: the chart is written as .svg or .png, "
                f"not {chart.suffix or 'a file without an extension'}"
            )
        if chart is not None and not charts_available():
            err.write(f"{_PROG}: error: --chart {chart}: {EXTRA_HINT}\n")
            return 1
        scenario, policies, replications, seed, confidence = _build(args)
        progress = _Progress(err, not args.no_progress and err.isatty())
        try:
            results = compare(
                scenario,
                policies,
                replications=replications,
                seed=seed,
                confidence=confidence,
                progress=progress,
            )
        finally:
            progress.close()
    except _UsageError as exc:
        err.write(f"{_PROG}: error: {exc}\n")
        return 2
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    except (ScenarioError, ValueError) as exc:
        err.write(f"{_PROG}: error: {exc}\n")
        return 2
    prediction = predict(scenario)
    if chart is not None:
        try:
            if chart.suffix.lower() == ".png":
                chart.write_bytes(wait_chart_png(results, prediction=prediction))
            else:
                chart.write_text(wait_chart_svg(results, prediction=prediction), encoding="utf-8")
        except OSError as exc:
            err.write(f"{_PROG}: error: cannot write {chart}: {exc.strerror or exc}\n")
            return 1
    if args.json:
        doc = {
            "scenario": {
                "duration_s": scenario.duration_s,
                "warmup_s": scenario.warmup_s,
                "target_s": scenario.target_s,
                "agents": len(scenario.agents),
                "slots": sum(a.slots for a in scenario.agents),
                "replications": replications,
                "seed": seed,
                "confidence": confidence,
            },
            "policies": {name: r.to_dict() for name, r in results.items()},
            "erlang": _erlang_dict(prediction),
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        lines = _describe(scenario, replications, confidence)
        lines.append("")
        lines.extend(_table(results, prediction))
        if chart is not None:
            lines.append("")
            lines.append(f"chart written to {chart}")
        sys.stdout.write("\n".join(lines) + "\n")
    return 0


def _main(argv: Sequence[str] | None = None) -> None:  # pragma: no cover - manual use
    sys.exit(simulate_main(list(sys.argv[1:] if argv is None else argv)))


if __name__ == "__main__":  # pragma: no cover
    _main()
