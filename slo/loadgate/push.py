"""The load run's verdict and exact figures as metrics, pushed under their own job.

Job ``load-test`` (:data:`slo.conventions.LOAD_JOB`), not the probes' job: a Pushgateway PUT
replaces its whole group, so a load run pushed under ``synthetic-probes`` would erase the
probes' series (and the reverse). The families are built with :mod:`slo.report.families` and
pushed as the probe push is. Latencies are seconds here, as Prometheus expects, while
`summary.json` keeps milliseconds. Every value describes the last run; the Pushgateway keeps
it until the next one.
"""

from __future__ import annotations

import socket
from typing import Any

from slo.config import PushgatewaySettings
from slo.conventions import LOAD_JOB
from slo.loadgate.comparison import CHANGES
from slo.report.families import Family, Labels
from slo.report.push import PushResult, push_families

__all__ = ["load_families", "push_summary"]

_VERDICTS = ("pass", "fail", "inconclusive")
_QUANTILES = {"p50": "0.5", "p95": "0.95", "p99": "0.99"}
_FIRST_TOKEN_QUANTILES = {"ttft_p50": "0.5", "ttft_p95": "0.95", "ttft_p99": "0.99"}
_TOKEN_RATE_QUANTILES = {"tokens_per_second_p5": "0.05", "tokens_per_second_p50": "0.5"}


def _labels(names: tuple[str, ...], values: list[str]) -> Labels:
    return tuple(zip(names, values, strict=True))


def _gauges(*names: tuple[str, str]) -> list[Family]:
    """Empty gauge families, one per (name, help)."""
    return [Family(name, help_, "gauge") for name, help_ in names]


def _gauge(name: str, help_: str, value: float) -> Family:
    return Family(name, help_, "gauge", [((), float(value))])


def load_families(summary: dict[str, Any], finished: float) -> list[Family]:
    """One load run's summary as metric families, ready for one PUT."""
    verdict = Family(
        "synthetic_load_verdict",
        "1 for the verdict of the last load run (pass, fail or inconclusive), else 0",
        "gauge",
    )
    for name in _VERDICTS:
        verdict.series.append(((("verdict", name),), float(summary["verdict"] == name)))
    threshold = Family(
        "synthetic_load_threshold_verdict",
        "1 for each threshold's verdict in the last load run, else 0",
        "gauge",
    )
    for row in summary["thresholds"]:
        for name in _VERDICTS:
            threshold.series.append(
                (_labels(("threshold", "verdict"), [row["name"], name]), float(row["verdict"] == name))
            )
    families = [verdict, threshold, *_endpoints(summary), *_streams(summary)]
    if summary.get("baseline"):
        families += _baseline(summary["baseline"])
    return [
        *families,
        _gauge(
            "synthetic_load_duration_seconds",
            "Measured duration of the last load run (warm-up excluded)",
            summary["duration_s"],
        ),
        _gauge("synthetic_load_users", "Simulated users of the last load run", summary["users"]),
        _gauge(
            "synthetic_load_cpu_saturated",
            "1 if a load generator process ran out of CPU in the last load run",
            summary["cpu_saturated"],
        ),
        _gauge("synthetic_load_last_run_timestamp_seconds", "When the last load run finished", finished),
    ]


def _endpoints(summary: dict[str, Any]) -> list[Family]:
    latency, bound = _gauges(
        ("synthetic_load_latency_seconds", "Exact nearest-rank latency percentile of the last load run"),
        (
            "synthetic_load_latency_bound_seconds",
            "Distribution-free confidence bound on the latency percentile",
        ),
    )
    requests = Family("synthetic_load_requests_total", "Requests measured in the last load run", "counter")
    failures = Family("synthetic_load_failures_total", "Failed requests in the last load run", "counter")
    ratio = Family(
        "synthetic_load_error_ratio", "Failed over measured requests in the last load run", "gauge"
    )
    for endpoint, figures in summary["endpoints"].items():
        labels: Labels = (("endpoint", endpoint),)
        requests.series.append((labels, float(figures["requests"])))
        failures.series.append((labels, float(figures["failures"])))
        if figures["error_rate"] is not None:
            ratio.series.append((labels, float(figures["error_rate"])))
        for name, quantile in _QUANTILES.items():
            _add(latency, bound, [endpoint, quantile], figures, name, "_ms", 1000)
    return [latency, bound, requests, failures, ratio]


