"""The ``scan`` command."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from chatmgmt.moderation._cli import scan_main


@pytest.fixture
def words(tmp_path: Path) -> Path:
    p = tmp_path / "words.tsv"
    p.write_text("fuck\tabuse\tmask\n傻逼\tabuse\tblock\n", encoding="utf-8")
    return p


def test_scan_files(words: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "chat.txt"
    text.write_text("hello\nwhat the f.u.c.k 傻1逼\n", encoding="utf-8")
    assert scan_main(["--words", str(words), str(text)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"{text}:2:10-16\tmask\tabuse\tfuck\tf.u.c.k",
        f"{text}:2:18-20\tblock\tabuse\t傻逼\t傻1逼",
    ]


def test_scan_stdin(
    words: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("all good\n"))
    assert scan_main(["--words", str(words)]) == 0
    assert capsys.readouterr().out == ""
    monkeypatch.setattr("sys.stdin", io.StringIO("FUCK\n"))
    assert scan_main(["--words", str(words), "--role", "agent"]) == 1
    assert "fuck" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["--bogus"],
        [],
        ["--words", "/nonexistent/words.txt"],
        ["--words", "WORDS", "/nonexistent/text.txt"],
        ["--words", "WORDS", "--role", "robot"],
    ],
)
def test_scan_errors(argv: list[str], words: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [str(words) if a == "WORDS" else a for a in argv]
    assert scan_main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("chatmgmt scan: ")


def test_scan_bad_word_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("word\tcat\tnuke\n", encoding="utf-8")
    assert scan_main(["--words", str(bad)]) == 2
    assert "bad.tsv:1" in capsys.readouterr().err
