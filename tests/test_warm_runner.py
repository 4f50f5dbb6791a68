"""`slo run`: the warm runner against a real Pushgateway and the reference stack.

Each run is a child forked from the warm process; what it leaves (exit code, JUnit, the push,
the state file's counters) must be what `pytest probes/` leaves. The runner's own behaviour
(skipped ticks pushed, SIGTERM, the run timeout, /healthz, re-exec on change) is checked on
a real process; the schedule's arithmetic as pure code.
"""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from eventually import wait_for
from probe_project import junit_cases, make_probe_project
from prometheus_client.parser import text_string_to_metric_families

from devstack.daemons import Pushgateway, free_port
from devstack.refstack import ReferenceStack
from slo import metric_names as m
from slo.report.exposition import RunnerBeat, runner_families
from slo.stopping import STOPPED_EXIT
from slo.warmrun.cli import main
from slo.warmrun.plan import Plan
from slo.warmrun.runner import KILL_GRACE, Runner
from slo.warmrun.ticks import Ticks
from slo.warmrun.watch import Watch

HEALTH = "probes/test_health.py::test_api_health"
#: A probe that says it started, then waits far longer than any test: only a stop ends it.
SLEEPER = """\
import os, pathlib, time

def test_sleeps(probe):
    pathlib.Path(os.environ["SLEEPER_STARTED"]).write_text("started")
    time.sleep(float(os.environ["SLEEPER_SECONDS"]))
"""
SLEEPER_ID = "probes/test_sleeper.py::test_sleeps"
#: Every wait on the runner has this deadline; a healthy run takes well under a second.
DEADLINE = 120.0


# --- the schedule ----------------------------------------------------------------------------


def test_ticks_fall_on_each_period_from_the_start() -> None:
    ticks = Ticks(every=60, jitter=0, start=1000.0)
    assert ticks.next == 1000.0
    assert ticks.advance(999.9) == 0
    assert ticks.advance(1000.0) == 1
    assert ticks.next == 1060.0
    assert ticks.advance(1059.0) == 0
    assert ticks.advance(1061.0) == 1
    assert ticks.next == 1120.0


def test_ticks_passed_while_the_runner_could_not_act_are_all_due() -> None:
    ticks = Ticks(every=10, jitter=0, start=0.0)
    ticks.advance(0.0)
    # Suspended from 5 s to 42 s: the ticks at 10, 20, 30 and 40 passed.
    assert ticks.advance(42.0) == 4
    assert ticks.next == 50.0


def test_jitter_delays_each_tick_within_the_jitter_and_never_past_the_next_period() -> None:
    ticks = Ticks(every=60, jitter=5, start=0.0, rng=random.Random(3))
    starts = []
    for period in range(200):
        starts.append(ticks.next - period * 60)
        ticks.advance(ticks.next)
    assert all(0 <= offset < 5 for offset in starts)
    assert len(set(starts)) > 100  # a fresh delay each period, not one fixed offset
    wide = Ticks(every=10, jitter=60, start=0.0, rng=random.Random(4))
    assert 0 <= wide.next < 10


def _plan(**changes: Any) -> Plan:
    values: dict[str, Any] = {
        "every": 60.0,
        "jitter": 0.0,
        "runs": None,
        "run_timeout": 240.0,
        "healthz": None,
        "pytest_args": ["probes/"],
        "argv": ["--every", "1m", "--", "probes/"],
    }
    return Plan(**{**values, **changes})


def test_a_restart_keeps_the_arguments_and_makes_only_the_runs_left() -> None:
    assert _plan().restart_argv(5) == ["--every", "1m", "--", "probes/"]
    counted = _plan(runs=3, argv=["--every", "1m", "--runs", "3", "--", "probes/", "--runs", "9"])
    # The runner's own --runs goes before `--`: a pytest argument that looks alike is not it.
    assert counted.restart_argv(1) == [
        "--every",
        "1m",
        "--runs",
        "3",
        "--runs",
        "2",
        "--",
        "probes/",
        "--runs",
        "9",
    ]
    assert _plan(runs=3, argv=["--every", "1m", "--runs", "3"]).restart_argv(2) == [
        "--every",
        "1m",
        "--runs",
        "3",
        "--runs",
        "1",
    ]


