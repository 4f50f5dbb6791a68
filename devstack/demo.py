"""`make demo`: the whole loop on one machine, in about ten seconds.

Starts the reference stack and a real Pushgateway, runs ``pytest probes/`` against them, shows
what was pushed, injects a fault, shows that the probes caught it and that the cumulative
counters moved, then stops everything it started::

    python -m devstack.demo                  # the tour; exit 0 when everything behaved as expected
    python -m devstack.demo --keep-running   # then leave the stack and Pushgateway up until Ctrl-C

It runs the probes of a probe project: ``probes/`` and ``monitoring.yaml`` in the working
directory (the checkout, for ``make demo``) or in ``--project DIR``, so it works the same
from an installed package.

Exit status: 0 when the healthy run passed and the injected fault was caught, 1 otherwise
(with a line saying what went wrong), 4 when the directory is not a probe project, 130 on
Ctrl-C, 143 on SIGTERM. The demo's counters live
in a temporary state file, so it never touches the counters of a real runner on this machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devstack.daemons import DaemonError, Pushgateway
from devstack.refstack.process import ReferenceStack, ReferenceStackError, ServiceName
from slo import metric_names
from slo.cliargs import ArgumentParser
from slo.conventions import CONFIG_FILE, JOB
from slo.junit import JunitError, read_cases
from slo.tables import table

__all__ = [
    "ProbeRun",
    "ProbeSeries",
    "Pushed",
    "fault_problems",
    "healthy_problems",
    "main",
    "parse_pushed",
]

# Relative to the project root, where the probe runs start: commands shown stay short.
DEFAULT_REPORTS = Path("reports", "demo")
INSTANCE = "demo"

# A fault a shallow liveness check misses: the gateway still answers 200, with a truncated body.
FAULT_SERVICE: ServiceName = "gateway"
FAULT: dict[str, Any] = {"malformed": True}
FAULT_STORY = "the LLM gateway answers 200 with truncated JSON"

_PROBE_SAMPLES = {
    metric_names.PROBE_SUCCESS: "success",
    metric_names.PROBE_RUNS: "runs",
    metric_names.PROBE_FAILURES: "failures",
}
_MESSAGE_WIDTH = 110


def say(text: str = "") -> None:
    # Flushed at once: the probe runs write to the same terminal from a child process.
    print(text, flush=True)


def heading(title: str) -> None:
    say(f"\n=== {title} ===")


@dataclass(frozen=True)
class ProbeSeries:
    """One probe's pushed series: last-run success and the cumulative counters."""

    target: str
    success: float | None
    runs: float
    failures: float


@dataclass(frozen=True)
class Pushed:
    """What the Pushgateway holds for the demo's grouping key."""

    probes: dict[str, ProbeSeries]
    outcomes: dict[str, int]

    @property
    def failing(self) -> list[str]:
        return [name for name, series in self.probes.items() if series.success == 0]


def parse_pushed(text: str) -> Pushed:
    """The demo's probe series from a Pushgateway's ``/metrics`` exposition."""
    values: dict[str, dict[str, float]] = {}
    targets: dict[str, str] = {}
    outcomes: dict[str, int] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if labels.get("job") != JOB or labels.get("instance") != INSTANCE:
                continue
            if sample.name == metric_names.SUITE_PROBES:
                outcomes[labels["outcome"]] = int(sample.value)
            elif sample.name in _PROBE_SAMPLES:
                targets[labels["probe"]] = labels.get("target", "")
                values.setdefault(labels["probe"], {})[_PROBE_SAMPLES[sample.name]] = sample.value
    probes = {
        probe: ProbeSeries(
            targets[probe], fields.get("success"), fields.get("runs", 0), fields.get("failures", 0)
        )
        for probe, fields in sorted(values.items())
    }
    return Pushed(probes, outcomes)


def format_pushed(pushed: Pushed) -> str:
    """A compact table of success and counters per probe, failing probes marked."""
    rows = [["probe", "target", "success", "runs", "failures", ""]]
    for probe, series in pushed.probes.items():
        success = "-" if series.success is None else f"{series.success:g}"
        mark = "<- caught" if series.success == 0 else ""
        name = probe.removeprefix("probes/")
        rows.append([name, series.target or "-", success, f"{series.runs:g}", f"{series.failures:g}", mark])
    lines = table(rows, right={2, 3, 4})
    outcomes = ", ".join(f"{name} {count}" for name, count in sorted(pushed.outcomes.items()))
    lines.append(f"{metric_names.SUITE_PROBES} (this run): {outcomes or 'none'}")
    return "\n".join(lines)


@dataclass(frozen=True)
class ProbeRun:
    """One ``pytest probes/`` run: its exit code and the failures its JUnit file lists."""

    exit_code: int
    failures: list[tuple[str, str]]
    junit: Path


def junit_failures(path: Path) -> list[tuple[str, str]]:
    """(test name, first line of the message) for every failed or erroring test case.

    Empty when the file is missing or unreadable: pytest died before writing it.
    """
    try:
        cases = read_cases(path)
    except JunitError:
        return []  # pytest died before writing it; the exit code tells that story
    return [
        (case.name, _short_message(case.name, case.message))
        for case in cases
        if case.outcome in ("failed", "error")
    ]


