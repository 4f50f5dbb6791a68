"""The load gate's verdict: every threshold judged on exact latencies with confidence bounds.

Each threshold is ``pass`` only when its confidence bound is inside the limit, ``fail`` when
the opposite bound is already beyond it, and ``inconclusive`` in between or with too few
requests (see :mod:`slo.stats` for the bounds). Zero requests fail: an empty run proves
nothing and must never let a release through. The run's verdict is the worst of them.

Latency percentiles cover every measured request, failed ones included, exactly like
Locust's own statistics: a timeout is a slow request, and errors are judged by `error_rate`.
A streamed answer's latency is its total time, to the end of the stream.

Streamed answers add two measures. Time to first token is a latency (lower is better) over
every answer whose first content delta came, failed later or not. Output tokens per second
is a rate (higher is better) over the answers that ended well: its threshold is a minimum,
so it passes only when the *lower* bound of its percentile is at or over the limit and fails
when the upper bound is under it. Both count their own samples against `min_requests`, and
none at all fails.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from slo import stats
from slo.config.load import (
    FIRST_TOKEN_PERCENTILES,
    PERCENTILES,
    TOKEN_RATE_PERCENTILES,
    FirstTokenName,
    LoadSettings,
    PercentileName,
    Thresholds,
    TokenRateName,
)
from slo.loadgate.histogram import ExactHistogram, OrderStatistics
from slo.loadgate.samples import CpuUsage, EndpointRecord, LocustFigures, RunResults

__all__ = [
    "CPU_SATURATION_PERCENT",
    "TOTAL",
    "EndpointFigures",
    "ErrorRatio",
    "Evaluation",
    "PercentileFigures",
    "ThresholdResult",
    "evaluate",
    "measure",
    "planned_thresholds",
]

#: The endpoint name of the whole run's figures and thresholds.
TOTAL = "total"
#: Locust's own warning level for a load generator process.
CPU_SATURATION_PERCENT = 90.0

Metric = PercentileName | FirstTokenName | TokenRateName | Literal["error_rate", "requests", "cpu_percent"]
Unit = Literal["ms", "ratio", "requests", "percent", "tokens/s"]
_UNITS: dict[str, Unit] = {
    "error_rate": "ratio",
    "requests": "requests",
    "cpu_percent": "percent",
    **dict.fromkeys(TOKEN_RATE_PERCENTILES, "tokens/s"),
}


@dataclass(frozen=True)
class PercentileFigures:
    """A nearest-rank percentile (ms, or tokens/s for a rate) and its one-sided bounds (None:
    too few samples)."""

    value: float
    lower: float | None
    upper: float | None


@dataclass(frozen=True)
class ErrorRatio:
    """Failed over measured requests, with exact (Clopper-Pearson) one-sided bounds."""

    observed: float
    lower: float
    upper: float


@dataclass(frozen=True)
class EndpointFigures:
    """What the summary reports for one endpoint, or for the total."""

    endpoint: str
    requests: int
    failures: int
    error: ErrorRatio | None
    percentiles: dict[str, PercentileFigures]
    locust: LocustFigures | None
    #: Streamed answers that delivered a first token, and their first-token percentiles (ms).
    streams: int = 0
    first_token: dict[str, PercentileFigures] = field(default_factory=dict)
    #: Answers with an output rate, its percentiles (tokens/s), and where their token counts
    #: came from: the usage chunk, or counted content deltas.
    rate_samples: int = 0
    token_rate: dict[str, PercentileFigures] = field(default_factory=dict)
    tokens_from_usage: int = 0
    tokens_counted: int = 0


@dataclass(frozen=True)
class ThresholdResult:
    """One threshold's verdict: ``name`` is what JUnit and the table show, e.g. "total p95"."""

    name: str
    endpoint: str
    metric: Metric
    threshold: float
    observed: float | None
    lower_bound: float | None
    upper_bound: float | None
    verdict: stats.Verdict
    reason: str

    @property
    def unit(self) -> Unit:
        return _UNITS.get(self.metric, "ms")

    @property
    def higher_is_better(self) -> bool:
        return self.metric in TOKEN_RATE_PERCENTILES

    @property
    def bound(self) -> float | None:
        """The bound that decided: for a maximum (latency) the lower one proves a failure and
        the upper one a pass; for a minimum (tokens per second) the other way round."""
        proves_failure = self.upper_bound if self.higher_is_better else self.lower_bound
        proves_pass = self.lower_bound if self.higher_is_better else self.upper_bound
        return proves_failure if self.verdict == "fail" else proves_pass


@dataclass
class Evaluation:
    verdict: stats.Verdict
    thresholds: list[ThresholdResult]
    endpoints: dict[str, EndpointFigures]
    warnings: list[str] = field(default_factory=list)
    cpu_saturated: bool = False


