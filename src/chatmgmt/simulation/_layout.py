"""The chart's geometry, once: a list of shapes in chart units that the SVG and PNG writers draw.

The data preparation (the wait CDF per policy, the Erlang C curve, each agent's occupancy
per policy, the axis ranges and ticks) lives here; the writers only translate shapes.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from ._engine import SimulationResult
from ._formulas import ErlangResult

__all__ = ["COLORS", "Chart", "Line", "Polyline", "Rect", "Shape", "Text", "wait_chart_layout"]

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2")
"""One colour per policy, in the order of the results."""

BLACK, WHITE, GRID, GRID_LIGHT, FRAME, MUTED = (
    "#000000",
    "#ffffff",
    "#e5e5e5",
    "#f0f0f0",
    "#888888",
    "#555555",
)

_W, _H = 960, 440
_PAD_L, _PAD_R, _PAD_T, _PAD_B = 64, 24, 56, 92
_GAP = 80
_SAMPLES = 240

Anchor = Literal["start", "middle", "end"]


@dataclass(frozen=True)
class Rect:
    """A rectangle: filled (``fill``), outlined (``stroke``, 1 unit wide) or both."""

    x: float
    y: float
    w: float
    h: float
    fill: str | None = None
    stroke: str | None = None
    opacity: float = 1.0
    tooltip: str = ""


@dataclass(frozen=True)
class Line:
    """A straight segment; ``dash`` is on/off lengths in chart units (empty: solid)."""

    x1: float
    y1: float
    x2: float
    y2: float
    color: str
    width: float = 1.0
    dash: tuple[float, ...] = ()


@dataclass(frozen=True)
class Polyline:
    """Connected segments through ``points``."""

    points: tuple[tuple[float, float], ...]
    color: str
    width: float = 1.0
    dash: tuple[float, ...] = ()
    opacity: float = 1.0
    tooltip: str = ""


@dataclass(frozen=True)
class Text:
    """A label whose baseline starts at, is centred on or ends at ``x``."""

    x: float
    y: float
    text: str
    anchor: Anchor = "start"
    size: float = 12.0
    bold: bool = False
    color: str = BLACK


Shape = Rect | Line | Polyline | Text


@dataclass(frozen=True)
class Chart:
    """``width`` × ``height`` chart units and the shapes, in drawing order."""

    width: int
    height: int
    shapes: tuple[Shape, ...]


def _nice_step(span: float, ticks: int = 5) -> float:
    raw = span / ticks if span > 0 else 1.0
    mag = 10.0 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def _fmt(x: float) -> str:
    return f"{x:.0f}" if abs(x - round(x)) < 1e-9 else f"{x:g}"


def wait_chart_layout(
    results: Mapping[str, SimulationResult],
    *,
    prediction: ErlangResult | None = None,
    title: str = "Wait distribution per policy",
) -> Chart:
    """Left, the CDF of the wait per policy (with the target and, for Erlang C, the predicted
    CDF); right, each agent's mean occupancy per policy (fairness at a glance); a legend below.
    """
    if not results:
        raise ValueError("nothing to draw: no results")
    first = next(iter(results.values()))
    target = first.target_s
    panel_w = (_W - _PAD_L - _PAD_R - _GAP) / 2
    plot_h = _H - _PAD_T - _PAD_B
    x0, y0 = float(_PAD_L), float(_PAD_T)
    out: list[Shape] = [
        Rect(0, 0, _W, _H, fill=WHITE),
        Text(_W / 2, 24, title, "middle", size=16, bold=True),
    ]
    erlang_c = prediction is not None and prediction.model == "C" and prediction.stable

    # ------------------------------------------------------------ left: wait CDF
    tail = [
        r.waits_s[min(len(r.waits_s) - 1, int(0.995 * len(r.waits_s)))]
        for r in results.values()
        if r.waits_s
    ]
    x_max = max([target * 2.0, *tail, 1.0])
    step = _nice_step(x_max)
    x_max = math.ceil(x_max / step) * step

    def sx(v: float) -> float:
        return x0 + panel_w * min(v, x_max) / x_max

    # the CDF starts at P(no wait): zoom the y axis onto [y_lo, 1]
    starts = [
        bisect.bisect_right(r.waits_s, 0.0) / len(r.waits_s) for r in results.values() if r.waits_s
    ]
    if prediction is not None and prediction.stable:
        starts.append(1.0 - prediction.p_wait)
    y_lo = min(0.8, math.floor(min([*starts, 1.0]) * 5) / 5)

    def sy(p: float) -> float:
        return y0 + plot_h * (1.0 - (p - y_lo) / (1.0 - y_lo))

    def sy_bar(p: float) -> float:
        return y0 + plot_h * (1.0 - p)

    out.append(Text(x0 + panel_w / 2, y0 - 10, "P(wait ≤ t): the wait distribution", "middle", 13))
    tick = 0.05 if y_lo >= 0.8 else 0.1 if y_lo >= 0.5 else 0.2
    for i in range(0, round((1.0 - y_lo) / tick) + 1):
        p = y_lo + tick * i
        out.append(Line(x0, sy(p), x0 + panel_w, sy(p), GRID))
        out.append(Text(x0 - 6, sy(p) + 4, f"{p:.2f}", "end"))
    v = 0.0
    while v <= x_max + 1e-9:
        out.append(Line(sx(v), y0, sx(v), y0 + plot_h, GRID_LIGHT))
        out.append(Text(sx(v), y0 + plot_h + 16, _fmt(v), "middle"))
        v += step
    out.append(Text(x0 + panel_w / 2, y0 + plot_h + 34, "wait t (seconds)", "middle"))
    out.append(Rect(x0, y0, panel_w, plot_h, stroke=FRAME))
    out.append(Line(sx(target), y0, sx(target), y0 + plot_h, MUTED, dash=(4, 3)))
    out.append(Text(sx(target) + 4, y0 + plot_h - 6, f"target {_fmt(target)} s", color=MUTED))
    ts = [x_max * k / _SAMPLES for k in range(_SAMPLES + 1)]
    if erlang_c:
        assert prediction is not None
        decay = prediction.servers * prediction.service_rate - prediction.arrival_rate
        p_wait = prediction.p_wait
        curve = tuple((sx(t), sy(1 - p_wait * math.exp(-decay * t))) for t in ts)
        out.append(Polyline(curve, BLACK, width=1.5, dash=(6, 4)))
    for n, (name, result) in enumerate(results.items()):
        waits = result.waits_s
        if not waits:
            continue
        cdf = tuple((sx(t), sy(bisect.bisect_right(waits, t) / len(waits))) for t in ts)
        out.append(
            Polyline(cdf, COLORS[n % len(COLORS)], width=2, opacity=0.85, tooltip=name),
        )

    # legend under both panels
    ly = _H - 22
    lx = x0
    entries: list[tuple[str, str, tuple[float, ...]]] = [
        (name, COLORS[n % len(COLORS)], ()) for n, name in enumerate(results)
    ]
    if erlang_c:
        assert prediction is not None
        entries.append((f"Erlang C ({prediction.servers} slots)", BLACK, (6, 4)))
    for label, color, dash in entries:
        out.append(Line(lx, ly, lx + 24, ly, color, width=3, dash=dash))
        out.append(Text(lx + 30, ly + 4, label))
        lx += 40 + 7.5 * len(label)

    # ------------------------------------------------------------ right: occupancy per agent
    bx0 = x0 + panel_w + _GAP
    agents: Sequence[str] = list(first.agents)
    out.append(
        Text(bx0 + panel_w / 2, y0 - 10, "Occupancy per agent (busy slots / slots)", "middle", 13)
    )
    for i in range(0, 6):
        p = i / 5
        out.append(Line(bx0, sy_bar(p), bx0 + panel_w, sy_bar(p), GRID))
        out.append(Text(bx0 - 6, sy_bar(p) + 4, f"{p:.1f}", "end"))
    out.append(Rect(bx0, y0, panel_w, plot_h, stroke=FRAME))
    shown = agents[:40]
    group_w = panel_w / max(1, len(shown))
    bar_w = group_w * 0.8 / max(1, len(results))
    for a, aid in enumerate(shown):
        gx = bx0 + group_w * a + group_w * 0.1
        for n, (name, result) in enumerate(results.items()):
            occ = result.agents[aid].occupancy.mean
            if not math.isfinite(occ):
                continue
            top = sy_bar(min(1.0, occ))
            out.append(
                Rect(
                    gx + n * bar_w,
                    top,
                    max(bar_w - 1, 1),
                    y0 + plot_h - top,
                    fill=COLORS[n % len(COLORS)],
                    opacity=0.85,
                    tooltip=f"{name} {aid}: {occ:.3f}",
                )
            )
        if len(shown) <= 16:
            out.append(Text(gx + group_w * 0.4, y0 + plot_h + 16, aid, "middle", 11))
    jains = ", ".join(f"{n} {r.jain_index.mean:.3f}" for n, r in results.items())
    out.append(Text(bx0 + panel_w / 2, y0 + plot_h + 34, f"Jain's index: {jains}", "middle"))
    return Chart(_W, _H, tuple(out))
