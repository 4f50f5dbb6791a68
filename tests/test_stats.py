"""slo.stats against brute force: exact rational arithmetic on small random samples."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from fractions import Fraction

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from slo import stats

# Brute force runs in rationals; its time depends on machine load, so those tests have no
# hypothesis deadline.
# Tolerance on probabilities where float and exact arithmetic may rank a near-tie differently.
TIE = 1e-9

quantiles = st.floats(min_value=0.01, max_value=0.999).map(lambda q: round(q, 3))
confidences = st.sampled_from([0.5, 0.8, 0.9, 0.95, 0.99, 0.999])
small_n = st.integers(min_value=1, max_value=120)
latencies = st.lists(st.floats(min_value=0, max_value=60, allow_nan=False), min_size=1, max_size=300)


def exact_cdfs(n: int, p: float) -> list[Fraction]:
    """P(Binomial(n, p) <= k) for k = 0..n, summed term by term in rationals.

    ``p`` is taken at its decimal spelling (0.95 as 95/100): far faster than its exact binary
    value, and the two differ by less than 1e-16, far inside the tolerance used here.
    """
    exact = Fraction(repr(p))
    total, cdfs = Fraction(0), []
    for i in range(n + 1):
        total += math.comb(n, i) * exact**i * (1 - exact) ** (n - i)
        cdfs.append(total)
    return cdfs


def brute_upper(n: int, q: float, confidence: float) -> int | None:
    cdfs, level = exact_cdfs(n, q), Fraction(repr(confidence))
    return next((u for u in range(1, n + 1) if cdfs[u - 1] >= level), None)


def brute_lower(n: int, q: float, confidence: float) -> int | None:
    cdfs, level = exact_cdfs(n, q), Fraction(repr(confidence))
    return max((r for r in range(1, n + 1) if 1 - cdfs[r - 1] >= level), default=None)


def near_tie(n: int, q: float, rank: int, level: float) -> bool:
    """Whether P(Binomial(n, q) <= rank - 1) is within float noise of the level."""
    return abs(float(exact_cdfs(n, q)[rank - 1]) - level) < TIE


@given(n=small_n, q=quantiles)
@example(n=100, q=0.07).via("binary 0.07 * 100 is just above 7")
@example(n=100, q=0.95)
def test_nearest_rank_is_the_smallest_rank_covering_q(n: int, q: float) -> None:
    wanted = Fraction(repr(q))
    expected = min(k for k in range(1, n + 1) if Fraction(k, n) >= wanted)
    assert stats.nearest_rank(n, q) == expected


@given(values=latencies, q=quantiles)
def test_percentile_is_the_smallest_value_with_q_of_samples_at_or_below(
    values: list[float], q: float
) -> None:
    ordered = sorted(values)
    n, wanted = len(ordered), Fraction(repr(q))
    expected = min(v for v in ordered if Fraction(sum(x <= v for x in ordered), n) >= wanted)
    assert stats.percentile(ordered, q) == expected


@pytest.mark.slow
@given(n=small_n, k=st.integers(min_value=-1, max_value=121), p=st.floats(0, 1))
def test_binomial_cdf_matches_exact_sum(n: int, k: int, p: float) -> None:
    expected = 0.0 if k < 0 else float(exact_cdfs(n, p)[min(k, n)])
    assert stats.binomial_cdf(k, n, p) == pytest.approx(expected, abs=TIE)


@given(n=st.integers(1_000, 20_000), p=st.floats(0.001, 0.999), share=st.floats(0, 1))
def test_binomial_cdf_stays_accurate_for_large_runs(n: int, p: float, share: float) -> None:
    k = round(share * n)
    log_terms = [
        math.lgamma(n + 1)
        - math.lgamma(i + 1)
        - math.lgamma(n - i + 1)
        + i * math.log(p)
        + (n - i) * math.log1p(-p)
        for i in range(k + 1)
    ]
    top = max(log_terms)
    expected = min(1.0, math.exp(top) * sum(math.exp(t - top) for t in log_terms))
    assert stats.binomial_cdf(k, n, p) == pytest.approx(expected, abs=1e-8)


@given(n=small_n, q=quantiles, confidence=confidences)
def test_upper_bound_rank_matches_brute_force(n: int, q: float, confidence: float) -> None:
    got, expected = stats.percentile_upper_bound(n, q, confidence), brute_upper(n, q, confidence)
    if got != expected:
        # Only acceptable where the exact probability ties the confidence level.
        assert got is not None
        assert expected is not None
        assert near_tie(n, q, min(got, expected), confidence)
    if got is not None:
        assert float(exact_cdfs(n, q)[got - 1]) >= confidence - TIE


@given(n=small_n, q=quantiles, confidence=confidences)
def test_lower_bound_rank_matches_brute_force(n: int, q: float, confidence: float) -> None:
    got, expected = stats.percentile_lower_bound(n, q, confidence), brute_lower(n, q, confidence)
    if got != expected:
        assert got is not None
        assert expected is not None
        assert near_tie(n, q, max(got, expected), 1 - confidence)
    if got is not None:
        assert 1 - float(exact_cdfs(n, q)[got - 1]) >= confidence - TIE


@given(n=small_n, q=quantiles, confidence=st.sampled_from([0.9, 0.95, 0.99]))
def test_bounds_bracket_the_point_estimate(n: int, q: float, confidence: float) -> None:
    rank = stats.nearest_rank(n, q)
    upper = stats.percentile_upper_bound(n, q, confidence)
    lower = stats.percentile_lower_bound(n, q, confidence)
    assert upper is None or upper >= rank
    assert lower is None or lower <= rank


@given(q=quantiles, confidence=confidences)
def test_min_samples_is_the_first_n_where_an_upper_bound_exists(q: float, confidence: float) -> None:
    n = stats.min_samples(q, confidence)
    # Exactly: a pass needs the largest sample to be a bound, i.e. 1 - q**n >= confidence.
    exact_q, exact_confidence = Fraction(repr(q)), Fraction(repr(confidence))
    assume(all(abs(float(1 - exact_q**m - exact_confidence)) > TIE for m in (n - 1, n)))
    assert 1 - exact_q**n >= exact_confidence
    assert n == 1 or 1 - exact_q ** (n - 1) < exact_confidence
    assert stats.percentile_upper_bound(n, q, confidence) == n
    assert n == 1 or stats.percentile_upper_bound(n - 1, q, confidence) is None


def test_the_numbers_people_quote() -> None:
    assert stats.min_samples(0.95, 0.95) == 59
    assert stats.min_samples(0.99, 0.95) == 299
    assert stats.percentile_upper_bound(58, 0.95, 0.95) is None
    assert stats.percentile_upper_bound(59, 0.95, 0.95) == 59


@pytest.mark.slow
@given(
    trials=st.integers(1, 150),
    share=st.floats(0, 1),
    confidence=st.sampled_from([0.9, 0.95, 0.99]),
)
def test_proportion_bounds_solve_the_clopper_pearson_equations(
    trials: int, share: float, confidence: float
) -> None:
    events = round(share * trials)
    upper = stats.proportion_upper_bound(events, trials, confidence)
    lower = stats.proportion_lower_bound(events, trials, confidence)
    assert lower <= events / trials <= upper
    alpha = 1 - confidence
    if events < trials:
        # At the upper bound, seeing this few events or fewer has probability exactly alpha.
        assert float(exact_cdfs(trials, upper)[events]) == pytest.approx(alpha, abs=1e-9)
    else:
        assert upper == 1.0
    if events > 0:
        assert 1 - float(exact_cdfs(trials, lower)[events - 1]) == pytest.approx(alpha, abs=1e-9)
    else:
        assert lower == 0.0


def test_proportion_bound_of_a_clean_p95_run() -> None:
    # 59 clean requests bound the error ratio under 5 %: 1 - 0.05 ** (1 / 59).
    assert stats.proportion_upper_bound(0, 59, 0.95) == pytest.approx(1 - 0.05 ** (1 / 59))


@given(values=latencies, q=quantiles, confidence=confidences)
def test_estimate_reads_bounds_at_their_ranks(values: list[float], q: float, confidence: float) -> None:
    ordered = sorted(values)
    result = stats.estimate(ordered, q, confidence)
    upper = stats.percentile_upper_bound(len(ordered), q, confidence)
    lower = stats.percentile_lower_bound(len(ordered), q, confidence)
    assert result.value == stats.percentile(ordered, q)
    assert result.upper == (None if upper is None else ordered[upper - 1])
    assert result.lower == (None if lower is None else ordered[lower - 1])
    assert result.lower is None or result.lower <= result.value
    assert result.upper is None or result.upper >= result.value


@pytest.mark.parametrize(
    ("lower", "upper", "expected"),
    [
        (1.0, 1.9, "pass"),
        (1.0, 2.0, "pass"),  # at the limit is within it
        (2.0, 2.5, "inconclusive"),
        (2.01, 2.5, "fail"),
        (2.01, None, "fail"),
        (None, None, "inconclusive"),
        (None, 1.5, "pass"),
    ],
)
def test_verdict(lower: float | None, upper: float | None, expected: str) -> None:
    assert stats.verdict(lower, upper, 2.0) == expected


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: stats.nearest_rank(0, 0.95), "need at least one sample, got n=0"),
        (lambda: stats.nearest_rank(10, 1.0), "q must be strictly between 0 and 1, got 1.0"),
        (lambda: stats.percentile_upper_bound(10, 0.95, 1.0), "confidence must be strictly between"),
        (lambda: stats.percentile_lower_bound(10, 0.0, 0.95), "q must be strictly between 0 and 1, got 0.0"),
        (lambda: stats.proportion_upper_bound(5, 4, 0.95), "need 0 <= events <= trials, got 5 of 4"),
        (lambda: stats.binomial_cdf(1, 10, 1.5), "invalid binomial parameters n=10, p=1.5"),
    ],
)
def test_invalid_arguments_are_rejected(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


def test_public_api_is_explicit() -> None:
    # "@py_builtins" and friends: pytest rewrites the asserts of its plugins' packages.
    public = {name for name in vars(stats) if not name.startswith(("_", "@"))}
    imported = {
        "Callable",
        "Fraction",
        "Literal",
        "NormalDist",
        "Sequence",
        "annotations",
        "dataclass",
        "math",
    }
    assert set(stats.__all__) == public - imported
