"""Exact response times inside Locust: recorded per process, merged on the master, written once.

Runs inside Locust only (it imports it, and with it gevent's monkey-patching): the locustfile
calls :func:`install`. In every process that runs users (the single process, or each worker)
each request after the warm-up goes into an exact histogram per endpoint (and a streamed
answer's time to first token and output tokens per second into two more, from the
:class:`~slo.loadgate.samples.StreamSample` its scenario puts in the request's context). Workers ship what
they recorded since their last report with Locust's own ``report_to_master`` event and the
master adds it up in ``worker_report``, so a distributed run measures exactly what a single
process would. The master (or single process) ends the run itself after the warm-up and the
measured duration, waits for every worker's last report, and writes a :class:`RunResults`
file for `slo load` to judge.

Options it adds to Locust (forwarded by the master to every worker):

``--slo-warmup SECONDS``  leave out requests finishing this early (and reset Locust's stats)
``--slo-duration SECONDS`` measure this long after the warm-up, then stop (instead of -t)
``--slo-results PATH``    where the master writes the results
"""

# Locust annotates only part of its API (event hooks and response helpers are untyped).
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import gevent
import psutil
from locust.env import Environment
from locust.event import Events
from locust.runners import WORKER_REPORT_INTERVAL, MasterRunner, Runner, WorkerRunner

from slo.loadgate.samples import (
    STREAM_CONTEXT_KEY,
    CpuUsage,
    EndpointRecord,
    ErrorRecord,
    LocustFigures,
    RunResults,
)

__all__ = ["REPORT_KEY", "install"]

#: The key of our data in Locust's worker reports.
REPORT_KEY = "slo_exact"
#: The final report after a stop comes within two of Locust's report intervals.
_FINAL_REPORT_WAIT = 2 * WORKER_REPORT_INTERVAL + 1.0


