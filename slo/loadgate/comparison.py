"""A run against its baseline run: per endpoint and measure, regressed, improved, unchanged or
inconclusive, with the change and its confidence interval. Pure functions, no I/O.

Percentiles (latency P50/P95/P99, time to first token, output tokens per second) are compared
by the ratio ``current / baseline`` of the two nearest-rank percentiles. Its interval comes from
the exact, distribution-free order-statistic bounds of :mod:`slo.stats`, one per side of each
run, each at one-sided level ``1 - alpha / 4`` (``alpha = 1 - confidence``)::

    lower = current's lower bound / baseline's upper bound
    upper = current's upper bound / baseline's lower bound

The lower end is wrong only if the current percentile is below its lower bound or the
baseline's above its upper bound, each with probability at most ``alpha / 4``: so each end
errs with probability at most ``alpha / 2`` and the interval covers the true ratio with at
least the requested confidence (a Bonferroni split). It assumes nothing about the latency
distribution, holds with ties and histogram buckets (the bucket's outer edge is taken), is
deterministic, and is conservative: too wide, never too narrow.

A latency **regressed** when the whole interval lies above ``1 + noise``, and **improved** when
it lies below ``1 / (1 + noise)`` (the same step on a log scale); a rate (tokens per second)
the other way round. Otherwise it is **unchanged**: no change past the noise floor was shown.

The error ratio is compared by the difference ``p - p_base`` with Newcombe's hybrid score
interval (:func:`slo.stats.proportion_difference`): regressed when the whole interval lies
above ``noise * p_base`` (a rise of more than the noise floor, relative to the baseline's
ratio; any significant rise from zero errors), improved when it lies below ``-noise * p_base``.

Missing or thin evidence is **inconclusive** with the reason: an endpoint on one side only,
fewer requests than the scope's ``min_requests``, or too few for the bounds to exist at all.

>>> from slo.loadgate.histogram import LatencyHistogram
>>> def run(milliseconds: float) -> LatencyHistogram:
...     histogram = LatencyHistogram()
...     for step in range(2000):
...         histogram.record(milliseconds * (1 + step / 20000))
...     return histogram
>>> change = ratio_interval(run(160).order_statistics(), run(100).order_statistics(), 0.95, 0.95)
>>> change is not None and judge(change, noise=0.05, higher_is_better=False)
'regressed'
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from slo import stats
from slo.config.load import (
    FIRST_TOKEN_PERCENTILES,
    PERCENTILES,
    TOKEN_RATE_PERCENTILES,
    BaselineSettings,
)
from slo.loadgate.histogram import ExactHistogram, OrderStatistics
from slo.loadgate.samples import EndpointRecord

__all__ = [
    "CHANGES",
    "Change",
    "ChangeInterval",
    "Comparison",
    "compare",
    "comparison_name",
    "error_rate_change",
    "inconclusive",
    "judge",
    "overall",
    "planned_measures",
    "ratio_interval",
]

Change = Literal["regressed", "improved", "unchanged", "inconclusive"]
#: Every verdict of a comparison, best first.
CHANGES: tuple[Change, ...] = ("improved", "unchanged", "regressed", "inconclusive")
#: The ratio's four one-sided bounds share the error: alpha / 4 each (see the module doc).
_BOUNDS_PER_RATIO = 4


@dataclass(frozen=True)
class ChangeInterval:
    """A change (a ratio, or a difference of error ratios) and its two-sided interval."""

    estimate: float
    lower: float
    upper: float


@dataclass(frozen=True)
class Comparison:
    """One endpoint's measure against the baseline. ``kind`` says what ``change`` is: the
    ratio of two percentiles, or the difference of two error ratios."""

    endpoint: str
    measure: str
    unit: Literal["ms", "tokens/s", "ratio"]
    kind: Literal["ratio", "difference"]
    baseline: float | None
    current: float | None
    change: ChangeInterval | None
    verdict: Change
    reason: str

    @property
    def name(self) -> str:
        return comparison_name(self.endpoint, self.measure)


def comparison_name(endpoint: str, measure: str) -> str:
    """What JUnit, the gate and the metrics call a comparison, e.g. "total p95 vs baseline"."""
    return f"{endpoint} {measure} vs baseline"


def ratio_interval(
    current: OrderStatistics, baseline: OrderStatistics, q: float, confidence: float
) -> ChangeInterval | None:
    """The ratio of the ``q`` percentiles and its interval; None when too few samples bound it."""
    level = 1 - (1 - confidence) / _BOUNDS_PER_RATIO
    ranks = []
    for table in (current, baseline):
        if not table.count:
            return None
        lower = stats.percentile_lower_bound(table.count, q, level)
        upper = stats.percentile_upper_bound(table.count, q, level)
        if lower is None or upper is None:
            return None
        ranks.append((table.at(lower).low, table.at(upper).high))
    (current_low, current_high), (base_low, base_high) = ranks
    return ChangeInterval(
        estimate=_ratio(_value(current, q), _value(baseline, q)),
        lower=_ratio(current_low, base_high),
        upper=_ratio(current_high, base_low),
    )


def _value(table: OrderStatistics, q: float) -> float:
    bucket = table.at(stats.nearest_rank(table.count, q))
    return (bucket.low + bucket.high) / 2


def _ratio(numerator: float, denominator: float) -> float:
    if denominator > 0:
        return numerator / denominator
    return math.inf if numerator > 0 else 1.0


def judge(change: ChangeInterval, noise: float, higher_is_better: bool) -> Change:
    """A ratio's verdict: past the noise floor with the whole interval, or unchanged."""
    above, below = change.lower > 1 + noise, change.upper < 1 / (1 + noise)
    if above:
        return "improved" if higher_is_better else "regressed"
    if below:
        return "regressed" if higher_is_better else "improved"
    return "unchanged"