def _streams(summary: dict[str, Any]) -> list[Family]:
    """First-token times (seconds) and output rates of the endpoints that streamed."""
    first_token, first_token_bound, rate, rate_bound = _gauges(
        (
            "synthetic_load_time_to_first_token_seconds",
            "Exact nearest-rank percentile of the time to first token of streamed answers",
        ),
        (
            "synthetic_load_time_to_first_token_bound_seconds",
            "Distribution-free confidence bound on the time-to-first-token percentile",
        ),
        (
            "synthetic_load_output_tokens_per_second",
            "Exact nearest-rank percentile of the output tokens per second of streamed answers",
        ),
        (
            "synthetic_load_output_tokens_per_second_bound",
            "Distribution-free confidence bound on the output-tokens-per-second percentile",
        ),
    )
    for endpoint, figures in summary["endpoints"].items():
        stream = figures.get("stream")
        if not stream:
            continue
        for name, quantile in _FIRST_TOKEN_QUANTILES.items():
            _add(first_token, first_token_bound, [endpoint, quantile], stream, name, "_ms", 1000)
        for name, quantile in _TOKEN_RATE_QUANTILES.items():
            _add(rate, rate_bound, [endpoint, quantile], stream, name, "", 1)
    return [first_token, first_token_bound, rate, rate_bound]


def _baseline(comparison: dict[str, Any]) -> list[Family]:
    """The comparison with the baseline: each verdict, each ratio or difference and its interval."""
    verdict = Family(
        "synthetic_load_baseline_verdict",
        "1 for each comparison's verdict against the baseline run (regressed, improved, "
        "unchanged, inconclusive), else 0",
        "gauge",
    )
    families = {
        "ratio": (
            Family("synthetic_load_baseline_ratio", "This run's percentile over the baseline run's", "gauge"),
            Family(
                "synthetic_load_baseline_ratio_bound",
                "Confidence interval of the ratio to the baseline run (exact order-statistic bounds)",
                "gauge",
            ),
        ),
        "difference": (
            Family(
                "synthetic_load_baseline_error_ratio_difference",
                "This run's error ratio minus the baseline run's",
                "gauge",
            ),
            Family(
                "synthetic_load_baseline_error_ratio_difference_bound",
                "Confidence interval of the error ratio difference (Newcombe)",
                "gauge",
            ),
        ),
    }
    for row in comparison["comparisons"]:
        labels = [row["endpoint"], row["measure"]]
        for name in CHANGES:
            verdict.series.append(
                (_labels(("endpoint", "measure", "verdict"), [*labels, name]), float(row["verdict"] == name))
            )
        if row["change"] is None:
            continue
        value, bound = families[row["kind"]]
        value.series.append((_labels(("endpoint", "measure"), labels), float(row["change"])))
        for side in ("lower", "upper"):
            bound.series.append(
                (_labels(("endpoint", "measure", "bound"), [*labels, side]), float(row[side]))
            )
    return [verdict, *(family for pair in families.values() for family in pair)]


def _add(
    value: Family,
    bound: Family,
    labels: list[str],
    figures: dict[str, Any],
    name: str,
    unit: str,
    per_unit: float,
) -> None:
    """One percentile (``name``, e.g. ``ttft_p95``, keys ending in ``unit``) and its bounds."""
    if figures[f"{name}{unit}"] is not None:
        value.series.append((_labels(("endpoint", "quantile"), labels), figures[f"{name}{unit}"] / per_unit))
    for side in ("lower", "upper"):
        measured = figures[f"{name}_{side}{unit}"]
        if measured is not None:
            bound.series.append(
                (_labels(("endpoint", "quantile", "bound"), [*labels, side]), measured / per_unit)
            )


def push_summary(summary: dict[str, Any], settings: PushgatewaySettings, finished: float) -> PushResult:
    """Push under job ``load-test``, grouped by environment and runner; never raises."""
    grouping_key = {
        "environment": summary["environment"],
        "instance": settings.instance or socket.gethostname(),
    }
    return push_families(load_families(summary, finished), settings, LOAD_JOB, grouping_key)
