"""Controller-side reporting: fold results, update the state file, push once, summarise.

A plugin registered (by :mod:`slo.plugin`, at a run's first probe report) only in the process
that sees every report (never in an xdist worker), so one run is one PUT however many workers
ran it. The plugin hands it each probe report with its decoded evidence (:meth:`Reporter.add`);
its own hooks finish the run.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from slo.config import Config
from slo.config.objectives import HistogramSLI, ProbeLatencySLI, RunSLI
from slo.conventions import PROBE_RESULTS
from slo.evidence import Evidence
from slo.options import RunOptions
from slo.report.exposition import RunnerBeat, SuiteRun, latency_buckets, probe_families, runner_families
from slo.report.genai import spend_warnings
from slo.report.maintenance import maintenance_families, windows_at_start
from slo.report.push import PushResult, push_families
from slo.report.results import ProbeResult, ResultCollector
from slo.report.state import (
    LockedGroup,
    ProbeState,
    StateError,
    StateFile,
    TargetState,
    runner_key,
    target_key,
)
from slo.report.values import ValueFamilies, value_families
from slo.units import format_ms, format_utc

__all__ = ["RUNNER_BEAT", "Reporter", "push_grouping"]

#: Set by the warm runner (`slo run`) in the runs it starts: its liveness, pushed with the run.
RUNNER_BEAT = pytest.StashKey[RunnerBeat]()
#: Beyond this many probes the summary lists only the failures, the degraded and the slowest.
SUMMARY_ALL_UP_TO = 25


def _thresholds(config: Config) -> list[float]:
    thresholds = [config.probes.latency.threshold]
    thresholds += [
        slo.sli.threshold for slo in config.slos if isinstance(slo.sli, ProbeLatencySLI | HistogramSLI)
    ]
    thresholds += [check.latency for check in config.checks if check.latency]
    return thresholds


def _narrowed_slis(config: Config) -> dict[str, RunSLI]:
    """`probes` and `degraded` SLOs whose `probe` patterns pick some of a target's probes:
    each gets run counters of its own, since "a run with a failed (or degraded) probe"
    depends on which probes count."""
    return {slo.name: slo.sli for slo in config.slos if isinstance(slo.sli, RunSLI) and slo.sli.narrowed}


def push_grouping(options: RunOptions) -> dict[str, str]:
    """The Pushgateway grouping key of a run, besides the job: environment, instance, location."""
    return {
        "environment": options.env_name,
        "instance": options.push.instance or "",
        "location": options.push.location or options.push.instance or "",
    }


class Reporter:
    def __init__(
        self, config: pytest.Config, slo_config: Config, options: RunOptions, selected: set[str] | None = None
    ) -> None:
        self.config = config
        self.slo_config = slo_config
        self.options = options
        self.collector = ResultCollector()
        self.values = ValueFamilies()
        self.started = time.time()
        self.push_result: PushResult | None = None
        self.problems: list[str] = []
        #: Shown like problems, but never fail a run that requires its push.
        self.warnings: list[str] = []
        #: Node ids this run selected (after deselection, from every xdist worker).
        self.selected = set() if selected is None else selected
        #: Probes whose last results this run dropped: they are no longer in the suite.
        self.gone: list[str] = []
        #: Read once, at the run's start (its first probe report): a window that opens while
        #: the run goes on applies from the next run, so one run is never counted in part.
        reads = options.push if options.push_enabled else None
        self.windows = windows_at_start(slo_config, reads, self.started)
        if self.windows.problem:
            self.warnings.append(self.windows.problem)
        environment = slo_config.environment
        self.targets = [*environment.targets, *environment.redis]

    def add(self, report: pytest.TestReport, evidence: Evidence | None) -> None:
        """One report of a probe, with the evidence it carried (decoded once, by the plugin)."""
        self.collector.add(report, evidence)
        self.values.add(report, evidence)

    def has_result(self, nodeid: str) -> bool:
        """Whether a report of the probe `nodeid` was added in this run."""
        return nodeid in self.collector.results

    def add_collection_error(self, report: pytest.CollectReport) -> None:
        self.collector.add_collection_error(report)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.config.option.collectonly:
            return
        self._write_run_file()
        if not self.options.push_enabled:
            return
        finished = time.time()
        suite = SuiteRun(finished, finished - self.started, self.collector.outcome_counts())
        state = StateFile(self.options.state_file)
        buckets = latency_buckets(_thresholds(self.slo_config))
        try:
            with state.locked(runner_key(self.options)) as group:
                _fold_run(
                    group,
                    self.collector.results.values(),
                    buckets,
                    finished,
                    _narrowed_slis(self.slo_config),
                    self.windows.paused(self.targets),
                )
                self.gone = _drop_gone(group.probes, self.selected, self.config.rootpath)
                values = self.values.fold(group.document, group.key, group.probes, finished, buckets)
                self.warnings += spend_warnings(self.slo_config, values, finished)
                # Saved before the push, pushed under the lock: what the Pushgateway holds is
                # never ahead of the file, and overlapping runs push their counters in order.
                group.save()
                families = [
                    *probe_families(group.probes, suite, group.targets),
                    *value_families(values),
                    *runner_families(self.config.stash.get(RUNNER_BEAT, None)),
                    *maintenance_families(self.targets, self.windows),
                ]
                self.push_result = push_families(
                    families, self.options.push, self.options.push.job, push_grouping(self.options)
                )
        except StateError as exc:
            self.problems.append(str(exc))
        if state.warning:
            self.problems.append(state.warning)
        failed_push = self.push_result is not None and not self.push_result.ok
        if self.options.push.required and (failed_push or self.problems):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _write_run_file(self) -> None:
        """The run's results with their evidence (`slo.report.runfile`), beside its JUnit XML."""
        from slo.compat import junit_path
        from slo.report.runfile import run_metadata, write_run_file

        junit = junit_path(self.config)
        path = Path(junit).with_name(PROBE_RESULTS.name) if junit else self.config.rootpath / PROBE_RESULTS
        run = {
            **run_metadata(self.options, self.config.rootpath),
            "duration_s": round(time.time() - self.started, 3),
            "counts": self.collector.outcome_counts(),
            "maintenance": [dataclasses.asdict(window) for window in self.windows.open],
        }
        try:
            write_run_file(path, self.collector.results.values(), self.values.by_probe, run)
        except OSError as exc:
            self.warnings.append(f"cannot write {path}: {exc.strerror or exc}")
        except (TypeError, ValueError) as exc:  # never in the way of the push that follows
            self.warnings.append(f"cannot write {path}: {exc}")

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        results = list(self.collector.results.values())
        if not results:
            return
        write = terminalreporter.write_line
        terminalreporter.section(f"slo probes ({self.options.env_name})", sep="-")
        shown = results
        if len(results) > SUMMARY_ALL_UP_TO:
            flagged = [r for r in results if r.outcome in ("failed", "error", "degraded")]
            slowest = sorted((r for r in results if r.outcome == "passed"), key=lambda r: -r.duration)
            shown = flagged + slowest[: max(0, 10 - len(flagged))]
            write(f"{len(results)} probes; showing {len(shown)} (failures, degraded and the slowest)")
        for result in shown:
            write(_summary_line(result))
        for target in sorted(self.targets):
            window = self.windows.covering(target)
            if window is not None:
                until = format_utc(window.end)
                write(
                    f"MAINTENANCE [{target}] {window.source} window {window.name} until {until}: no SLI event"
                )
        if self.gone:
            write(f"no longer in the suite, last results dropped: {', '.join(self.gone)}")
        if self.push_result is not None:
            if self.push_result.ok:
                took = format_ms(self.push_result.elapsed)
                write(f"pushed {len(results)} probe results to {self.push_result.url} in {took}")
            else:
                terminalreporter.write_line(
                    f"WARNING: push to {self.push_result.url} failed: {self.push_result.error}; "
                    "the counters are kept and the next push carries these events",
                    yellow=True,
                )
        for problem in [*self.problems, *self.warnings]:
            terminalreporter.write_line(f"WARNING: {problem}", yellow=True)


