"""A probe run from the checkout (`pytest probes/`, as `make demo`, the systemd unit and the
CronJob start it) loads no dev-only or load-test plugin: hypothesis' plugin alone is about a
second of imports, Locust's monkey-patches the process with gevent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: Top-level modules a probe run must not import.
NOT_IN_A_PROBE_RUN = {"hypothesis", "_hypothesis_pytestplugin", "locust", "gevent"}

_RUN = """
import sys, pytest
code = pytest.main(sys.argv[2:])
print("LOADED", sorted({name.split(".")[0] for name in sys.modules} & set(sys.argv[1].split(","))))
sys.exit(code)
"""


def test_a_probe_run_loads_no_dev_only_plugin(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _RUN,
            ",".join(sorted(NOT_IN_A_PROBE_RUN)),
            "probes/",
            "--collect-only",
            "-q",
            f"--junit-xml={tmp_path / 'junit.xml'}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "tests collected" in result.stdout
    assert "LOADED []" in result.stdout.splitlines(), result.stdout[-2000:]


def test_the_project_tests_still_get_hypothesis_plugin() -> None:
    # The Makefile's PYTEST_OPTS say `-p hypothesispytest` after pyproject's `-p no:...`.
    makefile = (REPO / "Makefile").read_text()
    [opts] = [line for line in makefile.splitlines() if line.startswith("PYTEST_OPTS :=")]
    assert "-p hypothesispytest" in opts
    command = [sys.executable, "-m", "pytest", "-p", "no:slo", "-p", "hypothesispytest"]
    result = subprocess.run(
        [*command, "--trace-config", "--collect-only", "-q", "tests/test_units.py"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "_hypothesis_pytestplugin" in result.stdout
