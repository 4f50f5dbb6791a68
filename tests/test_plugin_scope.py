"""The plugin is installed for every pytest run in the environment: it reports probes, and only
probes; says how it resolved its settings; refuses a malformed marker; and leaves any other
project alone, whatever config files or environment variables are lying around."""

from __future__ import annotations

import fnmatch
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hostile import HostileServer

from devstack.daemons import Pushgateway

CONFIG = """
version: 1
environments:
  local:
    targets:
      api: {url: "http://127.0.0.1:9", timeout: 1s}
pushgateway:
  url: ${TEST_PUSHGATEWAY:-}
  # Generous: these tests are about what is pushed, on a machine that may be busy.
  timeout: 5s
  deadline: 20s
"""


@pytest.fixture(autouse=True)
def private_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Counters of each test's runs in its own state file (the runner's settings are cleared
    for every test by conftest.py)."""
    monkeypatch.setenv("SLO_STATE_FILE", str(tmp_path / "state" / "state.json"))


@pytest.fixture
def pushgateway() -> Iterator[Pushgateway]:
    with Pushgateway() as gateway:
        yield gateway


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:locust", "-p", "no:cacheprovider", *args, timeout=120)


def pushed_groups(gateway: Pushgateway) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = httpx.get(f"{gateway.url}/api/v1/metrics", timeout=5).json()["data"]
    return groups


def probe_project(pytester: pytest.Pytester, probes: str) -> None:
    pytester.makefile(".yaml", monitoring=CONFIG)
    pytester.mkpydir("probes")
    (pytester.path / "probes" / "test_probes.py").write_text(probes)


# --- what the run says about itself -------------------------------------------------------------


def test_report_header_shows_every_resolved_setting_and_its_source(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    probe_project(pytester, "def test_nothing(slo_config):\n    pass\n")
    monkeypatch.setenv("SLO_ENV", "")
    result = run(pytester, "probes", "--pushgateway", "http://user:hunter2@127.0.0.1:9", "--no-push")
    result.stdout.fnmatch_lines(
        [
            "slo: config */monitoring.yaml (default), environment local (default)",
            "slo: pushgateway off (--no-push), state file */state/state.json",
        ]
    )
    result = run(pytester, "probes", "--pushgateway", "http://user:hunter2@127.0.0.1:9")
    result.stdout.fnmatch_lines(["slo: pushgateway http://127.0.0.1:9 (--pushgateway), state file *"])
    assert "hunter2" not in result.stdout.str()


def test_a_bad_value_names_where_it_came_from(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    probe_project(pytester, "def test_nothing(slo_config):\n    pass\n")
    monkeypatch.setenv("PUSHGATEWAY_URL", "pg:9091")
    result = run(pytester, "probes")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: PUSHGATEWAY_URL environment variable: invalid URL 'pg:9091'*"])
    pytester.makeini("[pytest]\nslo_pushgateway = pg:9092\n")
    monkeypatch.delenv("PUSHGATEWAY_URL")
    result = run(pytester, "probes")
    result.stderr.fnmatch_lines(["ERROR: slo_pushgateway in the pytest ini file: invalid URL 'pg:9092'*"])


# --- the probe marker ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        (
            '@pytest.mark.probe("api")',
            "*@pytest.mark.probe takes keyword arguments only (target=, slo=, kind=, alert=)*",
        ),
        (
            '@pytest.mark.probe(targt="api")',
            "*@pytest.mark.probe: unknown argument targt= (known: target, slo, kind, alert)",
        ),
    ],
)
@pytest.mark.parametrize(
    "workers",
    [pytest.param([], id="one process"), pytest.param(["-n", "2"], id="xdist", marks=pytest.mark.slow)],
)
def test_a_malformed_probe_marker_is_a_usage_error(
    pytester: pytest.Pytester, marker: str, message: str, workers: list[str]
) -> None:
    probe_project(pytester, f"import pytest\n\n{marker}\ndef test_api():\n    pass\n")
    result = run(pytester, "probes", *workers)
    output = result.stdout.lines + result.stderr.lines
    if workers:  # a worker cannot end the session: the probe errors, naming the mistake
        result.assert_outcomes(errors=1)
    else:
        assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert any(fnmatch.fnmatch(line, message) for line in output), "\n".join(output)


# --- only probes are reported --------------------------------------------------------------------


def test_only_probes_are_pushed_and_a_conftest_can_say_what_is_not_a_probe(
    pytester: pytest.Pytester, pushgateway: Pushgateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    probe_project(
        pytester,
        "import pytest\n\n"
        "def test_in_probe_dir():\n    pass\n\n"
        "@pytest.mark.probe(target='api')\ndef test_marked():\n    pass\n",
    )
    pytester.mkpydir("other")
    (pytester.path / "other" / "test_other.py").write_text(
        "import pytest\n\n"
        "def test_plain():\n    pass\n\n"
        "def test_uses_fixture(slo_config):\n    pass\n\n"
        "@pytest.mark.probe(target='api')\ndef test_declined():\n    pass\n"
    )
    (pytester.path / "other" / "conftest.py").write_text(
        "def pytest_slo_is_probe(item):\n    return False if item.name == 'test_declined' else None\n"
    )
    monkeypatch.setenv("TEST_PUSHGATEWAY", pushgateway.url)
    result = run(pytester, ".")
    result.assert_outcomes(passed=5)
    probes = {
        metric["labels"]["probe"]
        for group in pushed_groups(pushgateway)
        for metric in group.get("synthetic_probe_success", {"metrics": []})["metrics"]
    }
    assert probes == {
        "probes/test_probes.py::test_in_probe_dir",
        "probes/test_probes.py::test_marked",
        "other/test_other.py::test_uses_fixture",
    }


# --- inert outside probe projects ------------------------------------------------------------------

UNRELATED = "def test_unrelated():\n    assert 1 + 1 == 2\n"


def unrelated_project(pytester: pytest.Pytester) -> None:
    pytester.mkpydir("tests")
    (pytester.path / "tests" / "test_app.py").write_text(UNRELATED)


@pytest.mark.parametrize(
    "stray",
    ["another tool's monitoring.yaml", "PUSHGATEWAY_URL without a scheme", "SLO_ENV of another project"],
)
def test_stray_settings_never_change_an_unrelated_projects_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, stray: str
) -> None:
    unrelated_project(pytester)
    if stray.startswith("another tool"):
        pytester.makefile(".yaml", monitoring="checks:\n  - http: https://example.invalid\n")
    elif stray.startswith("PUSHGATEWAY_URL"):
        monkeypatch.setenv("PUSHGATEWAY_URL", "host:9091")
    else:
        monkeypatch.setenv("SLO_ENV", "production")
    result = run(pytester)
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    assert not (pytester.path / "reports").exists()
    assert "slo:" not in result.stdout.str()


def test_slo_config_in_the_environment_pushes_nothing_of_an_unrelated_project(
    pytester: pytest.Pytester, pushgateway: Pushgateway, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    unrelated_project(pytester)
    config = tmp_path / "elsewhere" / "monitoring.yaml"
    config.parent.mkdir()
    config.write_text(CONFIG)
    monkeypatch.setenv("SLO_CONFIG", str(config))
    monkeypatch.setenv("TEST_PUSHGATEWAY", pushgateway.url)
    result = run(pytester)
    result.assert_outcomes(passed=1)
    assert pushed_groups(pushgateway) == []
    assert not (pytester.path / "reports").exists()
    assert not Path(str(tmp_path / "state" / "state.json")).exists()


def test_an_unrelated_run_imports_none_of_the_probe_machinery(pytester: pytest.Pytester) -> None:
    unrelated_project(pytester)
    pytester.makeconftest(
        "import json, sys\n"
        "def pytest_sessionfinish(session):\n"
        "    heavy = ['httpx', 'pydantic', 'yaml', 'prometheus_client', 'slo.config', 'slo.report']\n"
        "    with open('loaded.json', 'w') as f:\n"
        "        json.dump([m for m in heavy if m in sys.modules], f)\n"
    )
    run(pytester).assert_outcomes(passed=1)
    assert json.loads((pytester.path / "loaded.json").read_text()) == []


def test_load_conftest_works_without_the_plugin() -> None:
    repo = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(repo / "load"),
            "-p",
            "no:slo",
            "-p",
            "no:locust",
            "--collect-only",
            "-q",
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test_threshold[total p95]" in result.stdout


# --- the run deadline ---------------------------------------------------------------------------


@pytest.mark.slow
def test_the_run_deadline_fails_what_still_waits_and_the_run_is_still_pushed(
    pytester: pytest.Pytester, pushgateway: Pushgateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    with HostileServer() as target:
        pytester.makefile(
            ".yaml",
            monitoring=CONFIG.replace('"http://127.0.0.1:9", timeout: 1s', f'"{target.url}", timeout: 60s'),
        )
        pytester.mkpydir("probes")
        (pytester.path / "probes" / "test_probes.py").write_text(
            "def test_hangs(http):\n    http('api').get('/trickle-headers')\n\n"
            "def test_after_it(http):\n    http('api').get('/slow')\n"
        )
        monkeypatch.setenv("TEST_PUSHGATEWAY", pushgateway.url)
        started = time.monotonic()
        result = run(pytester, "probes", "--slo-run-deadline", "2s")
        elapsed = time.monotonic() - started
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["slo: run deadline 2s (--slo-run-deadline)", "*the run deadline*"])
    # A bound against the 60 s target timeout (which would hold each probe), not a speed goal.
    assert elapsed < 45
    reasons = {
        metric["labels"]["probe"]: metric["labels"]["reason"]
        for group in pushed_groups(pushgateway)
        for metric in group.get("synthetic_probe_last_failure_timestamp_seconds", {"metrics": []})["metrics"]
    }
    assert reasons == {
        "probes/test_probes.py::test_hangs": "timeout",
        "probes/test_probes.py::test_after_it": "timeout",
    }


def test_a_bad_run_deadline_is_a_usage_error(pytester: pytest.Pytester) -> None:
    probe_project(pytester, "def test_nothing(slo_config):\n    pass\n")
    result = run(pytester, "probes", "--slo-run-deadline", "soon")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --slo-run-deadline: invalid duration 'soon'*"])
