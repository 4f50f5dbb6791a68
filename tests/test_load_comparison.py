"""The statistics of a run against its baseline, on synthetic samples with known answers.

Samples are log-normal (the usual shape of latencies: a floor and a long right tail), drawn
from seeded generators, so every run of these tests sees the same numbers.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slo import stats
from slo.config.load import BaselineSettings
from slo.loadgate.comparison import (
    ChangeInterval,
    Comparison,
    compare,
    judge,
    overall,
    ratio_interval,
)
from slo.loadgate.histogram import LatencyHistogram, RateHistogram
from slo.loadgate.samples import EndpointRecord, StreamSample

HEALTH = "GET /health"
DEFAULTS = BaselineSettings()


def endpoint(rng: random.Random, n: int, scale: float = 1.0, error_rate: float = 0.0) -> EndpointRecord:
    """``n`` requests with a median of about 100 ms times ``scale``; each fails with ``error_rate``."""
    method, name = HEALTH.split(" ")
    record = EndpointRecord(method, name)
    for _ in range(n):
        record.record(scale * rng.lognormvariate(4.6, 0.3), failed=rng.random() < error_rate)
    return record


def judged(current: EndpointRecord, baseline: EndpointRecord, **settings: float) -> dict[str, Comparison]:
    rows = compare({HEALTH: current}, {HEALTH: baseline}, BaselineSettings(**settings), {}, 59)
    return {row.measure: row for row in rows}


def verdicts(rows: dict[str, Comparison]) -> dict[str, str]:
    return {measure: row.verdict for measure, row in rows.items()}


# --- the three answers the gate must get right -------------------------------------------------


def test_the_same_distribution_twice_is_unchanged_in_at_least_95_percent_of_trials() -> None:
    trials = 60
    unchanged = dict.fromkeys(("error_rate", "p50", "p95", "p99"), 0)
    for seed in range(trials):
        rng = random.Random(seed)
        rows = judged(endpoint(rng, 1000, error_rate=0.02), endpoint(rng, 1000, error_rate=0.02))
        for measure, verdict in verdicts(rows).items():
            unchanged[measure] += verdict == "unchanged"
    assert all(count >= 0.95 * trials for count in unchanged.values()), unchanged


def test_a_ten_percent_slowdown_with_enough_samples_is_regressed() -> None:
    rng = random.Random(10)
    rows = judged(endpoint(rng, 30_000, scale=1.10), endpoint(rng, 30_000))
    assert verdicts(rows) == {
        "error_rate": "unchanged",
        "p50": "regressed",
        "p95": "regressed",
        "p99": "regressed",
    }
    p95 = rows["p95"].change
    assert p95 is not None
    assert 1.05 < p95.lower <= 1.10 <= p95.upper
    assert rows["p95"].reason.startswith("p95 x1.")
    assert "wholly past the 5 % noise floor" in rows["p95"].reason


def test_a_two_percent_slowdown_under_a_five_percent_floor_is_unchanged() -> None:
    rng = random.Random(2)
    rows = judged(endpoint(rng, 30_000, scale=1.02), endpoint(rng, 30_000))
    assert set(verdicts(rows).values()) == {"unchanged"}
    p50 = rows["p50"].change
    assert p50 is not None
    # The interval is narrow enough to see a change; it just does not pass the floor.
    assert p50.lower > 1.0
    assert p50.upper < 1.05


def test_a_two_percent_slowdown_is_regressed_under_a_one_percent_floor() -> None:
    rng = random.Random(2)
    rows = judged(endpoint(rng, 30_000, scale=1.02), endpoint(rng, 30_000), noise=0.01)
    assert rows["p50"].verdict == "regressed"


def test_a_twenty_percent_speedup_is_improved() -> None:
    rng = random.Random(20)
    rows = judged(endpoint(rng, 5000, scale=0.8), endpoint(rng, 5000))
    assert verdicts(rows) == {
        "error_rate": "unchanged",
        "p50": "improved",
        "p95": "improved",
        "p99": "improved",
    }


# --- error rate: two proportions ---------------------------------------------------------------


def test_newcombe_matches_the_published_example() -> None:
    # Newcombe (1998), Statistics in Medicine 17:873, table II, method 10.
    difference, lower, upper = stats.proportion_difference(56, 70, 48, 80, 0.95)
    assert round(difference, 4) == 0.2
    assert (round(lower, 4), round(upper, 4)) == (0.0524, 0.3339)
    assert [round(x, 4) for x in stats.proportion_difference(0, 10, 0, 20, 0.95)[1:]] == [-0.1611, 0.2775]


def test_wilson_interval_of_no_events() -> None:
    low, high = stats.wilson_interval(0, 100, 0.95)
    assert low == 0.0
    assert round(high, 4) == 0.037  # 1.96² / (100 + 1.96²)
    assert stats.wilson_interval(0, 0, 0.95) == (0.0, 1.0)


def test_more_errors_than_the_baseline_regress_and_fewer_improve() -> None:
    rng = random.Random(5)
    assert (
        judged(endpoint(rng, 3000, error_rate=0.05), endpoint(rng, 3000, error_rate=0.01))[
            "error_rate"
        ].verdict
        == "regressed"
    )
    assert (
        judged(endpoint(rng, 3000, error_rate=0.0), endpoint(rng, 3000, error_rate=0.05))[
            "error_rate"
        ].verdict
        == "improved"
    )


def test_one_error_where_the_baseline_had_none_is_not_a_regression() -> None:
    current, baseline = EndpointRecord("GET", "/health"), EndpointRecord("GET", "/health")
    for index in range(1000):
        current.record(100.0, failed=index == 0)
        baseline.record(100.0, failed=False)
    row = judged(current, baseline)["error_rate"]
    assert row.verdict == "unchanged"
    assert row.kind == "difference"
    assert (row.baseline, row.current) == (0.0, 0.001)


# --- fail closed ---------------------------------------------------------------------------------


def test_too_few_requests_are_inconclusive_on_every_measure() -> None:
    rng = random.Random(1)
    rows = judged(endpoint(rng, 40), endpoint(rng, 1000))
    assert set(verdicts(rows).values()) == {"inconclusive"}
    assert rows["p95"].reason == "this run has 40 samples, fewer than min_requests (59)"


def test_enough_requests_for_min_requests_but_not_for_the_p99_bound_are_inconclusive() -> None:
    # At 97.5 % per side and split over two runs, a P99 bound needs over 400 samples.
    rng = random.Random(1)
    rows = judged(endpoint(rng, 200), endpoint(rng, 200))
    assert rows["p50"].verdict == "unchanged"
    assert rows["p99"].verdict == "inconclusive"
    assert "200 and 200 samples cannot bound p99" in rows["p99"].reason


def test_an_endpoint_on_one_side_only_is_inconclusive() -> None:
    rng = random.Random(1)
    sandbox = EndpointRecord("GET", "/sandbox/status")
    sandbox.merge(endpoint(rng, 100))
    rows = compare(
        {HEALTH: endpoint(rng, 100)},
        {HEALTH: endpoint(rng, 100), "GET /sandbox/status": sandbox},
        DEFAULTS,
        {},
        59,
    )
    missing = [row for row in rows if row.endpoint == "GET /sandbox/status"]
    assert [(row.verdict, row.reason) for row in missing] == [
        ("inconclusive", "this run measured no request to it")
    ]


def test_a_baseline_that_streamed_when_this_run_did_not_is_inconclusive() -> None:
    rng = random.Random(1)
    streamed = endpoint(rng, 100)
    for _ in range(100):
        streamed.record(900.0, failed=False, stream=StreamSample(300.0, 40.0, tokens_from_usage=True))
    rows = judged(endpoint(rng, 200), streamed)
    assert rows["ttft_p50"].verdict == "inconclusive"
    assert rows["tokens_per_second_p50"].reason.startswith("this run has 0 samples")


def test_overall_fails_on_a_regression_and_closed_on_inconclusive() -> None:
    def row(verdict: str) -> Comparison:
        return Comparison(HEALTH, "p95", "ms", "ratio", 1.0, 1.0, None, verdict, "")  # type: ignore[arg-type]

    assert overall([row("unchanged"), row("improved")], allow_inconclusive=False) == "pass"
    assert overall([row("unchanged"), row("inconclusive")], allow_inconclusive=False) == "inconclusive"
    assert overall([row("unchanged"), row("inconclusive")], allow_inconclusive=True) == "pass"
    assert overall([row("regressed"), row("inconclusive")], allow_inconclusive=True) == "fail"


def streamed(
    rng: random.Random, n: int, first_token_scale: float = 1.0, rate_scale: float = 1.0
) -> EndpointRecord:
    record = EndpointRecord("POST", "/v1/chat/completions")
    for _ in range(n):
        first_token = first_token_scale * rng.lognormvariate(5.7, 0.2)  # about 300 ms
        rate = rate_scale * rng.lognormvariate(3.7, 0.2)  # about 40 tokens/s
        record.record(first_token + 2000, failed=False, stream=StreamSample(first_token, rate, True))
    return record


def test_streamed_answers_compare_first_tokens_and_token_rates() -> None:
    rng = random.Random(4)
    rows = compare(
        {"chat": streamed(rng, 5000, first_token_scale=1.3, rate_scale=0.7)},
        {"chat": streamed(rng, 5000)},
        DEFAULTS,
        {},
        59,
    )
    got = {row.measure: (row.verdict, row.unit) for row in rows}
    # 90 ms more before the first token is 4 % of a 2.3 s answer: under the floor in total
    # time, 30 % in time to first token. Slower decoding shows in tokens/s alone.
    assert got == {
        "error_rate": ("unchanged", "ratio"),
        "p50": ("unchanged", "ms"),
        "p95": ("unchanged", "ms"),
        "p99": ("unchanged", "ms"),
        "ttft_p50": ("regressed", "ms"),
        "ttft_p95": ("regressed", "ms"),
        "ttft_p99": ("regressed", "ms"),
        "tokens_per_second_p5": ("regressed", "tokens/s"),
        "tokens_per_second_p50": ("regressed", "tokens/s"),
    }


# --- tokens per second: higher is better --------------------------------------------------------


def test_slower_token_output_is_regressed() -> None:
    rng = random.Random(3)
    before, after = RateHistogram(), RateHistogram()
    for _ in range(5000):
        before.record(rng.lognormvariate(3.7, 0.2))
        after.record(0.8 * rng.lognormvariate(3.7, 0.2))
    change = ratio_interval(after.order_statistics(), before.order_statistics(), 0.5, 0.95)
    assert change is not None
    assert change.upper < 1 / 1.05
    assert judge(change, 0.05, higher_is_better=True) == "regressed"
    assert judge(change, 0.05, higher_is_better=False) == "improved"


# --- properties -----------------------------------------------------------------------------------

latencies = st.lists(st.floats(0.1, 60_000.0), min_size=1, max_size=300)


def histogram(values: list[float]) -> LatencyHistogram:
    recorded = LatencyHistogram()
    for value in values:
        recorded.record(value)
    return recorded


@given(values=latencies, q=st.sampled_from([0.5, 0.95, 0.99]))
def test_a_run_against_itself_is_never_a_change(values: list[float], q: float) -> None:
    table = histogram(values).order_statistics()
    change = ratio_interval(table, table, q, 0.95)
    if change is not None:
        assert change.lower <= 1 <= change.upper
        assert judge(change, 0.0, higher_is_better=False) == "unchanged"


@given(current=latencies, baseline=latencies, q=st.sampled_from([0.5, 0.95]))
def test_the_estimate_lies_inside_its_interval(current: list[float], baseline: list[float], q: float) -> None:
    change = ratio_interval(
        histogram(current).order_statistics(), histogram(baseline).order_statistics(), q, 0.9
    )
    if change is not None:
        assert change.lower <= change.estimate <= change.upper


@given(lower=st.floats(0.01, 10.0), width=st.floats(0.0, 10.0), noise=st.floats(0.0, 0.5))
def test_a_verdict_is_symmetric_on_a_log_scale(lower: float, width: float, noise: float) -> None:
    change = ChangeInterval(lower, lower, lower + width)
    mirrored = ChangeInterval(1 / lower, 1 / (lower + width), 1 / lower)
    swapped = {"regressed": "improved", "improved": "regressed", "unchanged": "unchanged"}
    assert (
        judge(mirrored, noise, higher_is_better=False)
        == swapped[judge(change, noise, higher_is_better=False)]
    )


@given(
    events=st.integers(0, 500),
    extra=st.integers(0, 500),
    base_events=st.integers(0, 500),
    base_extra=st.integers(0, 500),
)
def test_the_difference_lies_inside_its_newcombe_interval(
    events: int, extra: int, base_events: int, base_extra: int
) -> None:
    trials, base_trials = events + extra + 1, base_events + base_extra + 1
    difference, lower, upper = stats.proportion_difference(events, trials, base_events, base_trials, 0.95)
    assert -1 <= lower <= difference <= upper <= 1


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_a_higher_confidence_never_narrows_the_interval(confidence: float) -> None:
    rng = random.Random(8)
    current, baseline = endpoint(rng, 2000).histogram, endpoint(rng, 2000).histogram
    narrow = ratio_interval(current.order_statistics(), baseline.order_statistics(), 0.95, 0.8)
    wide = ratio_interval(current.order_statistics(), baseline.order_statistics(), 0.95, confidence)
    assert narrow is not None
    assert wide is not None
    assert wide.lower <= narrow.lower
    assert wide.upper >= narrow.upper