class _CpuClock:
    """CPU seconds this process spends from a starting point: the mean, not a noisy sample."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._cpu, self._wall = self._now()

    def _now(self) -> tuple[float, float]:
        times = self._process.cpu_times()
        return times.user + times.system, time.monotonic()

    def usage(self, name: str, locust_warned: bool) -> CpuUsage:
        cpu, wall = self._now()
        return CpuUsage(name, cpu - self._cpu, wall - self._wall, locust_warned)


class ExactRecorder:
    """The per-process state; one instance per Locust environment."""

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        self.endpoints: dict[str, EndpointRecord] = {}
        self.measuring = False
        self.started = self.measured_from = self.measured_to = 0.0
        self.cpu: _CpuClock | None = None
        self.worker_cpu: dict[str, CpuUsage] = {}
        #: Workers that reported, and those whose report after the stop (no users left) came.
        self.reporting: set[str] = set()
        self.drained: set[str] = set()
        self.warnings: list[str] = []
        self.stopping = False

    @property
    def runner(self) -> Runner:
        runner = self.environment.runner
        assert runner is not None, "the recorder is used only once Locust has a runner"
        return runner

    def option(self, name: str) -> Any:
        return getattr(self.environment.parsed_options, name, None)

    # --- every process ------------------------------------------------------------------------

    def on_test_start(self, environment: Environment, **_: Any) -> None:
        self.endpoints.clear()
        self.worker_cpu.clear()
        self.reporting.clear()
        self.drained.clear()
        self.warnings.clear()
        self.stopping = False
        self.started = time.time()
        warmup = float(self.option("slo_warmup") or 0.0)
        self.measuring = False
        gevent.spawn_later(warmup, self.begin_measuring, reset_stats=warmup > 0)
        duration = self.option("slo_duration")
        if duration and not isinstance(self.runner, WorkerRunner):
            gevent.spawn_later(warmup + float(duration), self.finish)

    def begin_measuring(self, reset_stats: bool) -> None:
        if reset_stats:
            # Locust's own statistics leave the warm-up out too, as with its --reset-stats.
            self.runner.stats.reset_all()
        self.measured_from = time.time()
        self.cpu = _CpuClock()
        self.measuring = True

    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float | None,
        exception: BaseException | None = None,
        context: dict[str, Any] | None = None,
        **_: Any,
    ) -> None:
        if not self.measuring:
            return
        key = f"{request_type} {name}"
        record = self.endpoints.get(key)
        if record is None:
            record = self.endpoints[key] = EndpointRecord(request_type, name)
        # Some clients give no time for a request that failed before it was sent: it still
        # counts, in the error rate, at 0 ms.
        # A streamed answer's first-token time and token rate come in its context.
        stream = context.get(STREAM_CONTEXT_KEY) if context else None
        record.record(response_time or 0.0, exception is not None, stream)

    # --- workers --------------------------------------------------------------------------------

    def on_report_to_master(self, client_id: str, data: dict[str, Any]) -> None:
        runner = self.runner
        cpu = self.cpu.usage(client_id, runner.cpu_warning_emitted) if self.cpu else None
        data[REPORT_KEY] = {
            "endpoints": [record.to_json() for record in self.endpoints.values()],
            "cpu": None if cpu is None else vars(cpu),
            "users": runner.user_count,
        }
        self.endpoints = {}

    # --- the master -----------------------------------------------------------------------------

    def on_worker_report(self, client_id: str, data: dict[str, Any]) -> None:
        report = data.get(REPORT_KEY)
        if report is None:
            return
        self.reporting.add(client_id)
        for item in report["endpoints"]:
            received = EndpointRecord.from_json(item)
            record = self.endpoints.setdefault(received.key, EndpointRecord(received.method, received.name))
            record.merge(received)
        if report["cpu"] is not None:
            self.worker_cpu[client_id] = CpuUsage(**report["cpu"])
        if self.stopping and report["users"] == 0:
            self.drained.add(client_id)

    def finish(self) -> None:
        """End the run: stop the users, collect the last measurements, quit Locust."""
        self.measured_to = time.time()
        runner = self.runner
        self.stopping = True
        if not isinstance(runner, MasterRunner):
            # A stop lets requests in flight finish (up to --stop-timeout): dropping them
            # would leave the slowest requests out of the sample.
            runner.stop()
            runner.quit()
            return
        # Locust's own end of a run (quit) waits only half a second for the workers' last
        # reports, less than a graceful stop can take. So: stop first, wait until every
        # worker has reported with no users left, then quit. A stopped worker is no longer
        # among the master's clients, so it is told to quit by name.
        workers = [worker.id for worker in runner.clients.all]
        runner.stop()
        deadline = time.monotonic() + _FINAL_REPORT_WAIT
        while time.monotonic() < deadline and not self.drained.issuperset(workers):
            gevent.sleep(0.1)
        self.warnings += [
            f"worker {worker} sent no final report: its last {WORKER_REPORT_INTERVAL:g} s "
            "of requests are missing"
            for worker in workers
            if worker not in self.drained
        ]
        for worker in workers:
            if worker not in runner.clients:
                runner.send_message("quit", client_id=worker)
        runner.quit()

    def on_quitting(self, environment: Environment, **_: Any) -> None:
        path = self.option("slo_results")
        if not path or isinstance(self.runner, WorkerRunner):
            return
        self.results().write(Path(path))

    def results(self) -> RunResults:
        runner = self.runner
        stats = runner.stats
        for entry in stats.entries.values():
            key = f"{entry.method} {entry.name}"
            if key in self.endpoints:
                self.endpoints[key].locust = _figures(entry)
        is_master = isinstance(runner, MasterRunner)
        cpu = (
            []
            if self.cpu is None
            else [self.cpu.usage("master" if is_master else "locust", runner.cpu_warning_emitted)]
        )
        cpu += [self.worker_cpu[worker] for worker in sorted(self.worker_cpu)]
        return RunResults(
            started=self.started,
            measured_from=self.measured_from or self.started,
            measured_to=self.measured_to or time.time(),
            users=int(self.option("num_users") or runner.user_count),
            workers=len(self.reporting),
            endpoints=self.endpoints,
            locust_total=_figures(stats.total),
            cpu=cpu,
            errors=[
                ErrorRecord(f"{error.method} {error.name}", str(error.error), error.occurrences)
                for error in stats.errors.values()
            ],
            warnings=self.warnings,
        )


def _figures(entry: Any) -> LocustFigures:
    def percentile(q: float) -> float | None:
        return float(entry.get_response_time_percentile(q)) if entry.num_requests else None

    return LocustFigures(
        requests=entry.num_requests,
        failures=entry.num_failures,
        p50_ms=percentile(0.5),
        p95_ms=percentile(0.95),
        p99_ms=percentile(0.99),
    )


def _add_options(parser: Any, **_: Any) -> None:
    # On the parser itself: only Locust's parser knows `include_in_web_ui`, its groups do not.
    parser.add_argument(
        "--slo-warmup",
        type=float,
        default=0.0,
        include_in_web_ui=False,
        help="seconds at the start left out of the exact statistics and Locust's",
    )
    parser.add_argument(
        "--slo-duration",
        type=float,
        default=None,
        include_in_web_ui=False,
        help="seconds to measure after the warm-up, then stop (use instead of --run-time)",
    )
    parser.add_argument(
        "--slo-results",
        default="",
        include_in_web_ui=False,
        help="file the master writes the exact results to, for `slo load`",
    )


def install(events: Events) -> None:
    """Add the options and hook exact recording into Locust's events (call it once per file)."""
    events.init_command_line_parser.add_listener(_add_options)

    def on_init(environment: Environment, **_: Any) -> None:
        recorder = ExactRecorder(environment)
        environment.events.test_start.add_listener(recorder.on_test_start)
        environment.events.request.add_listener(recorder.on_request)
        environment.events.report_to_master.add_listener(recorder.on_report_to_master)
        environment.events.worker_report.add_listener(recorder.on_worker_report)
        environment.events.quitting.add_listener(recorder.on_quitting)

    events.init.add_listener(on_init)