def error_rate_change(
    current: EndpointRecord, baseline: EndpointRecord, settings: BaselineSettings
) -> tuple[ChangeInterval, Change]:
    """The difference of the error ratios, its Newcombe interval, and its verdict."""
    difference, lower, upper = stats.proportion_difference(
        current.failures, current.requests, baseline.failures, baseline.requests, settings.confidence
    )
    floor = settings.noise * baseline.failures / baseline.requests
    change = ChangeInterval(difference, lower, upper)
    if lower > floor:
        return change, "regressed"
    if upper < -floor:
        return change, "improved"
    return change, "unchanged"


def inconclusive(endpoint: str, measure: str, reason: str) -> Comparison:
    """A comparison that could not be made, and why (one line)."""
    return Comparison(endpoint, measure, "ms", "ratio", None, None, None, "inconclusive", reason)


def _percent(value: float) -> str:
    return f"{100 * value:+.1f} %"


def _describe(change: ChangeInterval, level: str) -> str:
    return (
        f"x{change.estimate:.3f} ({_percent(change.estimate - 1)}), "
        f"x{change.lower:.3f} .. x{change.upper:.3f} at {level}"
    )


class _Comparer:
    """Compares one endpoint's records; ``min_requests`` is the least evidence on each side."""

    def __init__(self, endpoint: str, settings: BaselineSettings, min_requests: int) -> None:
        self.endpoint = endpoint
        self.settings = settings
        self.min_requests = min_requests
        self.level = f"{100 * settings.confidence:g} % confidence"
        self.floor = f"the {100 * settings.noise:g} % noise floor"

    def thin(self, measure: str, current: int, baseline: int, what: str) -> Comparison | None:
        for side, count in (("this run", current), ("the baseline", baseline)):
            if count < self.min_requests:
                return inconclusive(
                    self.endpoint,
                    measure,
                    f"{side} has {count} {what}, fewer than min_requests ({self.min_requests})",
                )
        return None

    def error_rate(self, current: EndpointRecord, baseline: EndpointRecord) -> Comparison:
        thin = self.thin("error_rate", current.requests, baseline.requests, "requests")
        if thin:
            return thin
        change, verdict = error_rate_change(current, baseline, self.settings)
        low, high = 100 * change.lower, 100 * change.upper
        points = f"{100 * change.estimate:+.2f} points ({low:+.2f} .. {high:+.2f})"
        reason = {
            "regressed": f"error rate rose {points} at {self.level}, past {self.floor}",
            "improved": f"error rate fell {points} at {self.level}, past {self.floor}",
            "unchanged": f"error rate changed {points} at {self.level}: no change past {self.floor}",
        }[verdict]
        return Comparison(
            self.endpoint,
            "error_rate",
            "ratio",
            "difference",
            baseline.failures / baseline.requests,
            current.failures / current.requests,
            change,
            verdict,
            reason,
        )

    def percentile(
        self,
        measure: str,
        q: float,
        current_table: OrderStatistics | None,
        base_table: OrderStatistics | None,
        higher_is_better: bool,
    ) -> Comparison:
        current_count = current_table.count if current_table else 0
        base_count = base_table.count if base_table else 0
        thin = self.thin(measure, current_count, base_count, "samples")
        if thin:
            return thin
        assert current_table is not None  # min_requests is at least 1
        assert base_table is not None
        change = ratio_interval(current_table, base_table, q, self.settings.confidence)
        unit: Literal["tokens/s", "ms"] = "tokens/s" if higher_is_better else "ms"
        values = (_value(base_table, q), _value(current_table, q))
        if change is None:
            reason = (
                f"{current_count} and {base_count} samples cannot bound {measure} at {self.level}; run longer"
            )
            return Comparison(self.endpoint, measure, unit, "ratio", *values, None, "inconclusive", reason)
        verdict = judge(change, self.settings.noise, higher_is_better)
        described = _describe(change, self.level)
        reason = {
            "regressed": f"{measure} {described}: wholly past {self.floor}",
            "improved": f"{measure} {described}: wholly better than {self.floor}",
            "unchanged": f"{measure} {described}: no change past {self.floor}",
        }[verdict]
        return Comparison(self.endpoint, measure, unit, "ratio", *values, change, verdict, reason)

    def all(self, current: EndpointRecord, baseline: EndpointRecord) -> list[Comparison]:
        rows = [self.error_rate(current, baseline)]
        for quantiles, higher_is_better, now, then in _histograms(current, baseline):
            if now is None and then is None:
                continue  # neither run streamed: nothing to compare, nothing missing
            # One rank index per histogram, shared by its percentiles.
            now_table = None if now is None else now.order_statistics()
            then_table = None if then is None else then.order_statistics()
            rows += [
                self.percentile(measure, q, now_table, then_table, higher_is_better)
                for measure, q in quantiles.items()
            ]
        return rows


