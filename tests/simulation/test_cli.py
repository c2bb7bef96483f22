"""``chatmgmt simulate``: flags, scenario files, JSON, charts and one-line errors."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from chatmgmt.simulation._chart import COLORS
from chatmgmt.simulation._cli import _Progress, simulate_main
from simulation.chart_helpers import pixels_near, png_size, svg_texts

SMALL = [
    "--arrivals-per-min", "60", "--handle-time-s", "2", "--agents", "2", "--slots", "2",
    "--duration-s", "200", "--warmup-s", "20", "--replications", "3", "--target-s", "1",
]  # fmt: skip


def _one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert simulate_main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("chatmgmt simulate: error: "), err
    return err


def test_table_compares_policies_with_erlang_c(capsys: pytest.CaptureFixture[str]) -> None:
    assert simulate_main([*SMALL, "--policy", "round_robin", "--policy", "saturation"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert any(line.startswith("round_robin ") for line in lines)
    assert any(line.startswith("saturation ") for line in lines)
    assert any(line.startswith("Erlang C ") for line in lines)
    assert "P(wait)" in out and "Jain" in out


def test_json_has_the_figures_and_intervals(capsys: pytest.CaptureFixture[str]) -> None:
    assert simulate_main([*SMALL, "--json", "--patience-s", "5", "--policy", "least_busy"]) == 0
    doc = json.loads(capsys.readouterr().out)
    fig = doc["policies"]["least_busy"]
    for key in ("p_wait", "mean_wait_s", "service_level", "p_abandon"):
        assert isinstance(fig[key], float)
        lo, hi = fig[f"{key}_ci"]
        assert lo <= fig[key] <= hi
    assert set(fig["agents"]) == {"a00", "a01"}
    assert doc["erlang"]["model"] == "erlang_a" and doc["erlang"]["servers"] == 4
    assert 0 < doc["erlang"]["p_abandon"] < 1
    assert doc["scenario"]["replications"] == 3


def test_same_seed_same_output(capsys: pytest.CaptureFixture[str]) -> None:
    simulate_main([*SMALL, "--json", "--seed", "9"])
    first = capsys.readouterr().out
    simulate_main([*SMALL, "--json", "--seed", "9"])
    assert capsys.readouterr().out == first


def test_chart_is_an_svg(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chart = tmp_path / "waits.svg"
    argv = [*SMALL, "--policy", "round_robin", "--policy", "least_busy", "--chart", str(chart)]
    assert simulate_main(argv) == 0
    assert f"chart written to {chart}" in capsys.readouterr().out
    texts = svg_texts(chart.read_text(encoding="utf-8"))
    for label in ("round_robin", "least_busy", "Erlang C (4 slots)"):
        assert label in texts  # two policies and the Erlang C curve


def test_chart_is_a_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chart = tmp_path / "x.png"
    argv = [*SMALL, "--policy", "round_robin", "--policy", "least_busy", "--chart", str(chart)]
    assert simulate_main(argv) == 0
    assert f"chart written to {chart}" in capsys.readouterr().out
    png = chart.read_bytes()
    assert png_size(png) == (1920, 880)
    assert pixels_near(png, COLORS[0], alpha=0.85) > 0 and pixels_near(png, COLORS[1], alpha=0.85)


def test_chart_extension_is_case_blind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert simulate_main([*SMALL, "--chart", str(tmp_path / "x.PNG"), "--json"]) == 0
    png_size((tmp_path / "x.PNG").read_bytes())
    json.loads(capsys.readouterr().out)


def test_chart_without_the_extra_names_it_before_simulating(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what a missing extra looks like
    assert simulate_main([*SMALL, "--chart", str(tmp_path / "x.svg")]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert "pip install 'chatmgmt[charts]'" in err
    assert not (tmp_path / "x.svg").exists()


@pytest.mark.parametrize("name", ["x.jpg", "x.svgz", "chart", "x.png.txt"])
def test_other_chart_extensions_are_refused_clearly(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _one_line_error(capsys, [*SMALL, "--chart", str(tmp_path / name)])
    assert ".svg or .png" in err
    assert not (tmp_path / name).exists()


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--agents", "0"], "--agents"),
        (["--agents", "two"], "--agents"),
        (["--arrivals-per-min", "nan"], "--arrivals-per-min"),
        (["--policy", "fastest"], "unknown policy 'fastest'"),
        (["--warmup-s", "500", "--duration-s", "100"], "warmup_s"),
        (["--confidence", "1.5"], "confidence"),
        (["--handle-cv", "0.5"], "--handle-cv applies to --handle-dist lognormal"),
        (["--scenario", "/nonexistent/s.json"], "cannot read"),
    ],
)
def test_bad_flags_are_one_line_and_status_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str
) -> None:
    assert fragment in _one_line_error(capsys, argv)


def test_scenario_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "day.json"
    path.write_text(
        json.dumps(
            {
                "duration_s": 300,
                "warmup_s": 30,
                "target_s": 2,
                "replications": 2,
                "policies": ["round_robin", "saturation"],
                "arrivals": [
                    {
                        "group": "sales",
                        "per_min": 30,
                        "handle": {"dist": "lognormal", "mean_s": 3, "cv": 0.7},
                    },
                    {"group": "support", "per_min": 30, "handle": 2, "patience": 10},
                ],
                "agents": [
                    {"id": "ann", "slots": 2, "groups": ["sales", "support"]},
                    {"count": 2, "prefix": "s", "groups": ["support"], "shifts": [[0, 150]]},
                ],
            }
        ),
        encoding="utf-8",
    )
    assert simulate_main(["--scenario", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert list(doc["policies"]) == ["round_robin", "saturation"]
    assert set(doc["policies"]["saturation"]["groups"]) == {"sales", "support"}
    assert doc["erlang"] is None  # two streams, shifts: no closed form
    assert doc["scenario"]["replications"] == 2


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib")
def test_toml_scenario_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        "duration_s = 100\nwarmup_s = 10\nreplications = 2\n"
        "[[arrivals]]\nper_min = 30\nhandle = 2\n[[agents]]\ncount = 2\n",
        encoding="utf-8",
    )
    assert simulate_main(["--scenario", str(path)]) == 0
    assert "Erlang C" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json", "invalid JSON at line 1"),
        ('{"arrivals": [{"per_min": 1}], "agents": [{"id": "a", "slots": -1}]}', "agents[0].slots"),
        ("[1, 2]", "a scenario must be an object"),
    ],
)
def test_bad_scenario_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, fragment: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    err = _one_line_error(capsys, ["--scenario", str(path)])
    assert fragment in err and str(path) in err


def test_model_flags_do_not_mix_with_a_scenario(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.json"
    path.write_text('{"arrivals": [{"per_min": 1}], "agents": [{"id": "a"}]}', encoding="utf-8")
    err = _one_line_error(capsys, ["--scenario", str(path), "--agents", "3"])
    assert "--agents cannot be combined with --scenario" in err


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert simulate_main(["--help"]) == 0
    assert "--arrivals-per-min" in capsys.readouterr().out


def test_progress_only_after_a_second_and_cleared() -> None:
    stream = io.StringIO()
    progress = _Progress(stream, enabled=True)
    progress(1, 4)
    assert stream.getvalue() == ""  # quick runs stay quiet
    progress.start -= 2.0
    progress(2, 4)
    assert stream.getvalue() == "\rsimulating: 2/4 replications"
    progress.close()
    assert stream.getvalue().endswith("\r")
    quiet = io.StringIO()
    off = _Progress(quiet, enabled=False)
    off.start -= 2.0
    off(1, 1)
    off.close()
    assert quiet.getvalue() == ""
