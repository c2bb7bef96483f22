"""Queueing formulas: Erlang B, Erlang C (M/M/c) and Erlang A (M/M/c+M).

Rates are per second and times in seconds. ``servers`` counts slots: ``c`` agents holding ``k``
chats each, with a handle time that does not depend on how many they hold, are M/M/(c·k).
"""

from __future__ import annotations

import math

import attrs

__all__ = ["ErlangResult", "erlang_a", "erlang_b", "erlang_c"]

# Truncation of the Erlang A birth-death chain: stop once a term is this small relative to the
# running sum and the chain is past the point where terms only shrink.
_TAIL_EPS = 1e-16
_MAX_STATES = 200_000
# Uniformization of the service-level integral: the Poisson mass left out.
_POISSON_EPS = 1e-13


@attrs.frozen
class ErlangResult:
    """What a queueing formula predicts for a Poisson stream served by ``servers`` slots.

    ``p_wait``: probability that an arriving customer waits at all (finds every slot busy).
    ``mean_wait``: mean time in queue over all arrivals (abandoned customers count the time
    they waited). ``service_level``: probability that a customer is answered within
    ``target_time``. ``p_abandon``: probability of leaving the queue (0 for Erlang C).
    An overloaded Erlang C system (``load >= servers``) has ``p_wait`` 1, ``mean_wait`` inf,
    ``service_level`` 0 and ``stable`` False.
    """

    model: str
    arrival_rate: float
    service_rate: float
    servers: int
    target_time: float
    patience_rate: float
    p_wait: float
    mean_wait: float
    service_level: float
    p_abandon: float = 0.0
    stable: bool = True

    @property
    def offered_load(self) -> float:
        """Offered load in Erlangs: arrival rate over service rate."""
        return self.arrival_rate / self.service_rate

    @property
    def occupancy(self) -> float:
        """Mean fraction of busy slots: carried load (arrivals not abandoned) over servers."""
        return min(1.0, self.offered_load * (1.0 - self.p_abandon) / self.servers)

    def wait_percentile(self, q: float) -> float:
        """The ``q``-quantile (0 < q < 1) of the wait; Erlang C only (exponential tail).

        P(Wq > t) = P(wait)·e^(−(cμ−λ)t), so the quantile is 0 while ``1 − q >= p_wait``.
        """
        if not 0.0 < q < 1.0:
            raise ValueError(f"q must be in (0, 1), got {q!r}")
        if self.model != "C":
            raise ValueError("wait_percentile has a closed form for Erlang C only")
        if not self.stable:
            return math.inf
        if 1.0 - q >= self.p_wait:
            return 0.0
        decay = self.servers * self.service_rate - self.arrival_rate
        return math.log(self.p_wait / (1.0 - q)) / decay


def _check(arrival_rate: float, service_rate: float, servers: int, target_time: float) -> None:
    if not arrival_rate > 0 or not math.isfinite(arrival_rate):
        raise ValueError(f"arrival_rate must be > 0, got {arrival_rate!r}")
    if not service_rate > 0 or not math.isfinite(service_rate):
        raise ValueError(f"service_rate must be > 0, got {service_rate!r}")
    if not isinstance(servers, int) or isinstance(servers, bool) or servers < 1:
        raise ValueError(f"servers must be an int >= 1, got {servers!r}")
    if not target_time >= 0 or not math.isfinite(target_time):
        raise ValueError(f"target_time must be >= 0, got {target_time!r}")


def erlang_b(load: float, servers: int) -> float:
    """Blocking probability of M/M/c/c with ``load`` Erlangs, by the stable recursion."""
    b = 1.0
    for n in range(1, servers + 1):
        b = load * b / (n + load * b)
    return b


def erlang_c(
    arrival_rate: float, service_rate: float, servers: int, target_time: float = 20.0
) -> ErlangResult:
    """Erlang C (M/M/c, no abandonment): P(wait), E[Wq] and P(Wq ≤ target_time).

    >>> r = erlang_c(0.5, 1.0, 1)
    >>> r.p_wait, r.mean_wait
    (0.5, 1.0)
    """
    _check(arrival_rate, service_rate, servers, target_time)
    a = arrival_rate / service_rate
    if a >= servers:
        return ErlangResult(
            "C",
            arrival_rate,
            service_rate,
            servers,
            target_time,
            0.0,
            1.0,
            math.inf,
            0.0,
            stable=False,
        )
    b = erlang_b(a, servers)
    p_wait = servers * b / (servers - a * (1.0 - b))
    decay = servers * service_rate - arrival_rate
    return ErlangResult(
        "C",
        arrival_rate,
        service_rate,
        servers,
        target_time,
        0.0,
        p_wait,
        p_wait / decay,
        1.0 - p_wait * math.exp(-decay * target_time),
    )