def _drop_gone(probes: Mapping[str, ProbeState], selected: set[str], rootpath: Path) -> list[str]:
    """Drop the last results of the probes that left the suite; their names, sorted.

    A probe left when its file is gone, or when this run selected probes of its file but not
    it (a deleted test, a check removed from the config, a probe moved to another shard).
    A file this run did not select at all (``pytest probes/test_one.py``, a collection error)
    tells nothing about its probes: they keep their last results.
    """
    files = {node_id.partition("::")[0] for node_id in selected}
    gone = []
    for name, state in probes.items():
        if name in selected or not state.has_last_result:
            continue
        file = name.partition("::")[0]
        if file in files or not (rootpath / file).exists():
            state.drop_last_result()
            gone.append(name)
    return sorted(gone)


def _summary_line(result: ProbeResult) -> str:
    latencies = sorted(result.latencies)
    timing = ""
    if latencies:
        timing = (
            f"{len(latencies)} req, max {format_ms(latencies[-1])}"
            if len(latencies) > 1
            else format_ms(latencies[0])
        )
    target = f"[{result.target}]" if result.target else ""
    retries = f" after {result.retries} retr{'y' if result.retries == 1 else 'ies'}" if result.retries else ""
    line = f"{result.outcome.upper():8} {target:10} {result.probe}  {timing}{retries}"
    if result.note and result.outcome == "passed":
        line += f"  {result.note}"
    if result.message and result.outcome in ("failed", "error", "degraded"):
        line += f"\n        {result.message}"
    return line


