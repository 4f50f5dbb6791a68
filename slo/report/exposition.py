"""The metric set pushed after each run (names and labels are a contract: see DESIGN.md).

Built from the state file's cumulative view, not only from this run, because a Pushgateway
PUT replaces the whole group: a run of one probe file must not erase the others' series.
Built in one pass over the probes as plain families (:mod:`slo.report.families`), which the
push encodes directly: no prometheus_client object per sample.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from slo import metric_names as m
from slo.report.families import Family, Histogram, Labels
from slo.report.state import ProbeState, TargetState

__all__ = [
    "DEFAULT_BUCKETS",
    "RunnerBeat",
    "SuiteRun",
    "latency_buckets",
    "probe_families",
    "runner_families",
]

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


def probe_families(
    probes: Mapping[str, ProbeState], suite: SuiteRun, targets: Mapping[str, TargetState] | None = None
) -> list[Family]:
    """Every family of the run's metric set, probes sorted by name."""
    success = Family(m.PROBE_SUCCESS, "1 if the probe passed on its last run, else 0", "gauge")
    degraded = Family(m.PROBE_DEGRADED, "1 if the probe's last run worked but was degraded, else 0", "gauge")
    duration = Family(m.PROBE_DURATION, "Call duration of the probe's last run", "gauge")
    runs = Family(m.PROBE_RUNS, "Probe runs (not skipped), cumulative across runs", "counter")
    failures = Family(m.PROBE_FAILURES, "Failed probe runs, cumulative", "counter")
    retries = Family(m.PROBE_RETRIES, "Failed attempts that were rerun, cumulative", "counter")
    latency = Family(m.PROBE_LATENCY, "Latency of every probe request, cumulative", "histogram")
    phase = Family(m.PROBE_HTTP_PHASE, "Phases of the probe's last request", "gauge")
    last_failure = Family(
        m.PROBE_LAST_FAILURE,
        "When the probe last failed, with the reason and message of that failure",
        "gauge",
    )
    for name, state in sorted(probes.items()):
        if not state.runs:
            continue  # only a reading kept for the next run (a skipped budget probe)
        labels: Labels = (("kind", state.kind), ("probe", name), ("slo", state.slo), ("target", state.target))
        if state.alert:
            labels = ((m.ALERT_LABEL, state.alert), *labels)
        if state.last_success is not None:
            success.series.append((labels, state.last_success))
            degraded.series.append((labels, state.last_degraded or 0.0))
        if state.last_duration is not None:
            duration.series.append((labels, state.last_duration))
        runs.series.append((labels, state.runs))
        failures.series.append((labels, state.failures))
        retries.series.append((labels, state.retries))
        if state.bounds:
            histogram = Histogram(state.bounds, state.bucket_counts, state.latency_count, state.latency_sum)
            latency.series.append((labels, histogram))
        for phase_name, seconds in sorted(state.last_phases.items()):
            phase.series.append(((*labels, ("phase", phase_name)), seconds))
        if state.last_failure_time is not None and state.last_failure_reason:
            message = state.last_failure_message.splitlines()[0] if state.last_failure_message else ""
            failure = (("reason", state.last_failure_reason), ("message", message[:MESSAGE_LABEL_CHARS]))
            last_failure.series.append(((*labels, *failure), state.last_failure_time))
    target_runs = Family(
        m.TARGET_RUNS,
        "Runs of the target's availability probes (one event per run), cumulative",
        "counter",
    )
    target_failed = Family(
        m.TARGET_FAILED_RUNS,
        "Runs in which any availability probe of the target failed, cumulative",
        "counter",
    )
    target_degraded = Family(
        m.TARGET_DEGRADED_RUNS,
        "Runs in which no availability probe of the target failed and any was degraded, cumulative",
        "counter",
    )
    for _, target in sorted((targets or {}).items()):
        target_labels: Labels = (("slo", target.slo), ("target", target.target))
        target_runs.series.append((target_labels, target.runs))
        target_failed.series.append((target_labels, target.failed_runs))
        target_degraded.series.append((target_labels, target.degraded_runs))
    outcomes = Family(m.SUITE_PROBES, "Probes of the last run by outcome", "gauge")
    outcomes.series.extend(
        ((("outcome", str(outcome)),), count) for outcome, count in sorted(suite.outcomes.items())
    )
    return [
        success,
        degraded,
        duration,
        runs,
        failures,
        retries,
        latency,
        phase,
        last_failure,
        target_runs,
        target_failed,
        target_degraded,
        Family(
            m.SUITE_LAST_RUN,
            "When the last run finished",
            "gauge",
            [((), suite.finished)],
        ),
        Family(m.SUITE_DURATION, "Wall time of the last run", "gauge", [((), suite.duration)]),
        outcomes,
    ]


@dataclass(frozen=True)
class RunnerBeat:
    """The warm runner's liveness (`slo run`), pushed with every run it starts."""

    #: When the runner last ticked (the tick that started this run), epoch seconds.
    heartbeat: float
    #: Ticks skipped since the runner started because the previous run was still going.
    skipped_ticks: int


def runner_families(beat: RunnerBeat | None) -> list[Family]:
    """The runner's families; none for a run that no warm runner started (`pytest probes/`)."""
    if beat is None:
        return []
    return [
        Family(m.RUNNER_HEARTBEAT, "When the warm runner last ticked", "gauge", [((), beat.heartbeat)]),
        Family(
            m.RUNNER_SKIPPED_TICKS,
            "Ticks the warm runner skipped because the previous run was still going",
            "counter",
            [((), float(beat.skipped_ticks))],
        ),
    ]
