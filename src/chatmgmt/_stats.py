"""Small statistics without dependencies, shared by the simulator and the testing helpers:
Student t intervals, percentiles, Jain's fairness index."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import attrs

__all__ = ["Estimate", "estimate", "jain_index", "percentile", "t_quantile"]


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def _t_cdf(t: float, df: float) -> float:
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


@functools.lru_cache(maxsize=256)
def t_quantile(p: float, df: int) -> float:
    """The ``p``-quantile of Student's t with ``df`` degrees of freedom (bisection on the CDF).

    >>> round(t_quantile(0.975, 9), 3)
    2.262
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p!r}")
    if df < 1:
        raise ValueError(f"df must be >= 1, got {df!r}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while _t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if _t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return (lo + hi) / 2.0


@attrs.frozen
class Estimate:
    """A mean over replications with its Student t confidence interval ``[low, high]``.

    ``values`` are the per-replication figures; with one replication (or a figure that is not
    finite) the interval is the mean itself, or ``[-inf, inf]`` when it cannot be formed.
    """

    mean: float
    low: float
    high: float
    confidence: float
    values: tuple[float, ...] = attrs.field(repr=False)

    @property
    def half_width(self) -> float:
        """Half the interval's width."""
        return (self.high - self.low) / 2.0

    @property
    def interval(self) -> tuple[float, float]:
        """``(low, high)``."""
        return (self.low, self.high)

    def contains(self, value: float, *, slack: float = 0.0) -> bool:
        """Whether ``value`` lies in the interval widened by ``slack`` on both sides."""
        return self.low - slack <= value <= self.high + slack


def estimate(values: Sequence[float], confidence: float = 0.95) -> Estimate:
    """Mean and Student t interval of independent replications' ``values``."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    vals = tuple(float(v) for v in values)
    finite = [v for v in vals if not math.isnan(v)]
    n = len(finite)
    if n == 0:
        nan = math.nan
        return Estimate(nan, nan, nan, confidence, vals)
    mean = math.fsum(finite) / n
    if n == 1 or not math.isfinite(mean):
        return Estimate(
            mean, mean if n == 1 else -math.inf, mean if n == 1 else math.inf, confidence, vals
        )
    var = math.fsum((v - mean) ** 2 for v in finite) / (n - 1)
    half = t_quantile(0.5 + confidence / 2.0, n - 1) * math.sqrt(var / n)
    return Estimate(mean, mean - half, mean + half, confidence, vals)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-quantile (0..1) of already sorted values, interpolated linearly (as numpy)."""
    n = len(sorted_values)
    if n == 0:
        return math.nan
    pos = q * (n - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    frac = pos - lo
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac


def jain_index(loads: Sequence[float]) -> float:
    """Jain's fairness index (Σx)² / (n·Σx²): 1 when all equal, 1/n when one takes all."""
    n = len(loads)
    if n == 0:
        return math.nan
    square_sum = math.fsum(x * x for x in loads)
    if square_sum == 0:
        return 1.0
    return math.fsum(loads) ** 2 / (n * square_sum)
