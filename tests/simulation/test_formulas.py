"""Erlang B/C/A and the small statistics helpers, against known values and identities."""

from __future__ import annotations

import math

import pytest

from chatmgmt.simulation import (
    erlang_a,
    erlang_b,
    erlang_c,
    estimate,
    jain_index,
    percentile,
    t_quantile,
)


def test_erlang_c_reference_checks() -> None:
    one = erlang_c(0.5, 1.0, 1)
    assert one.p_wait == pytest.approx(0.5)
    assert one.mean_wait == pytest.approx(1.0)
    assert erlang_c(2.0, 1.0, 3).p_wait == pytest.approx(4 / 9)


def test_erlang_c_service_level_and_percentile() -> None:
    r = erlang_c(2.0, 1.0, 3, target_time=0.5)
    assert r.service_level == pytest.approx(1 - (4 / 9) * math.exp(-0.5))
    p90 = r.wait_percentile(0.9)
    # P(Wq > p90) = 0.1
    assert (4 / 9) * math.exp(-p90) == pytest.approx(0.1)
    assert r.wait_percentile(0.5) == 0.0  # more than half never wait


def test_erlang_b_known_values() -> None:
    assert erlang_b(1.0, 1) == pytest.approx(0.5)
    assert erlang_b(2.0, 2) == pytest.approx(0.4)
    # a textbook table value: 10 Erlangs on 15 lines blocks ~3.65 %
    assert erlang_b(10.0, 15) == pytest.approx(0.03649, abs=1e-4)


def test_erlang_c_overload_is_reported_not_raised() -> None:
    r = erlang_c(3.0, 1.0, 3)
    assert not r.stable
    assert r.p_wait == 1.0 and math.isinf(r.mean_wait) and r.service_level == 0.0


@pytest.mark.parametrize(
    "args",
    [(0.0, 1.0, 1), (1.0, 0.0, 1), (1.0, 1.0, 0), (1.0, 1.0, 1.5), (-1.0, 1.0, 2)],
)
def test_erlang_c_rejects_bad_arguments(args: tuple[float, float, int]) -> None:
    with pytest.raises(ValueError):
        erlang_c(*args)


@pytest.mark.parametrize(
    ("lam", "mu", "c", "theta"),
    [(2.0, 1.0, 3, 0.5), (3.0, 1.0, 3, 2.0), (5.0, 1.0, 2, 0.2), (0.4, 0.1, 3, 0.05)],
)
def test_erlang_a_identities(lam: float, mu: float, c: int, theta: float) -> None:
    r = erlang_a(lam, mu, c, theta, target_time=1.0)
    assert r.p_abandon == pytest.approx(theta * r.mean_wait)
    assert 0.0 < r.p_abandon < r.p_wait < 1.0
    assert 1.0 - r.p_wait <= r.service_level  # answered at once counts as within target
    assert r.service_level <= 1.0 - r.p_abandon + 1e-12  # an abandoner is never answered
    # carried load = offered load minus abandonments, never above the slots
    assert r.occupancy == pytest.approx(lam / mu * (1 - r.p_abandon) / c)


def test_erlang_a_tends_to_erlang_c_when_patience_is_endless() -> None:
    c = erlang_c(2.0, 1.0, 3, target_time=0.5)
    a = erlang_a(2.0, 1.0, 3, 1e-7, target_time=0.5)
    assert a.p_wait == pytest.approx(c.p_wait, rel=1e-5)
    assert a.mean_wait == pytest.approx(c.mean_wait, rel=1e-5)
    assert a.service_level == pytest.approx(c.service_level, rel=1e-5)
    assert erlang_a(2.0, 1.0, 3, 0.0).p_wait == pytest.approx(c.p_wait)


def test_erlang_a_is_stable_when_erlang_c_is_not() -> None:
    r = erlang_a(4.0, 1.0, 3, 1.0, target_time=0.5)  # offered 4 Erlangs on 3 slots
    assert r.stable and 0.0 < r.p_abandon < 1.0
    # flow balance: what is not abandoned is served by at most 3 slots
    assert 4.0 * (1 - r.p_abandon) < 3.0


def test_erlang_a_single_server_closed_form() -> None:
    # M/M/1+M with θ = μ: death rate n·μ, so n ~ Poisson(λ/μ) truncated nowhere: π_n = e^-a a^n/n!
    lam, mu = 0.7, 1.0
    r = erlang_a(lam, mu, 1, mu, target_time=0.0)
    a = lam / mu
    assert r.p_wait == pytest.approx(1 - math.exp(-a))
    lq = sum((n - 1) * math.exp(-a) * a**n / math.factorial(n) for n in range(2, 60))
    assert r.mean_wait == pytest.approx(lq / lam)
    assert r.service_level == pytest.approx(math.exp(-a))  # answered within 0 s: found it idle


def test_erlang_a_service_level_large_target_is_share_answered() -> None:
    r = erlang_a(3.0, 1.0, 3, 0.5, target_time=200.0)
    assert r.service_level == pytest.approx(1 - r.p_abandon, abs=1e-9)


def test_erlang_a_large_system_is_fast_and_sane() -> None:
    r = erlang_a(10.0, 0.2, 60, 0.5, target_time=20.0)
    assert 0 < r.p_wait < 1 and 0 < r.service_level <= 1


@pytest.mark.parametrize(
    ("p", "df", "expected"),
    [
        (0.975, 1, 12.7062),
        (0.975, 4, 2.7764),
        (0.975, 9, 2.2622),
        (0.995, 4, 4.6041),
        (0.975, 30, 2.0423),
        (0.95, 1000, 1.6464),
        (0.025, 9, -2.2622),
    ],
)
def test_t_quantile_table(p: float, df: int, expected: float) -> None:
    assert t_quantile(p, df) == pytest.approx(expected, abs=2e-4)


def test_estimate_interval() -> None:
    e = estimate([1.0, 2.0, 3.0, 4.0], 0.95)
    sd = math.sqrt(5 / 3)
    assert e.mean == 2.5
    assert e.half_width == pytest.approx(t_quantile(0.975, 3) * sd / 2)
    assert e.contains(2.5) and not e.contains(10.0)
    single = estimate([7.0])
    assert single.interval == (7.0, 7.0)


def test_percentile_and_jain() -> None:
    assert percentile([0.0, 1.0, 2.0, 3.0, 4.0], 0.5) == 2.0
    assert percentile([0.0, 10.0], 0.9) == pytest.approx(9.0)
    assert jain_index([0.5, 0.5, 0.5]) == pytest.approx(1.0)
    assert jain_index([1.0, 0.0, 0.0, 0.0]) == pytest.approx(0.25)