def _percent(ratio: float) -> str:
    return f"{100 * ratio:.2f} %"


def _percentile(
    table: OrderStatistics, q: float, confidence: float, higher_is_better: bool = False
) -> PercentileFigures:
    n = table.count
    upper = stats.percentile_upper_bound(n, q, confidence)
    lower = stats.percentile_lower_bound(n, q, confidence)
    # Each bucket's conservative end, so that rounding never helps a pass: for a latency the
    # top for values and upper bounds (never understate it), the bottom for lower bounds
    # (never overstate it); for a rate, where higher is better, the other way round.
    value = table.at(stats.nearest_rank(n, q))
    return PercentileFigures(
        value=value.low if higher_is_better else value.high,
        lower=None if lower is None else table.at(lower).low,
        upper=None if upper is None else table.at(upper).high,
    )


def _percentiles(
    histogram: ExactHistogram | None,
    quantiles: Mapping[Any, float],
    confidence: float,
    higher_is_better: bool = False,
) -> tuple[int, dict[str, PercentileFigures]]:
    if histogram is None or not histogram.count:
        return 0, {}
    table = histogram.order_statistics()
    return table.count, {
        name: _percentile(table, q, confidence, higher_is_better) for name, q in quantiles.items()
    }


def measure(record: EndpointRecord, confidence: float) -> EndpointFigures:
    """Exact percentiles and error ratio of one endpoint's measured requests."""
    error = None
    percentiles: dict[str, PercentileFigures] = {}
    if record.requests:
        error = ErrorRatio(
            observed=record.failures / record.requests,
            lower=stats.proportion_lower_bound(record.failures, record.requests, confidence),
            upper=stats.proportion_upper_bound(record.failures, record.requests, confidence),
        )
        percentiles = _percentiles(record.histogram, PERCENTILES, confidence)[1]
    streams, first_token = _percentiles(record.first_token, FIRST_TOKEN_PERCENTILES, confidence)
    rate_samples, token_rate = _percentiles(record.token_rate, TOKEN_RATE_PERCENTILES, confidence, True)
    return EndpointFigures(
        endpoint=record.key if record.method else record.name,
        requests=record.requests,
        failures=record.failures,
        error=error,
        percentiles=percentiles,
        locust=record.locust,
        streams=streams,
        first_token=first_token,
        rate_samples=rate_samples,
        token_rate=token_rate,
        tokens_from_usage=record.tokens_from_usage,
        tokens_counted=record.tokens_counted,
    )


def _total(results: RunResults) -> EndpointRecord:
    total = EndpointRecord(method="", name=TOTAL, locust=results.locust_total)
    for record in results.endpoints.values():
        total.merge(record)
    return total


def planned_thresholds(settings: LoadSettings) -> list[tuple[str, str, Metric]]:
    """``(name, endpoint, metric)`` of every threshold a run will judge, known before it runs.

    The pytest wrapper turns each into a test case, so the list must not depend on traffic.
    """
    planned: list[tuple[str, str, Metric]] = []
    scopes = [(TOTAL, settings.total), *settings.endpoints.items()]
    for endpoint, thresholds in scopes:
        metrics: list[Metric] = [
            "requests",
            "error_rate",
            *thresholds.percentile_limits(),
            *thresholds.first_token_limits(),
            *thresholds.token_rate_limits(),
        ]
        planned += [(f"{endpoint} {metric}", endpoint, metric) for metric in metrics]
    if settings.cpu_saturation == "inconclusive":
        planned.append(("load generator cpu_percent", "generator", "cpu_percent"))
    return planned


