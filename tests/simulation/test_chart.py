"""The charts: one layout drawn as SVG and as PNG by the built-in rasterizer (no image library)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Mapping

import pytest

from chatmgmt.simulation import (
    AgentSpec,
    Exponential,
    PoissonArrivals,
    Scenario,
    SimulationResult,
    compare,
    predict,
    wait_chart_png,
    wait_chart_svg,
)
from chatmgmt.simulation._chart import chart_png
from chatmgmt.simulation._font import GLYPHS, HEIGHT, WIDTH
from chatmgmt.simulation._layout import COLORS, Chart, Line, Polyline, Rect, Text, wait_chart_layout
from chatmgmt.simulation._raster import Canvas, png_bytes
from simulation.png_helpers import colours, decode_png, rgb

SVG = "{http://www.w3.org/2000/svg}"


def _scenario(per_min: float) -> Scenario:
    stream = PoissonArrivals(per_min / 60.0, handle=Exponential(2.0))
    agents = [AgentSpec("a0", slots=2), AgentSpec("a1", slots=2)]
    return Scenario([stream], agents, duration_s=200.0, warmup_s=20.0, target_s=1.0)


@pytest.fixture(scope="module")
def results() -> Mapping[str, SimulationResult]:
    """Three policies on three loads, so that their wait curves differ."""
    out: dict[str, SimulationResult] = {}
    for name, per_min in (("round_robin", 40.0), ("least_busy", 60.0), ("saturation", 80.0)):
        out[name] = compare(_scenario(per_min), [name], replications=2, seed=3)[name]
    return out


def test_png_decodes_at_the_chart_size_times_the_scale(
    results: Mapping[str, SimulationResult],
) -> None:
    width, height, rows = decode_png(wait_chart_png(results))
    assert (width, height) == (1920, 880)
    assert len(rows) == 880 and all(len(r) == 1920 * 3 for r in rows)
    width, height, _ = decode_png(wait_chart_png(results, scale=1))
    assert (width, height) == (960, 440)
    with pytest.raises(ValueError, match="scale"):
        wait_chart_png(results, scale=0)


def test_each_policy_colour_is_drawn_in_both_panels_and_the_legend(
    results: Mapping[str, SimulationResult],
) -> None:
    prediction = predict(_scenario(60.0))
    _, _, rows = decode_png(wait_chart_png(results, prediction=prediction, scale=1))
    # panels: x 64..460 (CDF) and 540..936 (occupancy), y 56..348; the legend row at y 418
    cdf = colours(rows, 66, 58, 460, 346)
    bars = colours(rows, 544, 58, 934, 346)
    legend = colours(rows, 60, 410, 900, 426)
    for n in range(len(results)):
        colour = rgb(COLORS[n])
        assert cdf[colour] > 50, f"policy {n}'s wait curve"
        assert bars[colour] > 200, f"policy {n}'s occupancy bars"
        assert legend[colour] > 0, f"policy {n}'s legend swatch"
    assert cdf[(0, 0, 0)] > 50  # the Erlang C curve, dashed black
    assert colours(rows, 0, 0, 960, 40)[(0, 0, 0)] > 100  # the title, in the bitmap font
    assert colours(rows, 0, 0, 960, 440)[(255, 255, 255)] > 960 * 440 // 2  # white background


def test_svg_and_png_draw_the_same_layout(results: Mapping[str, SimulationResult]) -> None:
    chart = wait_chart_layout(results)
    kinds = Counter(type(s).__name__ for s in chart.shapes)
    root = ET.fromstring(wait_chart_svg(results))
    assert len(root.findall(f"{SVG}polyline")) == kinds["Polyline"] == 3
    assert len(root.findall(f"{SVG}line")) == kinds["Line"]
    assert len(root.findall(f"{SVG}rect")) == kinds["Rect"]
    texts = [s.text for s in chart.shapes if isinstance(s, Text)]
    assert [t.text for t in root.findall(f"{SVG}text")] == texts
    assert "Jain's index: round_robin" in " ".join(texts)
    assert decode_png(chart_png(chart))[:2] == (1920, 880)


def test_a_hand_made_layout_is_drawn_where_it_says() -> None:
    chart = Chart(
        20,
        10,
        (
            Rect(0, 0, 20, 10, fill="#ffffff"),
            Rect(2, 2, 4, 3, fill="#ff0000"),
            Line(10, 1, 18, 1, "#00ff00"),
            Polyline(((10, 8), (18, 8)), "#0000ff", width=2),
        ),
    )
    _, _, rows = decode_png(chart_png(chart, scale=1))
    red, green, blue = (255, 0, 0), (0, 255, 0), (0, 0, 255)
    assert colours(rows, 2, 2, 6, 5) == Counter({red: 12})
    assert colours(rows, 0, 0, 20, 10)[red] == 12
    assert colours(rows, 10, 1, 19, 2) == Counter({green: 9})
    assert colours(rows, 10, 7, 19, 9) == Counter({blue: 18})  # 2 px thick: rows 7 and 8


def test_bresenham_lines_thick_lines_and_dashes() -> None:
    c = Canvas(12, 8)
    black = (0, 0, 0)
    c.line(0, 0, 9, 3, black)
    lit = {(x, y) for y in range(8) for x in range(12) if c.pixel(x, y) == black}
    assert (0, 0) in lit and (9, 3) in lit
    assert len(lit) == 10  # one pixel per column along the major axis
    assert sorted(x for x, _ in lit) == list(range(10))

    c = Canvas(12, 8)
    c.line(1, 4, 10, 4, black, width=3)
    assert all(c.pixel(x, y) == black for x in range(0, 12) for y in (3, 4, 5) if 0 <= x <= 11)
    assert c.pixel(5, 2) == (255, 255, 255) and c.pixel(5, 6) == (255, 255, 255)

    c = Canvas(20, 3)
    c.line(0, 1, 19, 1, black, dash=(3, 2))
    on = "".join("#" if c.pixel(x, 1) == black else "." for x in range(20))
    assert on == "###..###..###..###.."

    c = Canvas(20, 20)
    c.line(0, 0, 19, 19, black, dash=(4, 4))  # diagonal steps count √2 each
    diagonal = "".join("#" if c.pixel(i, i) == black else "." for i in range(20))
    assert diagonal.startswith("###...###...")


def test_rectangles_clip_and_outlines_straddle_the_edge() -> None:
    c = Canvas(6, 4)
    c.fill_rect(-5, -5, 100, 2, (1, 2, 3))
    assert c.pixel(0, 0) == c.pixel(5, 1) == (1, 2, 3) and c.pixel(0, 2) == (255, 255, 255)
    c = Canvas(10, 10)
    c.rect_outline(2, 2, 7, 7, (9, 9, 9), width=2)
    assert c.pixel(1, 1) == c.pixel(2, 2) == c.pixel(7, 4) == (9, 9, 9)
    assert c.pixel(3, 3) == c.pixel(8, 4) == (255, 255, 255)


def test_text_uses_the_bitmap_font_scaled_and_anchored() -> None:
    c = Canvas(40, 30)
    c.text(20, 20, "I", (0, 0, 0), dot=2, anchor="middle")
    lit = {(x, y) for y in range(30) for x in range(40) if c.pixel(x, y) == (0, 0, 0)}
    assert len(lit) == len(GLYPHS["I"]) * 4  # each dot 2 × 2 pixels
    xs, ys = {x for x, _ in lit}, {y for _, y in lit}
    assert max(ys) == 19 and min(ys) == 20 - HEIGHT * 2  # standing on the baseline
    assert (min(xs) + max(xs) + 1) / 2 == pytest.approx(20, abs=1)  # centred
    assert c.text_width("abc", 2) == 3 * 6 * 2 - 2
    c = Canvas(40, 30)
    c.text(39, 20, "x", (0, 0, 0), dot=1, anchor="end")
    assert max(x for y in range(30) for x in range(40) if c.pixel(x, y) != (255,) * 3) == 38
    # ends at x: the last lit column is the one before it


def test_the_font_covers_printable_ascii_and_the_chart_symbols() -> None:
    for code in range(32, 127):
        assert chr(code) in GLYPHS, repr(chr(code))
    for char in "≤±×":
        assert char in GLYPHS
    for char, dots in GLYPHS.items():
        assert all(0 <= col < WIDTH and 0 <= row < HEIGHT + 2 for col, row in dots), char
        assert dots or char == " ", f"{char!r} draws nothing"
    assert len({GLYPHS[c] for c in "0123456789"}) == 10


def test_png_bytes_checks_the_buffer_size() -> None:
    decode_png(png_bytes(2, 1, bytes(6)))
    with pytest.raises(ValueError, match="RGB pixels"):
        png_bytes(2, 2, bytes(6))
