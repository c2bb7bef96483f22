"""The command line: the demo runs end to end; bad usage exits 2 with one line."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys

import pytest

from chatmgmt.__main__ import main
from chatmgmt._demo import run_demo


def test_demo_runs_a_whole_day_and_every_webhook_verifies() -> None:
    out = io.StringIO()
    summary = run_demo(out)
    text = out.getvalue()
    for expected in (
        "Linus opens a chat -> vera",
        "rule 'vip customers'",
        "u7 waits (queue-first)",
        "delivered as 'this takes forever, *****'",
        "blocked",
        "Ken is now with the queue",
        "leave-a-message offered: no_agent_online",
        "via sticky",
        "ended: customer_inactivity",
        "Radia's chat starts with the bot             bot; agents hold",
        "the bot hands off -> ann                     reason 'refund needs a human'",
        "end reason bot; no rating asked (bot only)",
        "Margaret's chat is offered to wei",
        "wei declines: 'in a meeting'",
        "offered to xia instead",
        "xia accepts",
        "sla.warning: next_response",
        "sla.breached: next_response",
        "next response 100.0 s of 90.0 s, breached True",
        "signed requests received and verified",
    ):
        assert expected in text, expected
    assert summary["requests"] > 50
    assert summary["events"] == summary["emitted"]  # every event reached the receiver


@pytest.mark.parametrize("argv", [["nope"], ["demo", "--bad"], ["simulate", "--agents", "x"], []])
def test_bad_usage_is_one_line_and_status_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err and (len(err.splitlines()) == 1 or argv == [])


def test_module_entry_point_runs() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "chatmgmt", "--help"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0 and "demo" in proc.stdout


@pytest.mark.parametrize("command", ["demo", "simulate", "scan", "verify-webhook"])
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with contextlib.suppress(SystemExit):
        assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(("usage: python -m chatmgmt " + command, "usage: chatmgmt " + command))
