"""`slo init`: the project it writes validates, collects, and runs at once against the
reference stack; it never overwrites a file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from devstack.refstack import ReferenceStack
from slo.cli import main
from slo.junit import read_cases

KINDS = {"availability", "budget", "resource", "warning"}


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # As a user runs it: its own interpreter, in the project's directory.
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=os.environ.copy()
    )


def test_init_writes_a_project_with_one_probe_per_kind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "myprobes"
    assert main(["init", str(project), "--api-url", "https://api.example.com", "--env", "staging"]) == 0
    assert "next: cd" in capsys.readouterr().out
    config = yaml.safe_load((project / "monitoring.yaml").read_text())
    assert list(config["environments"]) == ["staging"]
    assert config["environments"]["staging"]["targets"]["api"]["url"] == "https://api.example.com"
    assert config["environments"]["staging"]["targets"]["gateway"]["url"] == "http://127.0.0.1:4000"
    probes = sorted(path.name for path in (project / "probes").iterdir())
    assert probes == [f"test_{kind}.py" for kind in sorted(KINDS)]
    for kind in KINDS:
        text = (project / "probes" / f"test_{kind}.py").read_text()
        assert kind == "availability" or f'kind="{kind}"' in text
    for snippet in (
        "systemd/slo-probes.service",
        "systemd/slo-probes.timer",
        "systemd/slo-probes-warm.service",
        "kubernetes/cronjob.yaml",
        "kubernetes/deployment.yaml",
        "ci/github-actions.yml",
    ):
        assert (project / "deploy" / snippet).is_file()
    assert len((project / "README.md").read_text().splitlines()) == 3
    assert main(["validate", "--config", str(project / "monitoring.yaml")]) == 0


def test_init_never_overwrites_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "monitoring.yaml").write_text("mine\n")
    assert main(["init", str(tmp_path)]) == 4
    assert capsys.readouterr().err.strip() == (
        f"slo init: {tmp_path / 'monitoring.yaml'} exists already; nothing was written (choose another DIR)"
    )
    assert (tmp_path / "monitoring.yaml").read_text() == "mine\n"
    assert not (tmp_path / "probes").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--api-url", "api.example.com"], "slo init: --api-url: "),
        (["--gateway-url", "ftp://x"], "slo init: --gateway-url: "),
        (["--env", "a b"], "slo init: --env: 'a b' is not a plain name"),
    ],
)
def test_init_bad_flags_are_one_line(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", str(tmp_path / "p"), *args]) == 4
    err = capsys.readouterr().err
    assert err.startswith(message)
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "p").exists()


@pytest.mark.slow
def test_the_project_collects_and_passes_against_the_reference_stack(
    tmp_path: Path, stack: ReferenceStack
) -> None:
    project = tmp_path / "myprobes"
    assert main(["init", str(project), "--api-url", stack.api_url, "--gateway-url", stack.gateway_url]) == 0
    collected = _run("-m", "pytest", "probes/", "--collect-only", "-q", cwd=project)
    assert collected.returncode == 0, collected.stdout + collected.stderr
    assert "4 tests collected" in collected.stdout
    ran = _run("-m", "pytest", "probes/", "--no-push", cwd=project)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    outcomes = {case.name: case.outcome for case in read_cases(project / "reports" / "junit.xml")}
    assert outcomes == {
        "test_api_health": "passed",
        "test_api_error_ratio": "passed",
        "test_runner_disk": "passed",
        "test_model_still_listed": "passed",
    }
