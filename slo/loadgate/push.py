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
from slo.report.push import PushResult, push_registry

__all__ = ["JOB", "load_registry", "push_summary"]

JOB = "load-test"
_VERDICTS = ("pass", "fail", "inconclusive")
_QUANTILES = {"p50": "0.5", "p95": "0.95", "p99": "0.99"}


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
                if figures[f"{name}_ms"] is not None:
                    latency.add_metric([endpoint, quantile], figures[f"{name}_ms"] / 1000)
                for side in ("lower", "upper"):
                    value = figures[f"{name}_{side}_ms"]
                    if value is not None:
                        bound.add_metric([endpoint, quantile, side], value / 1000)
        yield from (latency, bound, requests, failures, ratio)


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
