"""The load gate's verdict: every threshold judged on exact latencies with confidence bounds.

Each threshold is ``pass`` only when its confidence bound is inside the limit, ``fail`` when
the opposite bound is already beyond it, and ``inconclusive`` in between or with too few
requests (see :mod:`slo.stats` for the bounds). Zero requests fail: an empty run proves
nothing and must never let a release through. The run's verdict is the worst of them.

Latency percentiles cover every measured request, failed ones included, exactly like
Locust's own statistics: a timeout is a slow request, and errors are judged by `error_rate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from slo import stats
from slo.config.load import PERCENTILES, LoadSettings, PercentileName, Thresholds
from slo.loadgate.histogram import OrderStatistics
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

Metric = PercentileName | Literal["error_rate", "requests", "cpu_percent"]
Unit = Literal["ms", "ratio", "requests", "percent"]
_UNITS: dict[str, Unit] = {"error_rate": "ratio", "requests": "requests", "cpu_percent": "percent"}


@dataclass(frozen=True)
class PercentileFigures:
    """A nearest-rank percentile in ms and its one-sided bounds (None: too few samples)."""

    value_ms: float
    lower_ms: float | None
    upper_ms: float | None


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
    def bound(self) -> float | None:
        """The bound that decided: the lower one proves a failure, the upper one a pass."""
        return self.lower_bound if self.verdict == "fail" else self.upper_bound


@dataclass
class Evaluation:
    verdict: stats.Verdict
    thresholds: list[ThresholdResult]
    endpoints: dict[str, EndpointFigures]
    warnings: list[str] = field(default_factory=list)
    cpu_saturated: bool = False


def _ms(value: float) -> str:
    return f"{value:.1f} ms"


def _percent(ratio: float) -> str:
    return f"{100 * ratio:.2f} %"


def _percentile(table: OrderStatistics, q: float, confidence: float) -> PercentileFigures:
    n = table.count
    upper = stats.percentile_upper_bound(n, q, confidence)
    lower = stats.percentile_lower_bound(n, q, confidence)
    # Each bucket's conservative end: the top for values and upper bounds (never understate a
    # latency), the bottom for lower bounds (never overstate one).
    return PercentileFigures(
        value_ms=table.at(stats.nearest_rank(n, q)).high_ms,
        lower_ms=None if lower is None else table.at(lower).low_ms,
        upper_ms=None if upper is None else table.at(upper).high_ms,
    )


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
        table = record.histogram.order_statistics()
        percentiles = {name: _percentile(table, q, confidence) for name, q in PERCENTILES.items()}
    return EndpointFigures(
        record.key if record.method else record.name,
        record.requests,
        record.failures,
        error,
        percentiles,
        record.locust,
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
        metrics: list[Metric] = ["requests", "error_rate", *thresholds.percentile_limits()]
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
        limit = 1000 * limit_seconds
        label = metric.upper()
        figures = self.figures.percentiles.get(metric)
        if figures is None:
            return self.result(metric, limit, None, (None, None), "fail", _NO_REQUESTS)
        lower, upper = figures.lower_ms, figures.upper_ms
        verdict = stats.verdict(lower, upper, limit)
        if verdict == "fail":
            assert lower is not None
            reason = f"{label} at least {_ms(lower)} at {self.level}, over the {_ms(limit)} limit"
        elif verdict == "pass" and not self.too_few():
            assert upper is not None
            reason = f"{label} at most {_ms(upper)} at {self.level}"
        else:
            verdict = "inconclusive"
            reason = self.too_few() or self._undecided(metric, lower, upper, limit)
        return self.result(metric, limit, figures.value_ms, (lower, upper), verdict, reason)

    def _undecided(
        self, metric: PercentileName, lower: float | None, upper: float | None, limit: float
    ) -> str:
        if upper is None:
            needed = stats.min_samples(PERCENTILES[metric], self.confidence)
            return (
                f"{self.figures.requests} requests cannot bound {metric.upper()} from above at "
                f"{self.level}: {needed} needed"
            )
        low = "?" if lower is None else f"{lower:.1f}"
        return (
            f"{metric.upper()} between {low} and {_ms(upper)} at {self.level}: "
            f"the {_ms(limit)} limit is inside; run longer"
        )

    def all(self) -> list[ThresholdResult]:
        results = [self.requests(), self.error_rate()]
        results += [
            self.percentile(metric, limit) for metric, limit in self.limits.percentile_limits().items()
        ]
        return results


_NO_REQUESTS = "no requests were measured: nothing to judge, and an empty run never passes"


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
