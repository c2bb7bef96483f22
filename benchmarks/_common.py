"""Shared helpers for the benchmark scripts: timing and the JSON line format."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path


def emit(name: str, value: float, unit: str, baseline: float | None, ratio: float | None) -> None:
    """Print one figure as a JSON line: ``{"name", "value", "unit", "baseline", "ratio"}``."""
    print(
        json.dumps(
            {
                "name": name,
                "value": round(value, 4),
                "unit": unit,
                "baseline": None if baseline is None else round(baseline, 4),
                "ratio": None if ratio is None else round(ratio, 3),
            }
        ),
        flush=True,
    )


def median_us_per_op(run: Callable[[int], None], ops: int, repeats: int = 7) -> float:
    """Median over ``repeats`` runs of µs per operation; ``run(ops)`` does ``ops`` operations."""
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run(ops)
        samples.append((time.perf_counter() - t0) / ops * 1e6)
    return statistics.median(samples)


def callgrind_count(script: str, args: list[str], src: Path, options: Sequence[str] = ()) -> int:
    """Instructions of one run of ``python script *args`` over the package in ``src``, counted
    by callgrind (``PYTHONHASHSEED=0``: the same count on every run; ``options``: callgrind's
    own, e.g. ``--collect-atstart=no`` for a script that toggles collection itself)."""
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(src)}
    valgrind = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *options]
    run = subprocess.run(
        [*valgrind, sys.executable, script, *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"Collected : (\d+)", run.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{run.stderr[-2000:]}")
    return int(found.group(1))


def emit_instructions(
    name: str, unit: str, per: Callable[[Path], float], baseline: Path | None
) -> None:
    """Emit ``per(src)`` for this tree's ``src`` as ``name``, with ``per`` of the tree in
    ``baseline`` (its ``src``) as the baseline when given; exit when valgrind is missing."""
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed: this benchmark counts instructions with callgrind")
    value = per(Path(__file__).resolve().parent.parent / "src")
    base = None if baseline is None else per(baseline / "src")
    emit(name, value, unit, base, None if base is None else base / value)


def free_port() -> int:
    """A TCP port free on the loopback interface now (for a private server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_server_argv(binary: str, port: int, directory: str) -> list[str]:
    """The command line of a private ``redis-server``: loopback only, no persistence."""
    return [
        *(binary, "--port", str(port), "--bind", "127.0.0.1"),
        *("--save", "", "--appendonly", "no", "--dir", directory),
    ]
