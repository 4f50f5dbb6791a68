"""Exact percentiles and distribution-free confidence bounds, as pure functions.

Percentiles use the *nearest-rank* definition: of ``n`` sorted samples, the ``q`` percentile is
the sample at 1-based rank ``ceil(q * n)``. It is always one of the observed values, so
"P95 = 1953 ms" means a real request took 1953 ms, with no interpolation to argue about.

Confidence bounds come from binomial order statistics and assume nothing about the latency
distribution (only that samples are independent draws from it). Take the true ``q``
percentile ``x_q`` of the population. Each sample lands below it with probability at most
``q``, so the number of samples below it is at most Binomial(n, q), and

* the sample at rank ``u`` is at or above ``x_q`` with probability at least
  ``P(Binomial(n, q) <= u - 1)``: the smallest ``u`` where that reaches the confidence level
  is an *upper* bound (:func:`percentile_upper_bound`);
* symmetrically, the sample at rank ``l`` is at or below ``x_q`` with probability at least
  ``P(Binomial(n, q) >= l)``: the largest such ``l`` is a *lower* bound
  (:func:`percentile_lower_bound`).

Both stay valid with ties and discrete (rounded) latencies: ties only make them conservative.
With too few samples no rank qualifies and the bound is ``None``: with no sample above the
threshold, a P95 claim at 95 % confidence needs ``min_samples(0.95, 0.95) == 59`` samples,
because ``0.95 ** 59 < 0.05``.

Error ratios get the matching exact (Clopper-Pearson) bounds on a binomial proportion:
:func:`proportion_upper_bound` and :func:`proportion_lower_bound`. Two error ratios (a run and
its baseline) are compared by the interval of their difference: :func:`proportion_difference`.

>>> latencies = sorted([0.12, 0.34, 0.2, 1.9, 0.25] * 20)
>>> percentile(latencies, 0.95)
1.9
>>> rank = percentile_upper_bound(len(latencies), 0.95, 0.95)
>>> rank, latencies[rank - 1]
(99, 1.9)
>>> verdict(lower=0.25, upper=1.9, limit=2.0)
'pass'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from statistics import NormalDist
from typing import Literal

__all__ = [
    "PercentileEstimate",
    "Verdict",
    "binomial_cdf",
    "estimate",
    "min_samples",
    "nearest_rank",
    "percentile",
    "percentile_lower_bound",
    "percentile_upper_bound",
    "proportion_difference",
    "proportion_lower_bound",
    "proportion_upper_bound",
    "verdict",
    "verdict_at_least",
    "wilson_interval",
]

Verdict = Literal["pass", "fail", "inconclusive"]


def _check_open_unit(name: str, value: float) -> None:
    if not 0 < value < 1:
        raise ValueError(f"{name} must be strictly between 0 and 1, got {value!r}")


def nearest_rank(n: int, q: float) -> int:
    """The 1-based rank of the ``q`` percentile among ``n`` samples: ``ceil(q * n)``, at least 1.

    ``q`` is read at its shortest decimal spelling, so ``nearest_rank(100, 0.07)`` is 7 even
    though the binary float 0.07 times 100 is slightly above 7.

    >>> nearest_rank(100, 0.95), nearest_rank(59, 0.95), nearest_rank(1, 0.5)
    (95, 57, 1)
    """
    if n < 1:
        raise ValueError(f"need at least one sample, got n={n}")
    _check_open_unit("q", q)
    return max(1, math.ceil(Fraction(repr(q)) * n))


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` percentile of already sorted values (see :func:`nearest_rank`)."""
    return sorted_values[nearest_rank(len(sorted_values), q) - 1]


# --- the binomial distribution -----------------------------------------------------------------