def test_healthz_says_stale_once_no_run_finished_for_two_periods_and_a_run_timeout() -> None:
    now = [1000.0]
    runner = Runner(_plan(every=60.0, run_timeout=240.0), Watch([]), clock=lambda: now[0])
    try:
        assert runner.health()[0]
        now[0] += 2 * 60 + 240  # the limit itself is still healthy
        assert runner.health()[0]
        now[0] += 1
        healthy, facts = runner.health()
        assert not healthy
        assert facts["status"] == "stale"
        assert facts["runs"] == 0
        runner.last_finished, runner.last_exit = now[0], 1
        healthy, facts = runner.health()
        assert healthy
        assert facts["last_exit"] == 1
    finally:
        runner.close()


# --- usage -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--every", "soon"], "slo run: --every: "),
        (["--every", "0s"], "slo run: --every: must be positive, got '0s'"),
        (["--every", "1m", "--runs", "0"], "slo run: --runs: must be 1 or more, got 0"),
        (["--every", "1m", "--jitter=-1s"], "slo run: --jitter: "),
        (["--every", "1m", "--healthz", "localhost"], "--healthz: expected [HOST:]PORT, got 'localhost'"),
    ],
)
def test_a_bad_option_is_one_line_and_exit_4(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--", "probes/"]) == 4
    err = capsys.readouterr().err
    assert err.startswith(expected) or expected in err
    assert len(err.strip().splitlines()) == 1


def test_every_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--runs", "1"])
    assert exited.value.code == 4
    assert "--every" in capsys.readouterr().err


def test_the_runner_families_carry_the_heartbeat_and_the_skipped_ticks() -> None:
    assert runner_families(None) == []
    families = {f.name: f for f in runner_families(RunnerBeat(heartbeat=1700000000.5, skipped_ticks=3))}
    assert families[m.RUNNER_HEARTBEAT].series == [((), 1700000000.5)]
    assert families[m.RUNNER_HEARTBEAT].type == "gauge"
    assert families[m.RUNNER_SKIPPED_TICKS].series == [((), 3.0)]
    assert families[m.RUNNER_SKIPPED_TICKS].type == "counter"


# --- real runs -------------------------------------------------------------------------------


@dataclass
class Project:
    path: Path
    gateway: Pushgateway

    def pushed(self) -> dict[str, dict[str, float]]:
        """Pushed samples by metric name, then by probe label (or "" for unlabelled ones)."""
        text = httpx.get(f"{self.gateway.url}/metrics", timeout=10).text
        found: dict[str, dict[str, float]] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name.startswith("synthetic_"):
                    found.setdefault(sample.name, {})[sample.labels.get("probe", "")] = sample.value
        return found

    def start(self, *args: str, sleep: float = 120, **env: str) -> tuple[subprocess.Popen[bytes], Path]:
        path = self.path / "runner.log"
        with path.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "slo", "run", *args],
                cwd=self.path,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={
                    **os.environ,
                    "SLEEPER_STARTED": str(self.path / "sleeper-started"),
                    "SLEEPER_SECONDS": str(sleep),
                    **env,
                },
            )
        return process, path

    def run(self, *args: str) -> tuple[int, str]:
        """The runner to its end (``--runs``); its exit code and output."""
        process, log = self.start(*args)
        try:
            code = process.wait(DEADLINE)
        finally:
            _stop(process)
        return code, log.read_text(errors="replace")


def _stop(process: subprocess.Popen[bytes]) -> None:
    from slo.processes import stop

    stop(process, 10)


@pytest.fixture
def project(pytester: pytest.Pytester, stack: ReferenceStack) -> Iterator[Project]:
    with Pushgateway() as gateway:
        make_probe_project(
            pytester,
            stack,
            pushgateway={"url": gateway.url, "state_file": str(pytester.path / "state.json")},
        )
        (pytester.path / "probes" / "test_sleeper.py").write_text(SLEEPER)
        yield Project(pytester.path, gateway)