def _served_within(rates_ahead: list[float], patience_rate: float, t: float) -> list[float]:
    """P(answered within ``t``) for a tagged customer with ``k`` customers ahead in queue.

    With ``k`` ahead the next change comes at rate ``rates_ahead[k]`` (a slot frees, or one of
    those ahead abandons); the customer abandons at ``patience_rate``. Solved by
    uniformization: a Poisson number of jumps of a discrete chain, for every ``k`` at once.
    """
    m = len(rates_ahead)
    if t <= 0 or m == 0:
        return [0.0] * m
    big = max(rates_ahead) + patience_rate
    lt = big * t
    stay = [1.0 - (r + patience_rate) / big for r in rates_ahead]
    move = [r / big for r in rates_ahead]
    s = [0.0] * m  # P(served within j jumps | k ahead)
    total = [0.0] * m
    log_lt = math.log(lt)
    mass = 0.0
    j = 0
    # Poisson(j; lt) weights in log space (lt may be large), summed until the tail is negligible
    while True:
        w = math.exp(-lt + j * log_lt - math.lgamma(j + 1))
        if j > 0:
            prev = 1.0
            new = [0.0] * m
            for k in range(m):
                new[k] = move[k] * prev + stay[k] * s[k]
                prev = s[k]
            s = new
        if w > 0.0:
            for k in range(m):
                total[k] += w * s[k]
        mass += w
        j += 1
        if (j > lt and 1.0 - mass < _POISSON_EPS) or j > lt + 40.0 * math.sqrt(lt) + 200:
            break
    return total


def erlang_a(
    arrival_rate: float,
    service_rate: float,
    servers: int,
    patience_rate: float,
    target_time: float = 20.0,
) -> ErlangResult:
    """Erlang A (M/M/c+M): Erlang C plus exponential patience of mean ``1/patience_rate``.

    The birth-death chain (birth λ; death min(n, c)·μ + max(n − c, 0)·θ) is summed until its
    terms are negligible. P(wait) = P(n ≥ c) at arrival (PASTA); E[Wq] = E[Lq]/λ;
    P(abandon) = θ·E[Wq]; the service level conditions on the queue found at arrival.
    ``patience_rate`` 0 is Erlang C.
    """
    _check(arrival_rate, service_rate, servers, target_time)
    if patience_rate < 0 or not math.isfinite(patience_rate):
        raise ValueError(f"patience_rate must be >= 0, got {patience_rate!r}")
    if patience_rate == 0:
        plain = erlang_c(arrival_rate, service_rate, servers, target_time)
        return attrs.evolve(plain, model="A")
    lam, mu, c, theta = arrival_rate, service_rate, servers, patience_rate
    terms = [1.0]
    total = 1.0
    n = 0
    while True:
        n += 1
        death = min(n, c) * mu + max(n - c, 0) * theta
        term = terms[-1] * lam / death
        terms.append(term)
        total += term
        if total > 1e250:  # rescale to stay in floating range
            terms = [x / 1e250 for x in terms]
            total /= 1e250
        if n > c and death > lam and term < _TAIL_EPS * total:
            break
        if n > _MAX_STATES:
            raise ValueError("erlang_a: the state space did not converge (rates too extreme)")
    pi = [x / total for x in terms]
    p_wait = sum(pi[c:])
    lq = sum((k - c) * pi[k] for k in range(c + 1, len(pi)))
    mean_wait = lq / lam
    p_abandon = theta * mean_wait
    rates_ahead = [c * mu + k * theta for k in range(len(pi) - c)]
    answered = _served_within(rates_ahead, theta, target_time)
    service_level = sum(pi[:c]) + sum(pi[c + k] * answered[k] for k in range(len(rates_ahead)))
    return ErlangResult(
        "A",
        arrival_rate,
        service_rate,
        servers,
        target_time,
        patience_rate,
        p_wait,
        mean_wait,
        min(1.0, service_level),
        p_abandon,
    )