_TINY = 1e-300
_EPSILON = 1e-16


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function, by the modified Lentz method."""
    # It converges in O(sqrt(max(a, b))) terms when x is below the mean (the caller ensures).
    max_terms = 1000 + int(20 * math.sqrt(a + b))
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    result = d
    for m in range(1, max_terms + 1):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            step = c * d
            result *= step
        if abs(step - 1.0) < _EPSILON:
            return result
    raise ArithmeticError(f"incomplete beta did not converge for a={a}, b={b}, x={x}")


def _regularized_beta(a: float, b: float, p: float) -> float:
    """``I_x(a, b)`` at ``x = 1 - p``, the regularized incomplete beta function.

    Taking ``p`` rather than ``x`` keeps tiny probabilities exact: ``1 - 1e-20`` is 1.0 in
    floating point, and ``log(1 - x)`` would then fail.
    """
    x = 1.0 - p
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log1p(-p) + b * math.log(p)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, p) / b


def binomial_cdf(k: int, n: int, p: float) -> float:
    """``P(X <= k)`` for ``X ~ Binomial(n, p)``, accurate for millions of trials.

    >>> round(binomial_cdf(58, 59, 0.95), 4)  # 1 - 0.95 ** 59
    0.9515
    """
    if n < 0 or not 0 <= p <= 1:
        raise ValueError(f"invalid binomial parameters n={n}, p={p}")
    if k < 0:
        return 0.0
    if k >= n or p == 0:
        return 1.0
    if p == 1:
        return 0.0
    if k == n - 1:
        # What min_samples and a bound at the largest sample rest on: exact in closed form.
        return 1.0 - p**n
    return min(1.0, max(0.0, _regularized_beta(n - k, k + 1, p)))


def _first_rank(n: int, holds: Callable[[int], bool]) -> int | None:
    """The smallest rank in 1..n for which the monotone predicate ``holds``, or None."""
    low, high = 1, n + 1
    while low < high:
        middle = (low + high) // 2
        if holds(middle):
            high = middle
        else:
            low = middle + 1
    return low if low <= n else None


# --- percentile bounds -------------------------------------------------------------------------


def percentile_upper_bound(n: int, q: float, confidence: float) -> int | None:
    """The 1-based rank whose sample bounds the true ``q`` percentile from above.

    The smallest ``u`` with ``P(Binomial(n, q) <= u - 1) >= confidence``; None when even the
    largest sample is not enough evidence (``n`` below :func:`min_samples`).

    >>> percentile_upper_bound(59, 0.95, 0.95), percentile_upper_bound(58, 0.95, 0.95)
    (59, None)
    """
    _check_open_unit("q", q)
    _check_open_unit("confidence", confidence)
    if n < 1:
        return None
    return _first_rank(n, lambda u: binomial_cdf(u - 1, n, q) >= confidence)


def percentile_lower_bound(n: int, q: float, confidence: float) -> int | None:
    """The 1-based rank whose sample bounds the true ``q`` percentile from below.

    The largest ``l`` with ``P(Binomial(n, q) >= l) >= confidence``; None when even the
    smallest sample is not enough evidence.

    >>> percentile_lower_bound(100, 0.95, 0.95), percentile_lower_bound(1, 0.99, 0.95)
    (91, 1)
    """
    _check_open_unit("q", q)
    _check_open_unit("confidence", confidence)
    if n < 1:
        return None
    first_failing = _first_rank(n, lambda r: 1.0 - binomial_cdf(r - 1, n, q) < confidence)
    last_holding = n if first_failing is None else first_failing - 1
    return last_holding if last_holding >= 1 else None


def min_samples(q: float, confidence: float) -> int:
    """The fewest samples with which a percentile can be shown *under* a threshold at all.

    That is the smallest ``n`` for which :func:`percentile_upper_bound` exists: ``q ** n``
    must fall to ``1 - confidence`` or below.

    >>> min_samples(0.95, 0.95), min_samples(0.99, 0.95), min_samples(0.5, 0.95)
    (59, 299, 5)
    """
    _check_open_unit("q", q)
    _check_open_unit("confidence", confidence)
    n = max(1, math.ceil(math.log1p(-confidence) / math.log(q)))
    # The closed form can be one off in floating point; settle it with the bound itself.
    while percentile_upper_bound(n, q, confidence) is None:
        n += 1
    while n > 1 and percentile_upper_bound(n - 1, q, confidence) is not None:
        n -= 1
    return n


@dataclass(frozen=True)
class PercentileEstimate:
    """A nearest-rank percentile of a sample with its two-sided evidence.

    ``lower`` and ``upper`` each hold at the requested confidence on their own (one-sided);
    None when there are too few samples for that side.
    """

    q: float
    n: int
    value: float
    lower: float | None
    upper: float | None


def estimate(sorted_values: Sequence[float], q: float, confidence: float) -> PercentileEstimate:
    """:func:`percentile` of sorted values together with its confidence bounds.

    >>> estimate([1.0, 2.0, 3.0], 0.5, 0.95)
    PercentileEstimate(q=0.5, n=3, value=2.0, lower=None, upper=None)
    """
    n = len(sorted_values)
    upper = percentile_upper_bound(n, q, confidence)
    lower = percentile_lower_bound(n, q, confidence)
    return PercentileEstimate(
        q=q,
        n=n,
        value=percentile(sorted_values, q),
        lower=None if lower is None else sorted_values[lower - 1],
        upper=None if upper is None else sorted_values[upper - 1],
    )


def verdict(lower: float | None, upper: float | None, limit: float) -> Verdict:
    """Judge "the true value is at most ``limit``" from one-sided bounds on it.

    ``pass`` when the upper bound is at or under the limit (within 2 s counts as good, like a
    Prometheus ``le`` bucket), ``fail`` when the lower bound is over it, ``inconclusive``
    otherwise, including when a bound is missing.

    >>> verdict(1.2, 1.9, 2.0), verdict(2.1, None, 2.0), verdict(1.8, 2.2, 2.0)
    ('pass', 'fail', 'inconclusive')
    """
    if lower is not None and lower > limit:
        return "fail"
    if upper is not None and upper <= limit:
        return "pass"
    return "inconclusive"


def verdict_at_least(lower: float | None, upper: float | None, limit: float) -> Verdict:
    """Judge "the true value is at least ``limit``" (higher is better, e.g. tokens per second).

    The mirror of :func:`verdict`: ``pass`` when the lower bound is at or over the limit,
    ``fail`` when the upper bound is under it, ``inconclusive`` otherwise.

    >>> verdict_at_least(25.0, 40.0, 20.0), verdict_at_least(None, 12.0, 20.0)
    ('pass', 'fail')
    >>> verdict_at_least(15.0, 30.0, 20.0)
    'inconclusive'
    """
    if upper is not None and upper < limit:
        return "fail"
    if lower is not None and lower >= limit:
        return "pass"
    return "inconclusive"


# --- bounds on an error ratio ------------------------------------------------------------------


def _bisect_probability(decreasing: Callable[[float], float], target: float) -> tuple[float, float]:
    """Adjacent floats ``low < high`` around where a falling function crosses ``target``."""
    low, high = 0.0, 1.0
    while True:
        middle = (low + high) / 2
        if middle in (low, high):
            return low, high
        if decreasing(middle) > target:
            low = middle
        else:
            high = middle


def proportion_upper_bound(events: int, trials: int, confidence: float) -> float:
    """Exact (Clopper-Pearson) one-sided upper confidence bound on a binomial proportion.

    >>> round(proportion_upper_bound(0, 59, 0.95), 4)  # 1 - 0.05 ** (1 / 59)
    0.0495
    """
    _check_open_unit("confidence", confidence)
    if not 0 <= events <= trials:
        raise ValueError(f"need 0 <= events <= trials, got {events} of {trials}")
    if events == trials:
        return 1.0
    # P(X <= events) falls as p rises; the bound is where it drops to 1 - confidence.
    return _bisect_probability(lambda p: binomial_cdf(events, trials, p), 1.0 - confidence)[1]


def proportion_lower_bound(events: int, trials: int, confidence: float) -> float:
    """Exact (Clopper-Pearson) one-sided lower confidence bound on a binomial proportion.

    >>> round(proportion_lower_bound(20, 100, 0.95), 4)
    0.1367
    """
    _check_open_unit("confidence", confidence)
    if not 0 <= events <= trials:
        raise ValueError(f"need 0 <= events <= trials, got {events} of {trials}")
    if events == 0:
        return 0.0
    # P(X >= events) rises with p; the bound is where it reaches 1 - confidence.
    return _bisect_probability(lambda p: binomial_cdf(events - 1, trials, p), confidence)[0]


# --- comparing two error ratios ----------------------------------------------------------------


def wilson_interval(events: int, trials: int, confidence: float) -> tuple[float, float]:
    """The two-sided Wilson score interval of a binomial proportion; (0, 1) with no trials.

    >>> [round(bound, 4) for bound in wilson_interval(0, 100, 0.95)]
    [0.0, 0.037]
    """
    _check_open_unit("confidence", confidence)
    if not 0 <= events <= trials:
        raise ValueError(f"need 0 <= events <= trials, got {events} of {trials}")
    if trials == 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    p, n = events / trials, trials
    scale = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / scale
    half = z / scale * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def proportion_difference(
    events: int, trials: int, base_events: int, base_trials: int, confidence: float
) -> tuple[float, float, float]:
    """``p - p_base`` and its two-sided interval, by Newcombe's hybrid score method.

    Newcombe (1998, method 10) combines the Wilson interval of each proportion. Unlike the
    textbook Wald interval it keeps its coverage at zero events, which is where a release's
    error ratio usually is, and it never leaves [-1, 1].

    >>> [round(x, 4) for x in proportion_difference(20, 1000, 0, 1000, 0.95)]
    [0.02, 0.012, 0.0307]
    """
    low, high = wilson_interval(events, trials, confidence)
    base_low, base_high = wilson_interval(base_events, base_trials, confidence)
    p = events / trials if trials else 0.0
    base = base_events / base_trials if base_trials else 0.0
    difference = p - base
    below = math.hypot(p - low, base_high - base)
    above = math.hypot(high - p, base - base_low)
    return difference, difference - below, difference + above
