"""Dependency-free charts of the wait distributions and agent occupancy per policy: SVG or PNG.

Both writers draw the same :func:`~._layout.wait_chart_layout`; PNG goes through the small
rasterizer in :mod:`._raster` (no image library).
"""

from __future__ import annotations

from collections.abc import Mapping
from xml.sax.saxutils import escape

from ._engine import SimulationResult
from ._formulas import ErlangResult
from ._layout import Chart, Line, Polyline, Text, wait_chart_layout
from ._raster import Canvas

__all__ = ["chart_png", "chart_svg", "wait_chart_png", "wait_chart_svg"]


def _n(v: float) -> str:
    s = f"{v:.1f}"
    return s[:-2] if s.endswith(".0") else s


def _dash(dash: tuple[float, ...]) -> str:
    return f' stroke-dasharray="{" ".join(_n(d) for d in dash)}"' if dash else ""


def _title(tooltip: str) -> str:
    return f"<title>{escape(tooltip)}</title>" if tooltip else ""


def chart_svg(chart: Chart) -> str:
    """The SVG document of a laid-out chart."""
    w, h = chart.width, chart.height
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" font-family="Helvetica, Arial, sans-serif" font-size="12">'
    ]
    for s in chart.shapes:
        if isinstance(s, Text):
            attrs = f'x="{_n(s.x)}" y="{_n(s.y)}"'
            if s.anchor != "start":
                attrs += f' text-anchor="{s.anchor}"'
            if s.size != 12:
                attrs += f' font-size="{_n(s.size)}"'
            if s.bold:
                attrs += ' font-weight="bold"'
            if s.color != "#000000":
                attrs += f' fill="{s.color}"'
            out.append(f"<text {attrs}>{escape(s.text)}</text>")
        elif isinstance(s, Line):
            width = f' stroke-width="{_n(s.width)}"' if s.width != 1 else ""
            out.append(
                f'<line x1="{_n(s.x1)}" x2="{_n(s.x2)}" y1="{_n(s.y1)}" y2="{_n(s.y2)}" '
                f'stroke="{s.color}"{width}{_dash(s.dash)}/>'
            )
        elif isinstance(s, Polyline):
            points = " ".join(f"{_n(x)},{_n(y)}" for x, y in s.points)
            opacity = f' stroke-opacity="{s.opacity:g}"' if s.opacity < 1 else ""
            out.append(
                f'<polyline points="{points}" fill="none" stroke="{s.color}" '
                f'stroke-width="{_n(s.width)}"{_dash(s.dash)}{opacity}>{_title(s.tooltip)}'
                "</polyline>"
            )
        else:
            fill = s.fill or "none"
            stroke = f' stroke="{s.stroke}"' if s.stroke else ""
            opacity = f' fill-opacity="{s.opacity:g}"' if s.opacity < 1 else ""
            out.append(
                f'<rect x="{_n(s.x)}" y="{_n(s.y)}" width="{_n(s.w)}" height="{_n(s.h)}" '
                f'fill="{fill}"{stroke}{opacity}>{_title(s.tooltip)}</rect>'
            )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _rgb(color: str) -> tuple[int, int, int]:
    c = color.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def _font_scale(size: float, scale: int) -> int:
    """Pixels per font dot: the 5x7 font at 2 dots per unit pixel draws 12-unit text."""
    return max(1, round(scale * size / 12))


def chart_png(chart: Chart, *, scale: int = 2) -> bytes:
    """The PNG image (RGB, 8 bits) of a laid-out chart, ``scale`` pixels per chart unit.

    Shapes are drawn opaque (no blending, no antialiasing); tooltips are SVG-only.
    """
    if scale < 1:
        raise ValueError(f"scale must be at least 1, not {scale}")
    canvas = Canvas(chart.width * scale, chart.height * scale)

    def px(v: float) -> int:
        return round(v * scale)

    def stroke(width: float) -> int:
        return max(1, round(width * scale))

    for s in chart.shapes:
        if isinstance(s, Text):
            dot = _font_scale(s.size, scale)
            canvas.text(px(s.x), px(s.y), s.text, _rgb(s.color), dot, s.anchor, bold=s.bold)
        elif isinstance(s, Line):
            dash = tuple(d * scale for d in s.dash)
            canvas.polyline(
                [(px(s.x1), px(s.y1)), (px(s.x2), px(s.y2))], _rgb(s.color), stroke(s.width), dash
            )
        elif isinstance(s, Polyline):
            dash = tuple(d * scale for d in s.dash)
            points = [(px(x), px(y)) for x, y in s.points]
            canvas.polyline(points, _rgb(s.color), stroke(s.width), dash)
        else:
            x1, y1, x2, y2 = px(s.x), px(s.y), px(s.x + s.w), px(s.y + s.h)
            if s.fill is not None:
                canvas.fill_rect(x1, y1, x2, y2, _rgb(s.fill))
            if s.stroke is not None:
                canvas.rect_outline(x1, y1, x2, y2, _rgb(s.stroke), stroke(1))
    return canvas.to_png()


def wait_chart_svg(
    results: Mapping[str, SimulationResult],
    *,
    prediction: ErlangResult | None = None,
    title: str = "Wait distribution per policy",
) -> str:
    """An SVG document: left, the CDF of the wait per policy (with the target and, for Erlang C,
    the predicted CDF); right, each agent's mean occupancy per policy (fairness at a glance).
    """
    return chart_svg(wait_chart_layout(results, prediction=prediction, title=title))


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
    return chart_png(wait_chart_layout(results, prediction=prediction, title=title), scale=scale)