class _Judge:
    """Judges the thresholds of one scope (an endpoint or the total) from its figures."""

    def __init__(self, figures: EndpointFigures, limits: Thresholds, confidence: float) -> None:
        self.figures = figures
        self.limits = limits
        self.confidence = confidence
        self.level = f"{100 * confidence:g} % confidence"

    def result(
        self,
        metric: Metric,
        threshold: float,
        observed: float | None,
        bounds: tuple[float | None, float | None],
        verdict: stats.Verdict,
        reason: str,
    ) -> ThresholdResult:
        endpoint = self.figures.endpoint
        return ThresholdResult(
            f"{endpoint} {metric}", endpoint, metric, threshold, observed, *bounds, verdict, reason
        )

    def too_few(self) -> str | None:
        """Why no threshold of this scope may pass on this little traffic, if so."""
        n, minimum = self.figures.requests, self.limits.min_requests
        if n < minimum:
            return f"only {n} requests measured, fewer than min_requests ({minimum})"
        return None

    def requests(self) -> ThresholdResult:
        n, minimum = self.figures.requests, self.limits.min_requests
        if n == 0:
            return self.result("requests", minimum, 0, (None, None), "fail", _NO_REQUESTS)
        shortfall = self.too_few()
        verdict: stats.Verdict = "inconclusive" if shortfall else "pass"
        reason = shortfall or f"{n} requests measured (min_requests {minimum})"
        return self.result("requests", minimum, n, (None, None), verdict, reason)

    def error_rate(self) -> ThresholdResult:
        limit, error = self.limits.error_rate, self.figures.error
        if error is None:
            return self.result("error_rate", limit, None, (None, None), "fail", _NO_REQUESTS)
        verdict = stats.verdict(error.lower, error.upper, limit)
        bounds = (error.lower, error.upper)
        if verdict == "fail":
            reason = (
                f"error rate at least {_percent(error.lower)} at {self.level}, "
                f"over the {_percent(limit)} limit"
            )
        elif verdict == "pass" and not self.too_few():
            reason = f"error rate at most {_percent(error.upper)} at {self.level}"
        else:
            reason = self.too_few() or (
                f"error rate between {_percent(error.lower)} and {_percent(error.upper)} at "
                f"{self.level}: the {_percent(limit)} limit is inside; run longer"
            )
            verdict = "inconclusive"
        return self.result("error_rate", limit, error.observed, bounds, verdict, reason)

    def percentile(self, metric: PercentileName, limit_seconds: float) -> ThresholdResult:
        figures = self.figures
        return self._order_statistic(
            metric, 1000 * limit_seconds, figures.percentiles.get(metric), figures.requests, _LATENCY
        )

    def first_token(self, metric: FirstTokenName, limit_seconds: float) -> ThresholdResult:
        figures = self.figures
        return self._order_statistic(
            metric, 1000 * limit_seconds, figures.first_token.get(metric), figures.streams, _FIRST_TOKEN
        )

    def token_rate(self, metric: TokenRateName, minimum: float) -> ThresholdResult:
        figures = self.figures
        return self._order_statistic(
            metric, minimum, figures.token_rate.get(metric), figures.rate_samples, _TOKEN_RATE
        )

    def _order_statistic(
        self, metric: Metric, limit: float, figures: PercentileFigures | None, n: int, kind: _Measure
    ) -> ThresholdResult:
        label = kind.label(metric)
        if figures is None:
            reason = _NO_REQUESTS if not self.figures.requests else kind.no_samples(self.figures.requests)
            return self.result(metric, limit, None, (None, None), "fail", reason)
        lower, upper = figures.lower, figures.upper
        shortfall = kind.too_few(n, self.limits.min_requests)
        if kind.higher_is_better:
            verdict = stats.verdict_at_least(lower, upper, limit)
        else:
            verdict = stats.verdict(lower, upper, limit)
        show = kind.show
        if verdict == "fail":
            if kind.higher_is_better:
                assert upper is not None
                reason = f"{label} at most {show(upper)} at {self.level}, under the {show(limit)} minimum"
            else:
                assert lower is not None
                reason = f"{label} at least {show(lower)} at {self.level}, over the {show(limit)} limit"
        elif verdict == "pass" and not shortfall:
            bound = lower if kind.higher_is_better else upper
            assert bound is not None
            reason = (
                f"{label} {'at least' if kind.higher_is_better else 'at most'} {show(bound)} at {self.level}"
            )
        else:
            verdict = "inconclusive"
            reason = shortfall or self._undecided(metric, n, lower, upper, limit, kind)
        return self.result(metric, limit, figures.value, (lower, upper), verdict, reason)

    def _undecided(
        self, metric: Metric, n: int, lower: float | None, upper: float | None, limit: float, kind: _Measure
    ) -> str:
        label, show = kind.label(metric), kind.show
        q = kind.quantiles[metric]
        # The bound a pass needs: the upper one for a maximum, the lower one for a minimum,
        # which (by symmetry) needs as many samples as the upper bound of the 1 - q percentile.
        missing = lower is None if kind.higher_is_better else upper is None
        if missing:
            needed = stats.min_samples(1 - q if kind.higher_is_better else q, self.confidence)
            side = "below" if kind.higher_is_better else "above"
            return f"{n} {kind.samples} cannot bound {label} from {side} at {self.level}: {needed} needed"
        low = "?" if lower is None else show(lower)
        high = "?" if upper is None else show(upper)
        return (
            f"{label} between {low} and {high} at {self.level}: "
            f"the {show(limit)} {'minimum' if kind.higher_is_better else 'limit'} is inside; run longer"
        )

    def all(self) -> list[ThresholdResult]:
        results = [self.requests(), self.error_rate()]
        limits = self.limits
        results += [self.percentile(metric, limit) for metric, limit in limits.percentile_limits().items()]
        results += [self.first_token(metric, limit) for metric, limit in limits.first_token_limits().items()]
        results += [self.token_rate(metric, limit) for metric, limit in limits.token_rate_limits().items()]
        return results


