"""A dependency-free SVG chart: wait distributions and agent occupancy per policy."""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from xml.sax.saxutils import escape

from ._engine import SimulationResult
from ._formulas import ErlangResult

__all__ = ["wait_chart_svg"]

_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2")
_W, _H = 960, 440
_PAD_L, _PAD_R, _PAD_T, _PAD_B = 64, 24, 56, 92
_GAP = 80


def _nice_step(span: float, ticks: int = 5) -> float:
    raw = span / ticks if span > 0 else 1.0
    mag = 10.0 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def _fmt(x: float) -> str:
    return f"{x:.0f}" if abs(x - round(x)) < 1e-9 else f"{x:g}"


def wait_chart_svg(
    results: Mapping[str, SimulationResult],
    *,
    prediction: ErlangResult | None = None,
    title: str = "Wait distribution per policy",
) -> str:
    """An SVG document: left, the CDF of the wait per policy (with the target and, for Erlang C,
    the predicted CDF); right, each agent's mean occupancy per policy (fairness at a glance).
    """
    if not results:
        raise ValueError("nothing to draw: no results")
    first = next(iter(results.values()))
    target = first.target_s
    panel_w = (_W - _PAD_L - _PAD_R - _GAP) / 2
    plot_h = _H - _PAD_T - _PAD_B
    x0, y0 = _PAD_L, _PAD_T
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
        f'viewBox="0 0 {_W} {_H}" font-family="Helvetica, Arial, sans-serif" font-size="12">',
        f'<rect width="{_W}" height="{_H}" fill="white"/>',
        f'<text x="{_W / 2}" y="24" text-anchor="middle" font-size="16" '
        f'font-weight="bold">{escape(title)}</text>',
    ]

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

    out.append(
        f'<text x="{x0 + panel_w / 2}" y="{y0 - 10}" text-anchor="middle" '
        f'font-size="13">P(wait ≤ t): the wait distribution</text>'
    )
    tick = 0.05 if y_lo >= 0.8 else 0.1 if y_lo >= 0.5 else 0.2
    for i in range(0, round((1.0 - y_lo) / tick) + 1):
        p = y_lo + tick * i
        out.append(
            f'<line x1="{x0}" x2="{x0 + panel_w}" y1="{sy(p):.1f}" y2="{sy(p):.1f}" '
            f'stroke="#e5e5e5"/>'
        )
        out.append(f'<text x="{x0 - 6}" y="{sy(p) + 4:.1f}" text-anchor="end">{p:.2f}</text>')
    v = 0.0
    while v <= x_max + 1e-9:
        out.append(
            f'<line x1="{sx(v):.1f}" x2="{sx(v):.1f}" y1="{y0}" y2="{y0 + plot_h}" '
            f'stroke="#f0f0f0"/>'
        )
        out.append(
            f'<text x="{sx(v):.1f}" y="{y0 + plot_h + 16}" text-anchor="middle">{_fmt(v)}</text>'
        )
        v += step
    out.append(
        f'<text x="{x0 + panel_w / 2}" y="{y0 + plot_h + 34}" '
        f'text-anchor="middle">wait t (seconds)</text>'
    )
    out.append(
        f'<rect x="{x0}" y="{y0}" width="{panel_w}" height="{plot_h}" fill="none" stroke="#888"/>'
    )
    out.append(
        f'<line x1="{sx(target):.1f}" x2="{sx(target):.1f}" y1="{y0}" '
        f'y2="{y0 + plot_h}" stroke="#555" stroke-dasharray="4 3"/>'
    )
    out.append(
        f'<text x="{sx(target) + 4:.1f}" y="{y0 + plot_h - 6}" fill="#555">'
        f"target {_fmt(target)} s</text>"
    )
    samples = 240
    if prediction is not None and prediction.model == "C" and prediction.stable:
        decay = prediction.servers * prediction.service_rate - prediction.arrival_rate
        pts = []
        for k in range(samples + 1):
            t = x_max * k / samples
            pts.append(f"{sx(t):.1f},{sy(1 - prediction.p_wait * math.exp(-decay * t)):.1f}")
        out.append(
            f'<polyline points="{" ".join(pts)}" fill="none" stroke="black" '
            f'stroke-width="1.5" stroke-dasharray="6 4"/>'
        )
    for n, (name, result) in enumerate(results.items()):
        waits = result.waits_s
        if not waits:
            continue
        color = _COLORS[n % len(_COLORS)]
        pts = []
        for k in range(samples + 1):
            t = x_max * k / samples
            pts.append(f"{sx(t):.1f},{sy(bisect.bisect_right(waits, t) / len(waits)):.1f}")
        out.append(
            f'<polyline points="{" ".join(pts)}" fill="none" stroke="{color}" '
            f'stroke-width="2" stroke-opacity="0.85"><title>{escape(name)}</title>'
            f"</polyline>"
        )

    # legend under both panels
    ly = _H - 22
    lx = float(x0)
    entries: list[tuple[str, str, str]] = [
        (name, _COLORS[n % len(_COLORS)], "") for n, name in enumerate(results)
    ]
    if prediction is not None and prediction.model == "C" and prediction.stable:
        entries.append((f"Erlang C ({prediction.servers} slots)", "black", "6 4"))
    for label, color, dash in entries:
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(
            f'<line x1="{lx}" x2="{lx + 24}" y1="{ly}" y2="{ly}" stroke="{color}" '
            f'stroke-width="3"{dash_attr}/>'
        )
        out.append(f'<text x="{lx + 30}" y="{ly + 4}">{escape(label)}</text>')
        lx += 40 + 7.5 * len(label)

    # ------------------------------------------------------------ right: occupancy per agent
    bx0 = x0 + panel_w + _GAP
    agents: Sequence[str] = list(first.agents)
    out.append(
        f'<text x="{bx0 + panel_w / 2}" y="{y0 - 10}" text-anchor="middle" '
        f'font-size="13">Occupancy per agent (busy slots / slots)</text>'
    )
    for i in range(0, 6):
        p = i / 5
        out.append(
            f'<line x1="{bx0}" x2="{bx0 + panel_w}" y1="{sy_bar(p):.1f}" y2="{sy_bar(p):.1f}" '
            f'stroke="#e5e5e5"/>'
        )
        out.append(f'<text x="{bx0 - 6}" y="{sy_bar(p) + 4:.1f}" text-anchor="end">{p:.1f}</text>')
    out.append(
        f'<rect x="{bx0}" y="{y0}" width="{panel_w}" height="{plot_h}" fill="none" stroke="#888"/>'
    )
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
                f'<rect x="{gx + n * bar_w:.1f}" y="{top:.1f}" width="{max(bar_w - 1, 1):.1f}" '
                f'height="{y0 + plot_h - top:.1f}" fill="{_COLORS[n % len(_COLORS)]}" '
                f'fill-opacity="0.85"><title>{escape(name)} {escape(aid)}: {occ:.3f}</title></rect>'
            )
        if len(shown) <= 16:
            out.append(
                f'<text x="{gx + group_w * 0.4:.1f}" y="{y0 + plot_h + 16}" '
                f'text-anchor="middle" font-size="11">{escape(aid)}</text>'
            )
    jains = ", ".join(f"{escape(n)} {r.jain_index.mean:.3f}" for n, r in results.items())
    out.append(
        f'<text x="{bx0 + panel_w / 2}" y="{y0 + plot_h + 34}" text-anchor="middle">'
        f"Jain's index: {jains}</text>"
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"