def _short_message(name: str, message: str) -> str:
    # Probe failures start with their node id ("probes/x.py::name: ..."): the name is shown
    # beside the message already.
    _, marker, rest = message.partition(f"::{name}: ")
    text = (rest if marker else message).splitlines()[0] if message else ""
    return text if len(text) <= _MESSAGE_WIDTH else text[: _MESSAGE_WIDTH - 3] + "..."


class Demo:
    """The running stack and Pushgateway, and how to point the probes at them."""

    def __init__(
        self, project: Path, stack: ReferenceStack, pushgateway_url: str, state_file: Path, reports: Path
    ) -> None:
        self.project = project
        self.stack = stack
        self.pushgateway_url = pushgateway_url
        self.state_file = state_file
        self.reports = reports

    def pytest_args(self, junit: Path | None) -> list[str]:
        # --rootdir: the project is the rootdir (where monitoring.yaml is) even without an ini
        # file, whatever an ini or setup.py in a parent directory says.
        args = ["-m", "pytest", "probes/", "--rootdir", ".", "-p", "no:locust", "-q", "--tb=no", "--slo-env"]
        args += ["local", "--pushgateway", self.pushgateway_url, "--slo-state"]
        args += [str(self.state_file), "--slo-instance", INSTANCE]
        return [*args, "--junit-xml", str(junit)] if junit else args

    def target_env(self) -> dict[str, str]:
        """What the shipped config's `local` environment reads to find the stack."""
        return {"API_URL": self.stack.api_url, "GATEWAY_URL": self.stack.gateway_url}

    def command_line(self, junit: Path | None) -> str:
        """The probe run as a user would type it in the project root."""
        python = os.path.relpath(sys.executable, self.project)
        if python.startswith(".."):
            python = sys.executable
        assignments = [f"{name}={value}" for name, value in self.target_env().items()]
        return shlex.join([*assignments, python, *self.pytest_args(junit)])

    def run_probes(self, junit: Path) -> ProbeRun:
        say(f"$ {self.command_line(junit)}")
        # Settings from the user's shell must not send the demo to their real targets,
        # Pushgateway or state file, nor change pytest's output; tokens are not needed here.
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("SLO_", "PUSHGATEWAY_")) and name != "PYTEST_ADDOPTS"
        }
        env.update(self.target_env(), API_TOKEN="", LITELLM_API_KEY="")
        # A report left by an earlier demo must not stand in for one this run failed to write.
        (self.project / junit).unlink(missing_ok=True)
        completed = subprocess.run(
            [sys.executable, *self.pytest_args(junit)], cwd=self.project, env=env, check=False
        )
        return ProbeRun(completed.returncode, junit_failures(self.project / junit), junit)

    def pushed(self) -> Pushed:
        # trust_env=False: an HTTP proxy from the environment must not capture loopback.
        with httpx.Client(timeout=5.0, trust_env=False) as client:
            response = client.get(f"{self.pushgateway_url}/metrics")
        response.raise_for_status()
        return parse_pushed(response.text)


def healthy_problems(run: ProbeRun, pushed: Pushed) -> list[str]:
    """Why the first run, against the healthy stack, did not go as expected (empty: it did)."""
    problems = []
    if run.exit_code != pytest.ExitCode.OK:
        failed = ", ".join(name for name, _ in run.failures) or "see the output above"
        problems.append(f"pytest exited {run.exit_code} on the healthy stack ({failed})")
    if not pushed.probes:
        problems.append("no probe series arrived at the Pushgateway")
    odd = [name for name, series in pushed.probes.items() if (series.runs, series.failures) != (1, 0)]
    if odd:
        problems.append(f"expected runs 1, failures 0 after one run, not for {', '.join(odd)}")
    return problems


def fault_problems(run: ProbeRun, pushed: Pushed) -> list[str]:
    """Why the second run, with the fault injected, did not catch it as expected."""
    failing = pushed.failing
    problems = []
    if run.exit_code != pytest.ExitCode.TESTS_FAILED:
        problems.append(f"pytest exited {run.exit_code} with the fault injected (expected 1)")
    if not failing:
        problems.append(f"no probe failed although {FAULT_STORY}")
    if len(run.failures) != len(failing):
        problems.append(
            f"JUnit lists {len(run.failures)} failures, the Pushgateway {len(failing)} failing probes"
        )
    innocent = [name for name in failing if pushed.probes[name].target != FAULT_SERVICE]
    if innocent:
        problems.append(f"probes of healthy targets failed: {', '.join(innocent)}")
    miscounted = [
        name
        for name, series in pushed.probes.items()
        if (series.runs, series.failures) != (2, int(name in failing))
    ]
    if miscounted:
        problems.append(f"counters off after two runs for {', '.join(miscounted)}")
    return problems


def report(problems: list[str], success: str) -> None:
    for problem in problems:
        say(f"UNEXPECTED: {problem}")
    if not problems:
        say(success)


