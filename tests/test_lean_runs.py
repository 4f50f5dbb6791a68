"""A probe run loads only what it uses: pytest's own JUnit writer can be left out, the
optional plugins (xdist, rerunfailures, timeout, anyio, allure) only load when their options
or markers are in play, and a plain-http run never builds a TLS context."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

CONFIG = """
version: 1
environments:
  local:
    targets:
      api: {url: "http://127.0.0.1:9", timeout: 1s}
"""

PROBES = """
def test_config_loads(slo_config):
    assert slo_config.environment.targets["api"]


def test_api_answers(http):
    http("api").get("/health")
"""


@pytest.fixture(autouse=True)
def private_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SLO_STATE_FILE", str(tmp_path / "state" / "state.json"))


def probe_project(pytester: pytest.Pytester, probes: str = PROBES) -> None:
    pytester.makefile(".yaml", monitoring=CONFIG)
    pytester.mkpydir("probes")
    (pytester.path / "probes" / "test_probes.py").write_text(probes)


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:locust", "-p", "no:cacheprovider", *args, timeout=120)


def test_a_probe_run_without_pytests_junit_writer_still_reports(pytester: pytest.Pytester) -> None:
    probe_project(pytester)
    result = run(pytester, "probes", "-p", "no:junitxml", "--no-push")
    # Port 9 (discard) refuses: one probe fails, the other passes; no INTERNALERROR.
    result.assert_outcomes(passed=1, failed=1)
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert not (pytester.path / "reports" / "junit.xml").exists()
    # Without a JUnit path the run file lands where the default JUnit would have been.
    run_file = json.loads((pytester.path / "reports" / "probes.json").read_text())
    outcomes = {result["probe"]: result["outcome"] for result in run_file["probes"]}
    assert outcomes == {
        "probes/test_probes.py::test_config_loads": "passed",
        "probes/test_probes.py::test_api_answers": "failed",
    }
