"""The load run's verdict and exact figures as metrics, pushed under their own job.

Job ``load-test``, not the probes' job: a Pushgateway PUT replaces its whole group, so a load
run pushed under ``synthetic-probes`` would erase the probes' series (and the reverse).
Latencies are seconds here, as Prometheus expects, while `summary.json` keeps milliseconds.
Every value describes the last run; the Pushgateway keeps it until the next one.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from slo.config import PushgatewaySettings
from slo.loadgate.comparison import CHANGES
from slo.report.push import PushResult, push_registry

__all__ = ["JOB", "load_registry", "push_summary"]

JOB = "load-test"
_VERDICTS = ("pass", "fail", "inconclusive")
_QUANTILES = {"p50": "0.5", "p95": "0.95", "p99": "0.99"}
_FIRST_TOKEN_QUANTILES = {"ttft_p50": "0.5", "ttft_p95": "0.95", "ttft_p99": "0.99"}
_TOKEN_RATE_QUANTILES = {"tokens_per_second_p5": "0.05", "tokens_per_second_p50": "0.5"}


class _LoadCollector(Collector):
    def __init__(self, summary: dict[str, Any], finished: float) -> None:
        self.summary = summary
        self.finished = finished

    def collect(self) -> Iterator[Metric]:
        verdict = GaugeMetricFamily(
            "synthetic_load_verdict",
            "1 for the verdict of the last load run (pass, fail or inconclusive), else 0",
            labels=["verdict"],
        )
        for name in _VERDICTS:
            verdict.add_metric([name], float(self.summary["verdict"] == name))
        yield verdict

        threshold = GaugeMetricFamily(
            "synthetic_load_threshold_verdict",
            "1 for each threshold's verdict in the last load run, else 0",
            labels=["threshold", "verdict"],
        )
        for row in self.summary["thresholds"]:
            for name in _VERDICTS:
                threshold.add_metric([row["name"], name], float(row["verdict"] == name))
        yield threshold
        yield from self._endpoints()
        if self.summary.get("baseline"):
            yield from self._baseline(self.summary["baseline"])

        yield GaugeMetricFamily(
            "synthetic_load_duration_seconds",
            "Measured duration of the last load run (warm-up excluded)",
            value=self.summary["duration_s"],
        )
        yield GaugeMetricFamily(
            "synthetic_load_users", "Simulated users of the last load run", value=self.summary["users"]
        )
        yield GaugeMetricFamily(
            "synthetic_load_cpu_saturated",
            "1 if a load generator process ran out of CPU in the last load run",
            value=float(self.summary["cpu_saturated"]),
        )
        yield GaugeMetricFamily(
            "synthetic_load_last_run_timestamp_seconds",
            "When the last load run finished",
            value=self.finished,
        )

    def _endpoints(self) -> Iterator[Metric]:
        latency = GaugeMetricFamily(
            "synthetic_load_latency_seconds",
            "Exact nearest-rank latency percentile of the last load run",
            labels=["endpoint", "quantile"],
        )
        bound = GaugeMetricFamily(
            "synthetic_load_latency_bound_seconds",
            "Distribution-free confidence bound on the latency percentile",
            labels=["endpoint", "quantile", "bound"],
        )
        requests = CounterMetricFamily(
            "synthetic_load_requests", "Requests measured in the last load run", labels=["endpoint"]
        )
        failures = CounterMetricFamily(
            "synthetic_load_failures", "Failed requests in the last load run", labels=["endpoint"]
        )
        ratio = GaugeMetricFamily(
            "synthetic_load_error_ratio",
            "Failed over measured requests in the last load run",
            labels=["endpoint"],
        )
        for endpoint, figures in self.summary["endpoints"].items():
            requests.add_metric([endpoint], figures["requests"])
            failures.add_metric([endpoint], figures["failures"])
            if figures["error_rate"] is not None:
                ratio.add_metric([endpoint], figures["error_rate"])
            for name, quantile in _QUANTILES.items():
                _add(latency, bound, [endpoint, quantile], figures, name, "_ms", 1000)
        yield from (latency, bound, requests, failures, ratio)
        yield from self._streams()

    def _streams(self) -> Iterator[Metric]:
        """First-token times (seconds) and output rates of the endpoints that streamed."""
        first_token = GaugeMetricFamily(
            "synthetic_load_time_to_first_token_seconds",
            "Exact nearest-rank percentile of the time to first token of streamed answers",
            labels=["endpoint", "quantile"],
        )
        first_token_bound = GaugeMetricFamily(
            "synthetic_load_time_to_first_token_bound_seconds",
            "Distribution-free confidence bound on the time-to-first-token percentile",
            labels=["endpoint", "quantile", "bound"],
        )
        rate = GaugeMetricFamily(
            "synthetic_load_output_tokens_per_second",
            "Exact nearest-rank percentile of the output tokens per second of streamed answers",
            labels=["endpoint", "quantile"],
        )
        rate_bound = GaugeMetricFamily(
            "synthetic_load_output_tokens_per_second_bound",
            "Distribution-free confidence bound on the output-tokens-per-second percentile",
            labels=["endpoint", "quantile", "bound"],
        )
        for endpoint, figures in self.summary["endpoints"].items():
            stream = figures.get("stream")
            if not stream:
                continue
            for name, quantile in _FIRST_TOKEN_QUANTILES.items():
                _add(first_token, first_token_bound, [endpoint, quantile], stream, name, "_ms", 1000)
            for name, quantile in _TOKEN_RATE_QUANTILES.items():
                _add(rate, rate_bound, [endpoint, quantile], stream, name, "", 1)
        yield from (first_token, first_token_bound, rate, rate_bound)

    def _baseline(self, comparison: dict[str, Any]) -> Iterator[Metric]:
        """The comparison with the baseline: each verdict, each ratio or difference and its interval."""
        verdict = GaugeMetricFamily(
            "synthetic_load_baseline_verdict",
            "1 for each comparison's verdict against the baseline run (regressed, improved, "
            "unchanged, inconclusive), else 0",
            labels=["endpoint", "measure", "verdict"],
        )
        families = {
            "ratio": (
                GaugeMetricFamily(
                    "synthetic_load_baseline_ratio",
                    "This run's percentile over the baseline run's",
                    labels=["endpoint", "measure"],
                ),
                GaugeMetricFamily(
                    "synthetic_load_baseline_ratio_bound",
                    "Confidence interval of the ratio to the baseline run (exact order-statistic bounds)",
                    labels=["endpoint", "measure", "bound"],
                ),
            ),
            "difference": (
                GaugeMetricFamily(
                    "synthetic_load_baseline_error_ratio_difference",
                    "This run's error ratio minus the baseline run's",
                    labels=["endpoint", "measure"],
                ),
                GaugeMetricFamily(
                    "synthetic_load_baseline_error_ratio_difference_bound",
                    "Confidence interval of the error ratio difference (Newcombe)",
                    labels=["endpoint", "measure", "bound"],
                ),
            ),
        }
        for row in comparison["comparisons"]:
            labels = [row["endpoint"], row["measure"]]
            for name in CHANGES:
                verdict.add_metric([*labels, name], float(row["verdict"] == name))
            if row["change"] is None:
                continue
            value, bound = families[row["kind"]]
            value.add_metric(labels, row["change"])
            for side in ("lower", "upper"):
                bound.add_metric([*labels, side], row[side])
        yield verdict
        for value, bound in families.values():
            yield from (value, bound)


def _add(
    value: GaugeMetricFamily,
    bound: GaugeMetricFamily,
    labels: list[str],
    figures: dict[str, Any],
    name: str,
    unit: str,
    per_unit: float,
) -> None:
    """One percentile (``name``, e.g. ``ttft_p95``, keys ending in ``unit``) and its bounds."""
    if figures[f"{name}{unit}"] is not None:
        value.add_metric(labels, figures[f"{name}{unit}"] / per_unit)
    for side in ("lower", "upper"):
        measured = figures[f"{name}_{side}{unit}"]
        if measured is not None:
            bound.add_metric([*labels, side], measured / per_unit)


def load_registry(summary: dict[str, Any], finished: float) -> CollectorRegistry:
    """A registry holding one load run's summary, ready for one PUT."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(_LoadCollector(summary, finished))
    return registry


def push_summary(summary: dict[str, Any], settings: PushgatewaySettings, finished: float) -> PushResult:
    """Push under job ``load-test``, grouped by environment and runner; never raises."""
    grouping_key = {
        "environment": summary["environment"],
        "instance": settings.instance or socket.gethostname(),
    }
    return push_registry(load_registry(summary, finished), settings, JOB, grouping_key)