def healthy_round(demo: Demo) -> list[str]:
    heading("3. Probes against the healthy stack")
    run = demo.run_probes(demo.reports / "junit-healthy.xml")
    heading("4. What the Pushgateway holds now")
    pushed = demo.pushed()
    say(format_pushed(pushed))
    problems = healthy_problems(run, pushed)
    report(problems, f"All {len(pushed.probes)} probes passed and were counted once.")
    return problems


def fault_round(demo: Demo) -> list[str]:
    heading(f"5. Inject a fault: {FAULT_STORY}")
    say(f"PUT {demo.stack.url(FAULT_SERVICE)}/_faults {json.dumps(FAULT)}")
    demo.stack.set_faults(FAULT_SERVICE, **FAULT)
    run = demo.run_probes(demo.reports / "junit-fault.xml")
    demo.stack.clear_faults(FAULT_SERVICE)
    say(f"\nFailed probes, from {run.junit}:")
    for name, message in run.failures:
        say(f"  {name}: {message}")
    say("\nThe Pushgateway after the second run:")
    pushed = demo.pushed()
    say(format_pushed(pushed))
    problems = fault_problems(run, pushed)
    report(
        problems,
        f"Fault caught by {len(pushed.failing)} {FAULT_SERVICE} probes: they read runs 2, "
        "failures 1; every other probe reads runs 2, failures 0.",
    )
    say(f"Fault cleared (DELETE {demo.stack.url(FAULT_SERVICE)}/_faults).")
    return problems


def keep_running(demo: Demo) -> None:
    heading("Still running: try it yourself (Ctrl-C stops everything)")
    api = demo.stack.api_url
    say(f"API service   {api}")
    say(f"LLM gateway   {demo.stack.gateway_url}")
    say(f"Pushgateway   {demo.pushgateway_url}/metrics")
    say(f"\nRun the probes again from {demo.project} (the counters keep adding up):")
    say(f"  {demo.command_line(None)}")
    say("Slow the API down past its 2 s latency SLO, then make it healthy again:")
    say(f"  curl -X PUT -d '{{\"latency_ms\": 3000}}' {api}/_faults")
    say(f"  curl -X DELETE {api}/_faults")
    say(f"See the pushed series:  curl -s {demo.pushgateway_url}/metrics | grep ^synthetic_")
    with contextlib.suppress(KeyboardInterrupt):
        signal.pause()
    say()


def run_demo(project: Path, reports: Path, keep: bool) -> list[str]:
    """Every section of the tour; returns what did not go as expected."""
    with contextlib.ExitStack() as started:
        heading("1. Start the reference stack (API service + LLM gateway)")
        stack = started.enter_context(ReferenceStack())
        say(f"API service  {stack.api_url}\nLLM gateway  {stack.gateway_url}")
        heading("2. Start a Pushgateway (Debian's prometheus-pushgateway)")
        pushgateway = started.enter_context(Pushgateway())
        workdir = Path(started.enter_context(tempfile.TemporaryDirectory(prefix="slo-demo-")))
        say(f"Pushgateway  {pushgateway.url}")
        say(f"Counters     {workdir / 'state.json'} (demo-private, removed at the end)")
        demo = Demo(project, stack, pushgateway.url, workdir / "state.json", reports)
        problems = healthy_round(demo) + fault_round(demo)
        if keep:
            keep_running(demo)
    heading("6. Done")
    say("Stopped the reference stack and the Pushgateway.")
    say(f"JUnit reports: {reports}/junit-healthy.xml and {reports}/junit-fault.xml")
    return problems


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # SystemExit unwinds the `with` blocks, so a supervisor's (or a test's) SIGTERM still
    # stops the stack and the Pushgateway instead of orphaning them.
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="python -m devstack.demo", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument(
        "--project",
        type=Path,
        default=Path.cwd(),
        metavar="DIR",
        help=f"the probe project: probes/ and {CONFIG_FILE} (default: the working directory)",
    )
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="after the tour, leave the stack and the Pushgateway up until Ctrl-C",
    )
    parser.add_argument(
        "--reports",
        type=Path,
        default=DEFAULT_REPORTS,
        metavar="DIR",
        help=f"where the JUnit files go, relative to the project root (default: {DEFAULT_REPORTS})",
    )
    args = parser.parse_args(argv)
    project = args.project.resolve()
    if not (project / "probes").is_dir() or not (project / CONFIG_FILE).is_file():
        parser.error(
            f"{project} is not a probe project (no probes/ or {CONFIG_FILE}): run the demo in "
            "the checkout (`make demo`) or in a project of your own, or give --project DIR"
        )
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        problems = run_demo(project, args.reports, args.keep_running)
    except KeyboardInterrupt:
        say("\nInterrupted; the reference stack and the Pushgateway are stopped.")
        return 130
    except (DaemonError, ReferenceStackError, httpx.HTTPError) as exc:
        say(f"\nDEMO FAILED: {exc}")
        return 1
    if problems:
        say(f"\nDEMO FAILED: {len(problems)} unexpected result(s), listed above.")
        return 1
    say("\nDEMO OK: the probes passed on the healthy stack and caught the injected fault.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
