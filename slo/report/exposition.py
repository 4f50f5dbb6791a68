"""The metric set pushed after each run (names and labels are a contract: see DESIGN.md).

Built from the state file's cumulative view, not only from this run, because a Pushgateway
PUT replaces the whole group: a run of one probe file must not erase the others' series.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from slo.report.state import ProbeState, TargetState

__all__ = ["DEFAULT_BUCKETS", "SuiteRun", "latency_buckets", "probe_registry"]

PROBE_LABELS = ["probe", "target", "slo", "kind"]
#: The last failure's message as a label value (alert annotations quote it): one line, capped.
MESSAGE_LABEL_CHARS = 200

#: Prometheus' defaults, which already include the seed's 2 s threshold.
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0)


def latency_buckets(thresholds: Iterable[float]) -> list[float]:
    """Default buckets plus every SLO threshold, so `le="<threshold>"` always exists exactly."""
    return sorted(set(DEFAULT_BUCKETS) | {float(t) for t in thresholds if t > 0})


@dataclass(frozen=True)
class SuiteRun:
    finished: float
    duration: float
    #: Probes of this run by outcome (passed, failed, skipped, error).
    outcomes: Mapping[Any, int]


class _ProbeCollector(Collector):
    def __init__(
        self, probes: Mapping[str, ProbeState], targets: Mapping[str, TargetState], suite: SuiteRun
    ) -> None:
        self.probes = probes
        self.targets = targets
        self.suite = suite

    def collect(self) -> Iterator[Metric]:
        success = GaugeMetricFamily(
            "synthetic_probe_success",
            "1 if the probe passed on its last run, else 0",
            labels=PROBE_LABELS,
        )
        duration = GaugeMetricFamily(
            "synthetic_probe_duration_seconds",
            "Call duration of the probe's last run",
            labels=PROBE_LABELS,
        )
        runs = CounterMetricFamily(
            "synthetic_probe_runs",
            "Probe runs (not skipped), cumulative across runs",
            labels=PROBE_LABELS,
        )
        failures = CounterMetricFamily(
            "synthetic_probe_failures", "Failed probe runs, cumulative", labels=PROBE_LABELS
        )
        retries = CounterMetricFamily(
            "synthetic_probe_retries",
            "Failed attempts that were rerun, cumulative",
            labels=PROBE_LABELS,
        )
        latency = HistogramMetricFamily(
            "synthetic_probe_latency_seconds",
            "Latency of every probe request, cumulative",
            labels=PROBE_LABELS,
        )
        phase = GaugeMetricFamily(
            "synthetic_probe_http_phase_seconds",
            "Phases of the probe's last request",
            labels=[*PROBE_LABELS, "phase"],
        )
        last_failure = GaugeMetricFamily(
            "synthetic_probe_last_failure_timestamp_seconds",
            "When the probe last failed, with the reason and message of that failure",
            labels=[*PROBE_LABELS, "reason", "message"],
        )
        for name, state in sorted(self.probes.items()):
            if not state.runs:
                continue  # only a reading kept for the next run (a skipped budget probe)
            labels = [name, state.target, state.slo, state.kind]
            if state.last_success is not None:
                success.add_metric(labels, state.last_success)
            if state.last_duration is not None:
                duration.add_metric(labels, state.last_duration)
            runs.add_metric(labels, state.runs)
            failures.add_metric(labels, state.failures)
            retries.add_metric(labels, state.retries)
            if state.bounds:
                cumulative = [
                    (_le(bound), count)
                    for bound, count in zip(state.bounds, state.bucket_counts, strict=True)
                ]
                latency.add_metric(
                    labels,
                    [*cumulative, ("+Inf", state.latency_count)],
                    sum_value=state.latency_sum,
                )
            for phase_name, seconds in sorted(state.last_phases.items()):
                phase.add_metric([*labels, phase_name], seconds)
            if state.last_failure_time is not None and state.last_failure_reason:
                message = state.last_failure_message.splitlines()[0] if state.last_failure_message else ""
                last_failure.add_metric(
                    [*labels, state.last_failure_reason, message[:MESSAGE_LABEL_CHARS]],
                    state.last_failure_time,
                )
        yield from (success, duration, runs, failures, retries, latency, phase, last_failure)
        yield from self._target_runs()

        yield GaugeMetricFamily(
            "synthetic_suite_last_run_timestamp_seconds",
            "When the last run finished",
            value=self.suite.finished,
        )
        yield GaugeMetricFamily(
            "synthetic_suite_duration_seconds",
            "Wall time of the last run",
            value=self.suite.duration,
        )
        outcomes = GaugeMetricFamily(
            "synthetic_suite_probes", "Probes of the last run by outcome", labels=["outcome"]
        )
        for outcome, count in sorted(self.suite.outcomes.items()):
            outcomes.add_metric([outcome], count)
        yield outcomes

    def _target_runs(self) -> Iterator[Metric]:
        runs = CounterMetricFamily(
            "synthetic_target_runs",
            "Runs of the target's availability probes (one event per run), cumulative",
            labels=["target", "slo"],
        )
        failed = CounterMetricFamily(
            "synthetic_target_failed_runs",
            "Runs in which any availability probe of the target failed, cumulative",
            labels=["target", "slo"],
        )
        for _, state in sorted(self.targets.items()):
            runs.add_metric([state.target, state.slo], state.runs)
            failed.add_metric([state.target, state.slo], state.failed_runs)
        yield from (runs, failed)


def _le(bound: float) -> str:
    # prometheus_client spells bounds as floats ("2.0"); keep that so rules match one spelling.
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def probe_registry(
    probes: Mapping[str, ProbeState], suite: SuiteRun, targets: Mapping[str, TargetState] | None = None
) -> CollectorRegistry:
    """A fresh registry (never the global one) holding the run's metric set."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ProbeCollector(probes, targets or {}, suite))
    return registry
