"""Distributions of handle time and patience, sampled from an injected ``random.Random``."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from typing import Protocol, runtime_checkable

import attrs

__all__ = ["Distribution", "Empirical", "Exponential", "Fixed", "LogNormal"]


def _positive(_inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
        raise ValueError(f"{attribute.name} must be a finite number > 0, got {value!r}")


def _non_negative(_inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not isinstance(value, (int, float)) or not value >= 0 or not math.isfinite(value):
        raise ValueError(f"{attribute.name} must be a finite number >= 0, got {value!r}")


@runtime_checkable
class Distribution(Protocol):
    """A distribution of durations in seconds: ``sample(rng)`` draws one, ``mean`` is its mean."""

    @property
    def mean(self) -> float:
        """The mean, in seconds."""

    def sample(self, rng: random.Random) -> float:
        """Draw one value (seconds, >= 0) from ``rng``."""

    def describe(self) -> str:
        """A short readable description, such as ``exponential(mean=300s)``."""


@attrs.frozen
class Exponential:
    """Exponential durations of mean ``mean_s`` (memoryless: the M in M/M/c)."""

    mean_s: float = attrs.field(converter=float, validator=_positive)

    @property
    def mean(self) -> float:
        """The mean, in seconds."""
        return self.mean_s

    def sample(self, rng: random.Random) -> float:
        """Draw one value."""
        return rng.expovariate(1.0 / self.mean_s)

    def describe(self) -> str:
        """``exponential(mean=…s)``."""
        return f"exponential(mean={self.mean_s:g}s)"


@attrs.frozen
class LogNormal:
    """Log-normal durations of mean ``mean_s`` and coefficient of variation ``cv`` (sd/mean).

    Real chat handle times are right-skewed; ``cv`` around 0.6–1.2 is typical.
    """

    mean_s: float = attrs.field(converter=float, validator=_positive)
    cv: float = attrs.field(default=1.0, converter=float, validator=_positive)

    @property
    def mean(self) -> float:
        """The mean, in seconds."""
        return self.mean_s

    def sample(self, rng: random.Random) -> float:
        """Draw one value."""
        sigma2 = math.log1p(self.cv * self.cv)
        mu = math.log(self.mean_s) - sigma2 / 2.0
        return rng.lognormvariate(mu, math.sqrt(sigma2))

    def describe(self) -> str:
        """``lognormal(mean=…s, cv=…)``."""
        return f"lognormal(mean={self.mean_s:g}s, cv={self.cv:g})"


@attrs.frozen
class Fixed:
    """A constant duration (deterministic, the D in M/D/c)."""

    value_s: float = attrs.field(converter=float, validator=_non_negative)

    @property
    def mean(self) -> float:
        """The value, in seconds."""
        return self.value_s

    def sample(self, rng: random.Random) -> float:
        """The value (``rng`` is not used)."""
        return self.value_s

    def describe(self) -> str:
        """``fixed(…s)``."""
        return f"fixed({self.value_s:g}s)"


def _values(items: Iterable[float]) -> tuple[float, ...]:
    out = tuple(float(v) for v in items)
    if not out:
        raise ValueError("an empirical distribution needs at least one value")
    for v in out:
        if not v >= 0 or not math.isfinite(v):
            raise ValueError(f"empirical values must be finite numbers >= 0, got {v!r}")
    return out


@attrs.frozen
class Empirical:
    """Durations resampled from observed values (a trace of real handle times, say)."""

    values: tuple[float, ...] = attrs.field(converter=_values)

    @property
    def mean(self) -> float:
        """The mean of the observed values."""
        return math.fsum(self.values) / len(self.values)

    def sample(self, rng: random.Random) -> float:
        """One of the observed values, uniformly."""
        return self.values[int(rng.random() * len(self.values))]

    def describe(self) -> str:
        """``empirical(n=…, mean=…s)``."""
        return f"empirical(n={len(self.values)}, mean={self.mean:.4g}s)"