@pytest.mark.slow
def test_each_warm_run_pushes_and_counts_as_a_cold_run_does(
    project: Project, pytester: pytest.Pytester
) -> None:
    cold = subprocess.run(
        [sys.executable, "-m", "pytest", HEALTH],
        cwd=project.path,
        capture_output=True,
        timeout=DEADLINE,
        check=False,
    )
    assert cold.returncode == 0, cold.stdout.decode(errors="replace")[-2000:]
    cold_pushed = project.pushed()
    cold_run_file = json.loads((project.path / "reports" / "probes.json").read_text())

    before = time.time()
    code, output = project.run("--every", "1s", "--runs", "2", "--", HEALTH)
    after = time.time()

    assert code == 0, output[-3000:]
    assert "run 1 exited 0" in output
    assert "run 2 exited 0" in output
    pushed = project.pushed()
    # The same state file and lock: the cold run's count goes on, one per warm run.
    assert pushed[m.PROBE_RUNS][HEALTH] == cold_pushed[m.PROBE_RUNS][HEALTH] + 2 == 3
    assert pushed[m.PROBE_SUCCESS][HEALTH] == 1
    # Every series a cold run pushes, and the runner's liveness besides.
    runner = {m.RUNNER_HEARTBEAT, m.RUNNER_SKIPPED_TICKS}
    assert set(cold_pushed) | runner == set(pushed) - {"push_time_seconds"}
    assert before <= pushed[m.RUNNER_HEARTBEAT][""] <= after
    assert pushed[m.RUNNER_SKIPPED_TICKS][""] == 0
    # JUnit and the run file, as a cold run writes them.
    assert junit_cases(pytester)["test_health::test_api_health"].outcome == "passed"
    warm_run_file = json.loads((project.path / "reports" / "probes.json").read_text())
    assert warm_run_file.keys() == cold_run_file.keys()
    assert [(p["probe"], p["outcome"]) for p in warm_run_file["probes"]] == [
        (p["probe"], p["outcome"]) for p in cold_run_file["probes"]
    ]


@pytest.mark.slow
def test_a_failing_run_exits_as_pytest_does_and_the_runner_goes_on(
    project: Project, stack: ReferenceStack
) -> None:
    stack.set_faults("api", error_rate=1, status=503)
    code, output = project.run("--every", "1s", "--runs", "2", "--", HEALTH)
    assert code == 1, output[-3000:]
    assert "run 1 exited 1" in output
    assert "run 2 exited 1" in output
    pushed = project.pushed()
    assert pushed[m.PROBE_FAILURES][HEALTH] == 2
    assert pushed[m.PROBE_SUCCESS][HEALTH] == 0


@pytest.mark.slow
def test_a_broken_config_is_exit_4_before_any_run(project: Project) -> None:
    (project.path / "monitoring.yaml").write_text("environments: {local: {targets: {api: {url: 7}}}}\n")
    code, output = project.run("--every", "1s", "--runs", "1", "--", HEALTH)
    assert code == 4, output
    assert "monitoring.yaml" in output
    assert "run 1" not in output
    assert "Traceback" not in output


@pytest.mark.slow
def test_ticks_while_a_run_is_going_are_skipped_and_pushed_with_the_next_run(project: Project) -> None:
    process, log = project.start("--every", "1s", "--runs", "2", "--", SLEEPER_ID, sleep=2.5)
    try:
        code = process.wait(DEADLINE)
    finally:
        _stop(process)
    output = log.read_text(errors="replace")
    assert code == 0, output[-3000:]
    # Run 1 sleeps 2.5 s: the ticks at 1 s and 2 s (at least) found it going.
    assert "skipped: run 1 is still going" in output
    # What the runner counted until it started run 2 is what run 2 pushed.
    before_run_2 = output[: output.index("run 2 ")]
    counted = int(re.findall(r"(\d+) skipped so far", before_run_2)[-1])
    assert counted >= 2, output
    assert project.pushed()[m.RUNNER_SKIPPED_TICKS][""] == counted


#: Passes, then rewrites CHANGE_FILE with CHANGE_TEXT (the probe itself, or the config).
CHANGING = """\
import os, pathlib

def test_changing(probe):
    assert probe.http("api").get("/health")
    pathlib.Path(os.environ["CHANGE_FILE"]).write_text(os.environ["CHANGE_TEXT"])
"""


def _started(project: Project) -> bool:
    return (project.path / "sleeper-started").exists()