def planned_measures(record: EndpointRecord) -> list[str]:
    """The measures :func:`compare` judges of an endpoint like ``record`` (known before a run)."""
    measures = ["error_rate"]
    for quantiles, _, histogram, _ in _histograms(record, record):
        if histogram is not None:
            measures += list(quantiles)
    return measures


def _histograms(
    current: EndpointRecord, baseline: EndpointRecord
) -> list[tuple[Mapping[Any, float], bool, ExactHistogram | None, ExactHistogram | None]]:
    """(quantiles, higher is better, this run's histogram, the baseline's) of each measure."""
    return [
        (PERCENTILES, False, current.histogram, baseline.histogram),
        (FIRST_TOKEN_PERCENTILES, False, current.first_token, baseline.first_token),
        (TOKEN_RATE_PERCENTILES, True, current.token_rate, baseline.token_rate),
    ]


def compare(
    current: Mapping[str, EndpointRecord],
    baseline: Mapping[str, EndpointRecord],
    settings: BaselineSettings,
    min_requests: Mapping[str, int],
    default_min_requests: int,
) -> list[Comparison]:
    """Every endpoint (and the total, keyed as its callers key it) on either side, measure by
    measure; an endpoint on one side only is inconclusive."""
    rows: list[Comparison] = []
    for endpoint in sorted(set(current) | set(baseline)):
        now, then = current.get(endpoint), baseline.get(endpoint)
        if then is None:
            rows.append(inconclusive(endpoint, "requests", "the baseline measured no request to it"))
        elif now is None:
            rows.append(inconclusive(endpoint, "requests", "this run measured no request to it"))
        else:
            minimum = min_requests.get(endpoint, default_min_requests)
            rows += _Comparer(endpoint, settings, minimum).all(now, then)
    return rows


def overall(comparisons: Iterable[Comparison], allow_inconclusive: bool) -> stats.Verdict:
    """The gate's verdict on the comparisons: a regression fails; an inconclusive one fails
    closed (``inconclusive``) unless allowed; anything else passes."""
    verdicts = {comparison.verdict for comparison in comparisons}
    if "regressed" in verdicts:
        return "fail"
    if "inconclusive" in verdicts and not allow_inconclusive:
        return "inconclusive"
    return "pass"
