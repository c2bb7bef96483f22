"""The charts, drawn by matplotlib (the ``charts`` extra): PNG and SVG of the same figure."""

from __future__ import annotations

import sys
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
from chatmgmt.simulation._chart import COLORS, EXTRA_HINT, charts_available
from simulation.chart_helpers import pixels_near, png_size, svg_texts


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


def test_png_is_the_chart_size_times_the_scale(results: Mapping[str, SimulationResult]) -> None:
    assert png_size(wait_chart_png(results)) == (1920, 880)
    assert png_size(wait_chart_png(results, scale=1)) == (960, 440)
    with pytest.raises(ValueError, match="scale"):
        wait_chart_png(results, scale=0)


def test_each_policy_colour_is_drawn(results: Mapping[str, SimulationResult]) -> None:
    png = wait_chart_png(results, prediction=predict(_scenario(60.0)), scale=1)
    for n in range(len(results)):
        # the occupancy bars are filled at 85 % opacity over the white background
        assert pixels_near(png, COLORS[n], alpha=0.85) > 200, f"policy {n}'s bars"
    assert pixels_near(png, "#ffffff") > 960 * 440 // 2  # white background


def test_svg_labels_every_policy_and_the_figures(results: Mapping[str, SimulationResult]) -> None:
    svg = wait_chart_svg(results, prediction=predict(_scenario(60.0)), title="Team A")
    texts = " ".join(svg_texts(svg))
    for name in results:
        assert name in texts  # legend
    for part in ("Team A", "Erlang C (4 slots)", "Jain's index: round_robin", "target 1 s"):
        assert part in texts
    for colour in COLORS[: len(results)]:
        assert colour in svg
    assert wait_chart_svg(results, title="Team A") == wait_chart_svg(results, title="Team A")


def test_nothing_to_draw_is_refused() -> None:
    with pytest.raises(ValueError, match="no results"):
        wait_chart_svg({})


def test_without_the_extra_the_error_names_it(
    monkeypatch: pytest.MonkeyPatch, results: Mapping[str, SimulationResult]
) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what a missing extra looks like
    assert not charts_available()
    with pytest.raises(ImportError, match=r"chatmgmt\[charts\]"):
        wait_chart_png(results)
    assert "chatmgmt[charts]" in EXTRA_HINT