@pytest.mark.slow
@pytest.mark.parametrize("how", ["sigterm", "run-timeout"])
def test_a_stopped_run_records_and_pushes_what_it_saw(
    project: Project, pytester: pytest.Pytester, how: str
) -> None:
    args = ["--every", "1s", "--runs", "1"]
    if how == "run-timeout":
        # Far longer than a run's start, so the probe is sleeping when its time is up.
        args += ["--run-timeout", "10s"]
    process, log = project.start(*args, "--", SLEEPER_ID, HEALTH)
    try:
        wait_for(lambda: _started(project), "the sleeping probe to start", DEADLINE)
        if how == "sigterm":
            process.send_signal(signal.SIGTERM)
        code = process.wait(DEADLINE)
    finally:
        _stop(process)
    output = log.read_text(errors="replace")
    assert code == STOPPED_EXIT, output[-3000:]
    assert f"run 1 exited {STOPPED_EXIT}" in output
    if how == "run-timeout":
        assert "run 1 outlived --run-timeout 10 s: stopping it" in output
    case = junit_cases(pytester)["test_sleeper::test_sleeps"]
    assert (case.outcome, case.message) == (
        "failed",
        "stopped by SIGTERM before this probe finished: the run was cut short",
    )
    pushed = project.pushed()
    assert pushed[m.PROBE_SUCCESS][SLEEPER_ID] == 0
    assert pushed[m.PROBE_LAST_FAILURE][SLEEPER_ID] > 0


@pytest.mark.slow
def test_healthz_answers_while_a_client_holds_a_connection_open(project: Project) -> None:
    port = free_port()
    process, log = project.start("--every", "1s", "--healthz", f"127.0.0.1:{port}", "--", HEALTH)
    try:
        wait_for(lambda: "run 1 exited 0" in log.read_text(errors="replace"), "the first run", DEADLINE)
        with socket.create_connection(("127.0.0.1", port), timeout=10):  # says nothing
            answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
            other = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        process.send_signal(signal.SIGTERM)
        code = process.wait(DEADLINE)
    finally:
        _stop(process)
    assert answer.status_code == 200
    facts = answer.json()
    assert facts["status"] == "ok"
    assert facts["runs"] >= 1
    assert facts["last_exit"] == 0
    assert other.status_code == 404
    assert code == STOPPED_EXIT


@pytest.mark.slow
@pytest.mark.parametrize("what", ["probe", "config"])
def test_the_runner_re_execs_when_a_probe_or_the_config_changes(project: Project, what: str) -> None:
    probe = project.path / "probes" / "test_changing.py"
    if what == "probe":
        changed, new_text = probe, "def test_changing(probe):\n    assert False, 'the new code ran'\n"
    else:
        changed = project.path / "monitoring.yaml"
        config = yaml.safe_load(changed.read_text())
        config["environments"]["local"]["targets"]["api"]["url"] = "http://127.0.0.1:9"
        new_text = yaml.safe_dump(config, sort_keys=False)
    # Run 1 passes, then makes the change itself: run 2 (the next tick) must see it.
    probe.write_text(CHANGING)
    process, log = project.start(
        "--every",
        "1s",
        "--runs",
        "2",
        "--",
        "probes/test_changing.py",
        CHANGE_FILE=str(changed),
        CHANGE_TEXT=new_text,
    )
    try:
        code = process.wait(DEADLINE)
    finally:
        _stop(process)
    output = log.read_text(errors="replace")
    assert f"{changed.name} changed: restarting" in output, output[-3000:]
    assert code == 1, output[-3000:]
    assert ("the new code ran" if what == "probe" else "http://127.0.0.1:9/health") in output
    # Two runs in all, across the restart.
    assert output.count(" exited ") == 2


# --- the deploy examples ---------------------------------------------------------------------

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
ROOT = DEPLOY.parent


def _deployment() -> dict[str, dict[str, Any]]:
    documents = yaml.safe_load_all((DEPLOY / "kubernetes" / "deployment.yaml").read_text())
    return {document["kind"]: document for document in documents if document}


def _warm_unit() -> dict[str, list[str]]:
    """The warm service's [Service] keys (continuation lines joined, comments skipped)."""
    text = (DEPLOY / "systemd" / "slo-probes-warm.service").read_text().replace("\\\n", " ")
    service: dict[str, list[str]] = {}
    section = ""
    for line in map(str.strip, text.splitlines()):
        if line.startswith("["):
            section = line
        elif line and not line.startswith("#") and section == "[Service]":
            key, _, value = line.partition("=")
            service.setdefault(key, []).append(value)
    return service


