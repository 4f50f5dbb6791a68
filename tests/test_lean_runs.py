"""A probe run loads only what it uses: pytest's own JUnit writer can be left out, the
optional plugins (xdist, rerunfailures, timeout, anyio, allure) only load when their options
or markers are in play, and a plain-http run never builds a TLS context."""

from __future__ import annotations

import importlib
import inspect
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from slo.leanplugins import OPTIONAL_PLUGINS, OptionalPlugin

REPO = Path(__file__).resolve().parents[1]
#: The exclusions a probe run from the checkout runs with (pyproject.toml's addopts).
ADDOPTS: list[str] = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"][
    "addopts"
]

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


# --- the optional plugins load only when in play --------------------------------------------------

#: Records which optional plugins the run loaded, and whether rerunfailures' socket server ran.
RECORDER = """
import json, threading

def pytest_sessionfinish(session):
    manager = session.config.pluginmanager
    names = ["xdist", "rerunfailures", "timeout", "allure_pytest", "anyio"]
    loaded = [name for name in names if manager.get_plugin(name) is not None]
    threads = [thread.name for thread in threading.enumerate()]
    db = type(getattr(session.config, "failures_db", None)).__name__
    with open("loaded.json", "w") as out:
        json.dump({"loaded": loaded, "threads": threads, "failures_db": db}, out)
"""


def lean_project(pytester: pytest.Pytester, tests: str, *extra_ini: str) -> None:
    """A project with the checkout's exclusions in its ini and a conftest that records what
    the run loaded."""
    pytester.makeini("\n".join(["[pytest]", "addopts = " + " ".join(ADDOPTS), *extra_ini]) + "\n")
    pytester.makeconftest(RECORDER)
    pytester.makepyfile(test_lean=tests)


def loaded(pytester: pytest.Pytester) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((pytester.path / "loaded.json").read_text())
    return found


def test_a_run_that_uses_no_optional_plugin_loads_none(pytester: pytest.Pytester) -> None:
    lean_project(pytester, "def test_one():\n    pass\n")
    pytester.runpytest_subprocess(timeout=120).assert_outcomes(passed=1)
    assert loaded(pytester)["loaded"] == []


@pytest.mark.parametrize(
    ("args", "plugin"),
    [
        (["-n", "1"], "xdist"),
        (["--numprocesses=1"], "xdist"),
        (["--reruns", "1"], "rerunfailures"),
        (["--timeout=30"], "timeout"),
        (["--alluredir", "allure"], "allure_pytest"),
        (["-p", "timeout"], "timeout"),
    ],
)
def test_an_option_in_play_loads_its_plugin(pytester: pytest.Pytester, args: list[str], plugin: str) -> None:
    lean_project(pytester, "def test_one():\n    pass\n")
    result = pytester.runpytest_subprocess(*args, timeout=120)
    result.assert_outcomes(passed=1)
    assert plugin in loaded(pytester)["loaded"]
    # The optional plugins the run does not use stay out (xdist takes rerunfailures along).
    others = {"xdist", "rerunfailures"} if plugin == "xdist" else {plugin}
    assert set(loaded(pytester)["loaded"]) == others


def test_an_ini_setting_or_environment_variable_puts_the_plugin_in_play(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    lean_project(pytester, "import time\ndef test_slow():\n    time.sleep(30)\n", "timeout = 1")
    result = pytester.runpytest_subprocess(timeout=120)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Timeout*"])
    monkeypatch.setenv("PYTEST_TIMEOUT", "1")
    lean_project(pytester, "import time\ndef test_slow():\n    time.sleep(30)\n")
    result = pytester.runpytest_subprocess(timeout=120)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Timeout*"])


def test_the_flaky_marker_reruns_without_a_socket_server(pytester: pytest.Pytester) -> None:
    lean_project(
        pytester,
        "import pytest\nattempts = []\n\n"
        "@pytest.mark.flaky(reruns=2)\n"
        "def test_second_time_lucky():\n"
        "    attempts.append(1)\n"
        "    assert len(attempts) > 1\n",
    )
    result = pytester.runpytest_subprocess(timeout=120)
    assert result.parseoutcomes() == {"passed": 1, "rerun": 1}
    assert loaded(pytester)["loaded"] == ["rerunfailures"]
    # Without xdist, rerunfailures keeps its bookkeeping in the process: no server.
    assert loaded(pytester)["failures_db"] == "StatusDB"


def test_the_timeout_marker_bounds_the_test(pytester: pytest.Pytester) -> None:
    lean_project(
        pytester,
        "import pytest, time\n\n@pytest.mark.timeout(1)\ndef test_hangs():\n    time.sleep(30)\n",
    )
    result = pytester.runpytest_subprocess(timeout=120)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Timeout (>1.0s)*"])


def test_the_anyio_marker_runs_an_async_test(pytester: pytest.Pytester) -> None:
    lean_project(
        pytester,
        "import pytest, anyio\nran = []\n\n"
        "@pytest.mark.anyio\n"
        "async def test_async():\n"
        "    await anyio.sleep(0)\n"
        "    ran.append(1)\n\n"
        "def test_it_ran():\n"
        "    assert ran\n",
        "anyio_mode = strict",
    )
    # anyio runs the marked test once per backend it offers (asyncio only by default).
    result = pytester.runpytest_subprocess(timeout=120)
    result.assert_outcomes(passed=2)
    assert loaded(pytester)["loaded"] == ["anyio"]


class _Recorder:
    """Stands in for pytest's parser and its option groups: records every option and ini name
    a plugin declares."""

    def __init__(self) -> None:
        self.options: set[str] = set()
        self.ini: set[str] = set()

    def getgroup(self, *args: object, **kwargs: object) -> _Recorder:
        return self

    def addoption(self, *names: str, **kwargs: object) -> None:
        self.options.update(names)

    _addoption = addoption

    def addini(self, name: str, *args: object, **kwargs: object) -> None:
        self.ini.add(name)


@pytest.mark.parametrize("plugin", OPTIONAL_PLUGINS, ids=lambda plugin: plugin.names[0])
def test_every_option_and_ini_setting_of_an_optional_plugin_puts_it_in_play(plugin: OptionalPlugin) -> None:
    # Fails when a new version of the plugin adds an option this project does not know yet.
    from importlib.metadata import entry_points

    recorder = _Recorder()
    for entry in entry_points(group="pytest11"):
        if entry.name in plugin.names:
            module = importlib.import_module(entry.value)
            hook = getattr(module, "pytest_addoption", None)
            if hook is not None:
                given = {"parser": recorder, "pluginmanager": None}
                hook(**{name: given[name] for name in inspect.signature(hook).parameters})
    assert recorder.options <= set(plugin.options)
    assert recorder.ini <= set(plugin.ini)