def _fold_run(
    group: LockedGroup,
    results: Iterable[ProbeResult],
    bounds: list[float],
    now: float,
    narrowed: Mapping[str, RunSLI],
    paused: frozenset[str] = frozenset(),
) -> None:
    """Add one run's results to the cumulative per-probe and per-target state. A run of a
    target in `paused` (a maintenance window covers it) is no SLI event: its probes report,
    but neither its run counters nor its latency histograms advance."""
    counted = []
    for result in results:
        if result.reading:
            # Kept even when the probe skipped ("no previous reading"): the next run needs it.
            state = group.probes.setdefault(result.probe, ProbeState(last_run=now))
            state.reading, state.reading_time = dict(result.reading), now
        if not result.counted:
            continue
        event = result.target not in paused
        if event:
            counted.append(result)
        state = group.probes.setdefault(result.probe, ProbeState())
        state.target, state.slo, state.kind = result.target, result.slo, result.kind
        state.alert = result.alert
        state.runs += 1
        state.retries += result.retries
        state.last_run = now
        state.last_success = 1.0 if result.succeeded else 0.0
        state.last_degraded = 1.0 if result.degraded else 0.0
        state.last_duration = result.duration
        state.last_phases = dict(result.phases)
        if event:
            state.observe(result.latencies, bounds)
        if not result.succeeded:
            state.failures += 1
            state.last_failure_reason = result.reason or "error"
            state.last_failure_time = now
            state.last_failure_message = result.message
    _count_target_runs(group.targets, counted, now, narrowed)


def _count_target_runs(
    targets: dict[str, TargetState],
    results: list[ProbeResult],
    now: float,
    narrowed: Mapping[str, RunSLI],
) -> None:
    """One event per target that ran availability probes: bad when any of them failed, and
    degraded when none failed and any was degraded (a failed run is not also degraded).

    However many probes a target has, one bad run is one bad event, so the SLO's minimum
    bad events mean that many bad runs, not that many failed probes of one run.
    """
    failed: dict[tuple[str, str], bool] = {}
    degraded: dict[tuple[str, str], bool] = {}
    for result in results:
        if result.kind != "availability" or not result.target:
            continue
        keys = [(result.target, "")]
        keys += [
            (result.target, name)
            for name, sli in narrowed.items()
            if sli.target == result.target and sli.selects(result.probe)
        ]
        for key in keys:
            failed[key] = failed.get(key, False) or not result.succeeded
            degraded[key] = degraded.get(key, False) or result.degraded
    for (target, slo), bad in failed.items():
        state = targets.setdefault(target_key(target, slo), TargetState(target=target, slo=slo))
        state.runs += 1
        state.failed_runs += bad
        state.degraded_runs += degraded[target, slo] and not bad
        state.last_run = now
