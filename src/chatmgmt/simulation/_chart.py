"""Charts of the wait distributions and agent occupancy per policy, drawn by matplotlib.

Needs the ``charts`` extra (``pip install 'chatmgmt[charts]'``); without it the chart functions
raise :class:`ImportError` saying so. The figure is built with matplotlib's object API on the
Agg canvas (no pyplot, no global state, no display), so it is safe in servers and threads.
"""

from __future__ import annotations

import bisect
import io
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._engine import SimulationResult
from ._formulas import ErlangResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["COLORS", "EXTRA_HINT", "charts_available", "wait_chart_png", "wait_chart_svg"]

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2")
"""One colour per policy, in the order of the results."""

EXTRA_HINT = "charts need matplotlib: pip install 'chatmgmt[charts]'"
"""What to install for charts."""

_W_IN, _H_IN, _DPI = 9.6, 4.4, 100  # 960 × 440 units (SVG points at 100 per inch)
_SAMPLES = 240
_MAX_AGENTS = 40


def charts_available() -> bool:
    """Whether matplotlib (the ``charts`` extra) can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _new_figure() -> Figure:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(EXTRA_HINT) from exc
    fig = Figure(figsize=(_W_IN, _H_IN), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _wait_panel(
    ax: Any, results: Mapping[str, SimulationResult], prediction: ErlangResult | None
) -> None:
    first = next(iter(results.values()))
    target = first.target_s
    tails = [
        r.waits_s[min(len(r.waits_s) - 1, int(0.995 * len(r.waits_s)))]
        for r in results.values()
        if r.waits_s
    ]
    x_max = max([target * 2.0, *tails, 1.0])
    ts = [x_max * k / _SAMPLES for k in range(_SAMPLES + 1)]
    starts = [1.0]
    for n, (name, result) in enumerate(results.items()):
        waits = result.waits_s
        if not waits:
            continue
        cdf = [bisect.bisect_right(waits, t) / len(waits) for t in ts]
        starts.append(cdf[0])
        ax.plot(ts, cdf, color=COLORS[n % len(COLORS)], linewidth=2, alpha=0.85, label=name)
    if prediction is not None and prediction.model == "C" and prediction.stable:
        decay = prediction.servers * prediction.service_rate - prediction.arrival_rate
        curve = [1 - prediction.p_wait * math.exp(-decay * t) for t in ts]
        starts.append(curve[0])
        ax.plot(
            ts,
            curve,
            color="black",
            linewidth=1.5,
            linestyle=(0, (6, 4)),
            label=f"Erlang C ({prediction.servers} slots)",
        )
    ax.axvline(target, color="#555555", linestyle=(0, (4, 3)), linewidth=1)
    ax.annotate(
        f"target {target:g} s",
        (target, 0),
        xycoords=("data", "axes fraction"),
        xytext=(4, 6),
        textcoords="offset points",
        color="#555555",
    )
    y_lo = min(0.8, math.floor(min(starts) * 5) / 5)  # zoom onto [P(no wait), 1]
    ax.set_xlim(0, x_max)
    ax.set_ylim(y_lo, 1.0)
    ax.set_xlabel("wait t (seconds)")
    ax.set_title("P(wait ≤ t): the wait distribution", fontsize=11)
    ax.grid(True, color="#e5e5e5")


def _occupancy_panel(ax: Any, results: Mapping[str, SimulationResult]) -> None:
    first = next(iter(results.values()))
    agents = list(first.agents)[:_MAX_AGENTS]
    width = 0.8 / max(1, len(results))
    for n, result in enumerate(results.values()):
        xs, heights = [], []
        for a, aid in enumerate(agents):
            occ = result.agents[aid].occupancy.mean
            if math.isfinite(occ):
                xs.append(a - 0.4 + width * (n + 0.5))
                heights.append(min(1.0, occ))
        ax.bar(xs, heights, width=width, color=COLORS[n % len(COLORS)], alpha=0.85)
    ax.set_ylim(0, 1)
    ax.set_xticks(range(len(agents)))
    ax.set_xticklabels(agents if len(agents) <= 16 else [""] * len(agents), fontsize=8)
    jains = ", ".join(f"{n} {r.jain_index.mean:.3f}" for n, r in results.items())
    ax.set_xlabel(f"Jain's index: {jains}", fontsize=9)
    ax.set_title("Occupancy per agent (busy slots / slots)", fontsize=11)
    ax.grid(True, axis="y", color="#e5e5e5")


def _wait_chart(
    results: Mapping[str, SimulationResult], prediction: ErlangResult | None, title: str
) -> Figure:
    if not results:
        raise ValueError("nothing to draw: no results")
    fig = _new_figure()
    left, right = fig.subplots(1, 2)
    _wait_panel(left, results, prediction)
    _occupancy_panel(right, results)
    fig.suptitle(title, fontweight="bold")
    fig.legend(
        *left.get_legend_handles_labels(),
        loc="lower center",
        ncol=min(8, len(results) + 1),
        frameon=False,
    )
    fig.subplots_adjust(left=0.07, right=0.98, top=0.84, bottom=0.27, wspace=0.2)
    return fig


def wait_chart_svg(
    results: Mapping[str, SimulationResult],
    *,
    prediction: ErlangResult | None = None,
    title: str = "Wait distribution per policy",
) -> str:
    """An SVG document: left, the CDF of the wait per policy (with the target and, for Erlang C,
    the predicted CDF); right, each agent's mean occupancy per policy (fairness at a glance).
    """
    import matplotlib

    fig = _wait_chart(results, prediction, title)
    out = io.StringIO()
    # text stays text (searchable, smaller); no date: the same results give the same bytes
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "chatmgmt"}):
        fig.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


def wait_chart_png(
    results: Mapping[str, SimulationResult],
    *,
    prediction: ErlangResult | None = None,
    title: str = "Wait distribution per policy",
    scale: int = 2,
) -> bytes:
    """The same chart as :func:`wait_chart_svg` as a PNG image, ``scale`` pixels per SVG unit
    (960 × 440 units: 1920 × 880 pixels by default).
    """
    if scale < 1:
        raise ValueError(f"scale must be at least 1, not {scale}")
    out = io.BytesIO()
    _wait_chart(results, prediction, title).savefig(out, format="png", dpi=_DPI * scale)
    return out.getvalue()
