"""Shared helpers for the benchmark scripts: timing and the JSON line format."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable


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