_NO_REQUESTS = "no requests were measured: nothing to judge, and an empty run never passes"


def _ms(value: float) -> str:
    return f"{value:.1f} ms"


def _rate(value: float) -> str:
    return f"{value:.1f} tokens/s"


@dataclass(frozen=True)
class _Measure:
    """How one kind of percentile threshold reads: its samples, unit and direction."""

    quantiles: Mapping[Any, float]
    show: Callable[[float], str]
    #: What the samples are, in a reason ("requests", "streamed answers").
    samples: str
    #: Why there are none although requests were measured.
    none_because: str
    prefix: str = ""
    higher_is_better: bool = False

    def label(self, metric: str) -> str:
        return f"{self.prefix}P{metric.rsplit('p', 1)[1]}"

    def too_few(self, n: int, minimum: int) -> str | None:
        if n < minimum:
            return f"only {n} {self.samples} measured, fewer than min_requests ({minimum})"
        return None

    def no_samples(self, requests: int) -> str:
        return f"{self.none_because} ({requests} requests measured): no samples never pass"


_LATENCY = _Measure(PERCENTILES, _ms, "requests", "no request has a latency")
_FIRST_TOKEN = _Measure(
    FIRST_TOKEN_PERCENTILES,
    _ms,
    "streamed answers",
    "no streamed answer delivered a first token (is the scenario a stream, did every request fail?)",
    prefix="first-token ",
)
_TOKEN_RATE = _Measure(
    TOKEN_RATE_PERCENTILES,
    _rate,
    "streamed answers",
    "no streamed answer ended with two or more output tokens to time",
    prefix="tokens/s ",
    higher_is_better=True,
)


def _saturated(results: RunResults) -> list[CpuUsage]:
    return [usage for usage in results.cpu if usage.percent >= CPU_SATURATION_PERCENT or usage.locust_warned]


def _cpu_row(results: RunResults, saturated: list[CpuUsage]) -> ThresholdResult:
    """The generator's own CPU as a threshold, when `load.cpu_saturation` is inconclusive."""
    peak = max((usage.percent for usage in results.cpu), default=0.0)
    if saturated:
        verdict: stats.Verdict = "inconclusive"
        reason = "the load generator saturated its CPU (load.cpu_saturation: inconclusive)"
    else:
        verdict, reason = "pass", f"at most {peak:.0f} % of a core per load generator process"
    return ThresholdResult(
        "load generator cpu_percent",
        "generator",
        "cpu_percent",
        CPU_SATURATION_PERCENT,
        peak,
        None,
        None,
        verdict,
        reason,
    )


def evaluate(results: RunResults, settings: LoadSettings) -> Evaluation:
    """Judge a run against the `load:` thresholds."""
    confidence = settings.confidence
    figures = {TOTAL: measure(_total(results), confidence)}
    figures.update({key: measure(record, confidence) for key, record in sorted(results.endpoints.items())})
    thresholds = _Judge(figures[TOTAL], settings.total, confidence).all()
    for endpoint, limits in settings.endpoints.items():
        scope = figures.get(endpoint) or measure(_missing(endpoint), confidence)
        thresholds += _Judge(scope, limits, confidence).all()
    saturated = _saturated(results)
    if settings.cpu_saturation == "inconclusive":
        thresholds.append(_cpu_row(results, saturated))
    warnings = [
        f"load generator {usage.process} used {usage.percent:.0f} % CPU while measuring "
        f"(saturated at {CPU_SATURATION_PERCENT:g} %): latencies include its own queueing and "
        "it offered less load than asked; add --workers"
        for usage in saturated
    ]
    warnings += results.warnings + _unseen_endpoints(settings, figures)
    verdicts = {result.verdict for result in thresholds}
    verdict: stats.Verdict = (
        "fail" if "fail" in verdicts else "inconclusive" if "inconclusive" in verdicts else "pass"
    )
    return Evaluation(verdict, thresholds, figures, warnings, cpu_saturated=bool(saturated))


def _missing(endpoint: str) -> EndpointRecord:
    method, _, name = endpoint.partition(" ")
    return EndpointRecord(method=method, name=name)


def _unseen_endpoints(settings: LoadSettings, figures: dict[str, EndpointFigures]) -> list[str]:
    seen = sorted(key for key in figures if key != TOTAL)
    return [
        f"load.endpoints: no request to {endpoint!r} was measured (measured: "
        f"{', '.join(seen) or 'none'}); check the name"
        for endpoint in settings.endpoints
        if endpoint not in figures
    ]