def test_the_deployment_runs_one_warm_runner_whose_liveness_is_its_healthz() -> None:
    documents = _deployment()
    deployment = documents["Deployment"]
    assert deployment["apiVersion"] == "apps/v1"
    # Two pods of one instance would erase each other's push: one, and never two at a rollout.
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    command = container["command"]
    assert command[:4] == ["slo", "run", "--every", "1m"]
    port = int(command[command.index("--healthz") + 1].rpartition(":")[2])
    probe = container["livenessProbe"]["httpGet"]
    (named,) = [p for p in container["ports"] if p["name"] == probe["port"]]
    assert (probe["path"], named["containerPort"]) == ("/healthz", port)
    assert command[command.index("--") + 1] == "probes/"
    env = {variable["name"]: variable for variable in container["env"]}
    state_dir = str(Path(env["SLO_STATE_FILE"]["value"]).parent)
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == state_dir]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert (
        volume["persistentVolumeClaim"]["claimName"] == documents["PersistentVolumeClaim"]["metadata"]["name"]
    )
    assert all("value" not in env[name] for name in env if name.endswith(("_TOKEN", "_KEY")))


def test_the_warm_service_stops_its_run_cleanly_and_counts_that_a_success() -> None:
    service = _warm_unit()
    assert service["Type"] == ["simple"]
    (exec_start,) = service["ExecStart"]
    command = shlex.split(exec_start)
    assert command[0].endswith("/slo")
    assert command[1:4] == ["run", "--every", "1m"]
    assert service["KillMode"] == ["mixed"]  # SIGTERM to the runner, which passes it on
    assert str(STOPPED_EXIT) in service["SuccessExitStatus"][0].split()


@pytest.mark.slow
@pytest.mark.parametrize("where", ["deployment", "systemd"])
def test_the_shipped_warm_commands_run_on_the_shipped_config(where: str, tmp_path: Path) -> None:
    if where == "deployment":
        (container,) = _deployment()["Deployment"]["spec"]["template"]["spec"]["containers"]
        command = list(container["command"][1:])
        env = {v["name"]: v.get("value", "from-a-secret") for v in container["env"]}
    else:
        service = _warm_unit()
        command = shlex.split(service["ExecStart"][0].replace("%S", str(tmp_path)))[1:]
        env = dict(assignment.split("=", 1) for assignment in service["Environment"])
        env = {k: v.replace("%S", str(tmp_path)) for k, v in env.items()}
        env |= {"STAGING_API_TOKEN": "from-env-file", "STAGING_LITELLM_API_KEY": "from-env-file"}
    if "--healthz" in command:  # a free port: the shipped one may be taken on this machine
        command[command.index("--healthz") + 1] = f"127.0.0.1:{free_port()}"
    env |= {"SLO_CONFIG": str(ROOT / "monitoring.yaml"), "SLO_STATE_FILE": str(tmp_path / "state.json")}
    junit = next(arg for arg in command if arg.startswith("--junit-xml="))
    command[command.index(junit)] = f"--junit-xml={tmp_path / 'junit.xml'}"
    end = command.index("--")
    # One run that only collects: the runner's flags, pytest's arguments and the config are
    # what the service would start with; nothing is probed or pushed.
    command = [*command[:end], "--runs", "1", *command[end:], "--collect-only", "--no-push"]
    result = subprocess.run(
        [sys.executable, "-m", "slo", *command],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "run 1 exited 0" in result.stderr
    assert "probes/test_health.py" in result.stdout


def test_the_warm_service_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed: the unit was only checked by parsing")
    # verify insists that ExecStart's binary exists: a stand-in under a fake /opt.
    prefix = tmp_path / "opt" / "slo-probes"
    (prefix / ".venv" / "bin").mkdir(parents=True)
    stand_in = prefix / ".venv" / "bin" / "slo"
    stand_in.write_text("#!/bin/sh\n")
    stand_in.chmod(0o755)
    unit = tmp_path / "slo-probes-warm.service"
    unit.write_text((DEPLOY / "systemd" / unit.name).read_text().replace("/opt/slo-probes", str(prefix)))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    # verify exits 0 on unknown keys and bad values too; it only warns on stderr.
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@pytest.mark.slow
def test_a_run_that_ignores_sigterm_is_killed_after_the_grace(project: Project) -> None:
    (project.path / "probes" / "test_stubborn.py").write_text(
        "import signal, time\n\n"
        "def test_stubborn(probe):\n"
        "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "    time.sleep(120)\n"
    )
    # Far longer than a run's start, so the probe ignores SIGTERM by the time it comes.
    code, output = project.run(
        "--every", "1s", "--runs", "1", "--run-timeout", "10s", "--", "probes/test_stubborn.py"
    )
    assert code == 128 + signal.SIGKILL, output[-3000:]
    assert "run 1 outlived --run-timeout 10 s: stopping it" in output
    assert f"run 1 did not stop within {KILL_GRACE:g} s of SIGTERM: killing it" in output
