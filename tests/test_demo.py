"""`make demo` end to end, its verdict logic, and the deploy examples in deploy/.

The demo runs as users run it (a subprocess with the real reference stack and Pushgateway).
The deploy examples are checked for what a typo would silently break: the schedule, the
overlap policy, where the counters persist, that secrets come from references, and that the
probe command lines and environments are accepted by pytest and the shipped config.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from devstack.demo import ProbeRun, ProbeSeries, Pushed, fault_problems, healthy_problems, parse_pushed

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DEMO_TIMEOUT = 120.0
SECRET_NAME = re.compile(r"TOKEN|KEY|SECRET|PASSWORD", re.IGNORECASE)


def _leftovers(session: int) -> list[str]:
    """Processes still in the demo's session (its stack, Pushgateway or probe runs)."""
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        try:
            if os.getsid(process.pid) == session:
                found.append(" ".join(process.info["cmdline"] or []))
        except (ProcessLookupError, PermissionError):
            continue
    return found


def _start_demo(log: Path, *args: str, cwd: Path = ROOT) -> subprocess.Popen[bytes]:
    # Its own session, so a timeout can stop everything it started, and only that.
    with log.open("wb") as output:
        return subprocess.Popen(
            # Own reports: two demos at once (xdist) must not read each other's JUnit files.
            [sys.executable, "-m", "devstack.demo", "--reports", str(log.parent / "reports"), *args],
            cwd=cwd,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait(process: subprocess.Popen[bytes], timeout: float) -> int:
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        pytest.fail(f"the demo did not finish within {timeout:g} s")


@pytest.mark.slow
def test_demo_passes_then_catches_the_fault(tmp_path: Path) -> None:
    # A probe project outside the checkout, as a user of the installed package has one.
    project = tmp_path / "project"
    shutil.copytree(ROOT / "probes", project / "probes", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "monitoring.yaml", project)
    log = tmp_path / "demo.log"
    demo = _start_demo(log, cwd=project)
    code = _wait(demo, DEMO_TIMEOUT)
    output = log.read_text(errors="replace")
    assert code == 0, output
    assert re.search(r"All \d+ probes passed and were counted once\.", output), output
    caught = re.search(r"Fault caught by (\d+) gateway probes: they read runs 2, failures 1", output)
    assert caught, output
    assert int(caught.group(1)) > 0, output
    assert re.search(r"^  test_\w+: gateway \S+ /\S+ returned malformed JSON", output, re.MULTILINE), output
    assert "Stopped the reference stack and the Pushgateway." in output
    assert output.rstrip().endswith(
        "DEMO OK: the probes passed on the healthy stack and caught the injected fault."
    )
    assert "UNEXPECTED" not in output
    assert _leftovers(demo.pid) == []


def test_demo_outside_a_probe_project_is_one_line_and_usage_error_4(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "devstack.demo"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 4
    assert result.stdout == ""
    assert result.stderr == (
        f"python -m devstack.demo: {tmp_path.resolve()} is not a probe project (no probes/ or "
        "monitoring.yaml): run the demo in the checkout (`make demo`) or in a project of your own, "
        "or give --project DIR\n"
    )


@pytest.mark.slow
def test_demo_stops_everything_on_sigterm(tmp_path: Path) -> None:
    log = tmp_path / "demo.log"
    demo = _start_demo(log, "--keep-running")
    deadline = time.monotonic() + DEMO_TIMEOUT
    # Terminated while its stack and Pushgateway run and it waits for Ctrl-C.
    while "Still running" not in log.read_text(errors="replace"):
        if demo.poll() is not None or time.monotonic() > deadline:
            os.killpg(demo.pid, signal.SIGKILL)
            pytest.fail(f"the demo never reached --keep-running:\n{log.read_text(errors='replace')}")
        time.sleep(0.1)
    assert _leftovers(demo.pid), "expected the stack and the Pushgateway to be running"
    demo.terminate()
    assert _wait(demo, 30) == 128 + signal.SIGTERM
    assert _leftovers(demo.pid) == []


# -- the demo's verdict: it must not pass vacuously ----------------------------------------

API, CHAT = "probes/a.py::test_api", "probes/g.py::test_chat"


def _series(name: str, probe: str, target: str, value: float, instance: str = "demo") -> str:
    labels = f'instance="{instance}",job="synthetic-probes",probe="{probe}",slo="",target="{target}"'
    return f"{name}{{{labels}}} {value:g}"


EXPOSITION = "\n".join(
    [
        "# TYPE synthetic_probe_success gauge",
        _series("synthetic_probe_success", API, "api", 1),
        _series("synthetic_probe_success", CHAT, "gateway", 0),
        # Another runner's group on the same Pushgateway: not the demo's.
        _series("synthetic_probe_success", API, "api", 0, instance="laptop"),
        "# TYPE synthetic_probe_runs_total counter",
        _series("synthetic_probe_runs_total", API, "api", 2),
        _series("synthetic_probe_runs_total", CHAT, "gateway", 2),
        "# TYPE synthetic_probe_failures_total counter",
        _series("synthetic_probe_failures_total", API, "api", 0),
        _series("synthetic_probe_failures_total", CHAT, "gateway", 1),
        "# TYPE synthetic_suite_probes gauge",
        'synthetic_suite_probes{instance="demo",job="synthetic-probes",outcome="failed"} 1',
        'synthetic_suite_probes{instance="demo",job="synthetic-probes",outcome="passed"} 1',
        "",
    ]
)


def test_parse_pushed_keeps_only_the_demo_group() -> None:
    pushed = parse_pushed(EXPOSITION)
    assert pushed.probes == {
        API: ProbeSeries("api", 1.0, 2.0, 0.0),
        CHAT: ProbeSeries("gateway", 0.0, 2.0, 1.0),
    }
    assert pushed.outcomes == {"failed": 1, "passed": 1}
    assert pushed.failing == [CHAT]


def test_fault_verdict_accepts_only_a_caught_and_counted_fault() -> None:
    pushed = parse_pushed(EXPOSITION)
    caught = ProbeRun(1, [("test_chat", "malformed JSON")], Path("fault.xml"))
    assert fault_problems(caught, pushed) == []
    healthy = Pushed({name: ProbeSeries(s.target, 1.0, 2.0, 0.0) for name, s in pushed.probes.items()}, {})
    missed = fault_problems(ProbeRun(0, [], Path("fault.xml")), healthy)
    assert any("no probe failed" in problem for problem in missed)
    wrong_target = Pushed({API: ProbeSeries("api", 0.0, 2.0, 1.0)}, {})
    assert any("healthy targets" in problem for problem in fault_problems(caught, wrong_target))


def test_healthy_verdict_needs_pushed_series() -> None:
    assert healthy_problems(ProbeRun(0, [], Path("healthy.xml")), Pushed({}, {})) == [
        "no probe series arrived at the Pushgateway"
    ]


# -- deploy examples ------------------------------------------------------------------------


def _pytest_accepts(command: list[str], env: dict[str, str], tmp_path: Path) -> None:
    """Collect with exactly this command line and environment, as the deployment would."""
    assert command[:2] == ["pytest", "probes/"], command
    args = [
        f"--junit-xml={tmp_path / 'junit.xml'}" if a.startswith("--junit-xml") else a for a in command[1:]
    ]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *args, "--collect-only", "-q"],
        cwd=ROOT,
        env={**os.environ, "SLO_STATE_FILE": str(tmp_path / "state.json"), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "probes/test_health.py" in result.stdout, result.stdout


def _cronjob_documents() -> dict[str, dict[str, Any]]:
    documents = yaml.safe_load_all((DEPLOY / "kubernetes" / "cronjob.yaml").read_text())
    return {document["kind"]: document for document in documents if document}


def _probe_container(cronjob: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"][
        "containers"
    ]
    (container,) = containers
    return container


def test_cronjob_runs_every_minute_without_overlap() -> None:
    documents = _cronjob_documents()
    cronjob = documents["CronJob"]
    assert cronjob["apiVersion"] == "batch/v1"
    assert cronjob["spec"]["schedule"] == "* * * * *"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert cronjob["spec"]["jobTemplate"]["spec"]["backoffLimit"] == 0
    assert _probe_container(cronjob)["command"][:2] == ["pytest", "probes/"]


def test_cronjob_keeps_counters_on_its_claim_and_secrets_in_a_secret() -> None:
    documents = _cronjob_documents()
    pod = documents["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    container = _probe_container(documents["CronJob"])
    env = {variable["name"]: variable for variable in container["env"]}
    state_dir = str(Path(env["SLO_STATE_FILE"]["value"]).parent)
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == state_dir]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert (
        volume["persistentVolumeClaim"]["claimName"] == documents["PersistentVolumeClaim"]["metadata"]["name"]
    )
    secrets = [name for name in env if SECRET_NAME.search(name)]
    assert secrets
    for name in secrets:
        assert "value" not in env[name], name
        assert env[name]["valueFrom"]["secretKeyRef"]["key"], name


@pytest.mark.slow
def test_cronjob_command_and_environment_work_with_the_shipped_config(tmp_path: Path) -> None:
    container = _probe_container(_cronjob_documents()["CronJob"])
    env = {
        v["name"]: v.get("value", "from-a-secret") for v in container["env"] if v["name"] != "SLO_STATE_FILE"
    }
    env["SLO_CONFIG"] = str(ROOT / "monitoring.yaml")  # the ConfigMap's content
    _pytest_accepts(container["command"], env, tmp_path)


def _unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A systemd unit as section -> key -> values (keys may repeat, comments are skipped)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, equals, value = line.partition("=")
        assert equals, f"{path.name}: not a unit-file line: {line!r}"
        assert current is not None, f"{path.name}: a line before the first [section]: {line!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


EVERY_MINUTE = {"minutely", "*-*-* *:*:00", "*:*:00", "*:*"}


def test_systemd_timer_starts_the_service_every_minute() -> None:
    timer = _unit(DEPLOY / "systemd" / "slo-probes.timer")["Timer"]
    calendar = set(timer.get("OnCalendar", []))
    every_minute = bool(calendar) and calendar <= EVERY_MINUTE
    assert every_minute or timer.get("OnUnitActiveSec") in (["1min"], ["60s"])
    assert timer["Unit"] == ["slo-probes.service"]
    assert timer["AccuracySec"] == ["1s"]


@pytest.mark.slow
def test_systemd_service_runs_the_probes_with_persistent_counters(tmp_path: Path) -> None:
    service = _unit(DEPLOY / "systemd" / "slo-probes.service")["Service"]
    assert service["Type"] == ["oneshot"]
    (exec_start,) = service["ExecStart"]
    command = shlex.split(exec_start)
    assert command[0].endswith("/pytest")
    assert command[1] == "probes/"
    environment = dict(assignment.split("=", 1) for assignment in service["Environment"])
    assert not [name for name in environment if SECRET_NAME.search(name)], "secrets belong in EnvironmentFile"
    assert environment["SLO_STATE_FILE"].startswith(f"%S/{service['StateDirectory'][0]}/")
    env = {name: value.replace("%S", str(tmp_path)) for name, value in environment.items()}
    secrets = {"STAGING_API_TOKEN": "from-env-file", "STAGING_LITELLM_API_KEY": "from-env-file"}
    _pytest_accepts(["pytest", *command[1:]], {**env, **secrets}, tmp_path)


def test_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed: the units were only checked by parsing")
    # verify insists that ExecStart's binary exists: install a stand-in under a fake /opt.
    prefix = tmp_path / "opt" / "slo-probes"
    (prefix / ".venv" / "bin").mkdir(parents=True)
    stand_in = prefix / ".venv" / "bin" / "pytest"
    stand_in.write_text("#!/bin/sh\n")
    stand_in.chmod(0o755)
    for name in ("slo-probes.service", "slo-probes.timer"):
        text = (DEPLOY / "systemd" / name).read_text().replace("/opt/slo-probes", str(prefix))
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        [analyze, "verify", str(tmp_path / "slo-probes.service"), str(tmp_path / "slo-probes.timer")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # verify exits 0 on unknown keys and bad values too; it only warns on stderr.
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def _workflow_steps() -> list[dict[str, Any]]:
    workflow = yaml.safe_load((DEPLOY / "ci" / "github-actions.yml").read_text())
    (job,) = workflow["jobs"].values()
    return [{**step, "env": job.get("env", {})} for step in job["steps"]]


@pytest.mark.slow
def test_ci_workflow_gates_on_probes_load_and_budget(tmp_path: Path) -> None:
    steps = {step.get("name"): step for step in _workflow_steps()}
    probes = shlex.split(steps["Probes against staging"]["run"])
    assert "slo load" in steps["Load gate"]["run"]
    gate = steps["Release gate"]
    assert "slo gate" in gate["run"]
    assert "--junit reports/junit.xml" in gate["run"]
    assert not gate.get("continue-on-error"), "the gate's exit code is the verdict"
    env = gate["env"]
    for name, value in env.items():
        if SECRET_NAME.search(name):
            assert re.fullmatch(r"\$\{\{ secrets\.\w+ \}\}", value), name
    runner_env = {name: "from-ci-secrets" for name in env if SECRET_NAME.search(name)}
    _pytest_accepts(probes, {"SLO_ENV": env["SLO_ENV"], **runner_env}, tmp_path)
