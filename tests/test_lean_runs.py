"""A probe run loads only what it uses: pytest's own JUnit writer can be left out, the
optional plugins (xdist, rerunfailures, timeout, anyio, allure) only load when their options
or markers are in play, and a plain-http run never builds a TLS context."""

from __future__ import annotations

import importlib
import inspect
import json
import socket
import ssl
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import trustme
from loopback import loopback_server, url_of

from slo.config import Target
from slo.exchange import tls
from slo.exchange.failures import ProbeFailure
from slo.leanplugins import OPTIONAL_PLUGINS, OptionalPlugin, in_play
from slo.probe.client import ProbeClient

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
        # On the module: a marker of a test's module or class counts as the test's own.
        "import pytest, time\n\npytestmark = pytest.mark.timeout(1)\n\n"
        "def test_hangs():\n    time.sleep(30)\n",
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


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-n", "2"], True),
        (["-n2"], True),
        (["--numprocesses=auto"], True),
        (["--dist", "load"], True),
        (["--durations=5", "-x", "probes/"], False),
        (["probes/test_x.py::test_y[-n]"], False),
        ([], False),
    ],
)
def test_which_arguments_put_xdist_in_play(args: list[str], expected: bool) -> None:
    [xdist] = [plugin for plugin in OPTIONAL_PLUGINS if plugin.names[0] == "xdist"]
    assert in_play(xdist, args, ini=()) is expected


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


# --- TLS only where there is TLS ------------------------------------------------------------------


class Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def bundle_loads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Every CA bundle loaded, with fresh shared contexts before and after the test."""
    loads: list[object] = []
    original = ssl.SSLContext.load_verify_locations

    def counted(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loads.append(args or kwargs)
        original(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counted)
    tls.verifying_context.cache_clear()
    tls.context_on_first_handshake.cache_clear()
    yield loads
    tls.verifying_context.cache_clear()
    tls.context_on_first_handshake.cache_clear()


@pytest.fixture(scope="module")
def untrusted_https() -> Iterator[str]:
    """An https server whose certificate no public CA signed."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(context)
    with loopback_server(Ok, context) as server:
        yield url_of(server, "https")


def test_a_plain_http_target_loads_no_ca_bundle_and_https_is_still_verified(
    bundle_loads: list[object], untrusted_https: str
) -> None:
    with loopback_server(Ok) as server, ProbeClient("api", Target(url=url_of(server), timeout=5)) as client:
        assert client.get("/health").status_code == 200
        assert bundle_loads == []
        # Asked for an https URL, the same client verifies it against the default bundle.
        with pytest.raises(ProbeFailure) as failure:
            client.get(f"{untrusted_https}/health")
    assert failure.value.reason == "tls"
    assert len(bundle_loads) == 1


def test_an_https_target_loads_its_bundle_before_the_first_handshake(
    bundle_loads: list[object], tmp_path: Path
) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with loopback_server(Ok, context) as server:
        target = Target(url=url_of(server, "https"), ca_file=ca_file, timeout=5)
        with ProbeClient("api", target) as client:
            # Loaded when the client is made: not inside the first request's timed tls phase.
            assert len(bundle_loads) == 1
            assert client.get("/health").status_code == 200
    assert len(bundle_loads) == 1


def test_threads_handshaking_at_once_load_a_deferred_bundle_once(
    bundle_loads: list[object], untrusted_https: str
) -> None:
    context = tls.context_on_first_handshake()
    port = int(untrusted_https.rsplit(":", 1)[1])
    start = threading.Barrier(16)
    errors: list[BaseException] = []

    def handshake() -> None:
        start.wait(timeout=30)
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=10) as sock,
                context.wrap_socket(sock, server_hostname="127.0.0.1"),
            ):
                pass
        except ssl.SSLCertVerificationError as exc:  # the public bundle does not trust it
            errors.append(exc)

    threads = [threading.Thread(target=handshake) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(errors) == 16
    assert len(bundle_loads) == 1


# --- what a run keeps per check -------------------------------------------------------------------

KEPT = """
import json, pytest

@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    terminal = session.config.pluginmanager.get_plugin("terminalreporter")
    with open("kept.json", "w") as out:
        json.dump({key: len(reports) for key, reports in terminal.stats.items()}, out)
"""

PROBES_WITH_TEARDOWN_OUTPUT = """
import pytest

@pytest.fixture
def noisy():
    yield
    print("teardown says hello")

@pytest.mark.parametrize("n", range(5))
def test_probe(slo_config, noisy, n):
    pass
"""


def test_passing_setup_and_teardown_reports_are_not_kept_unless_shown(pytester: pytest.Pytester) -> None:
    probe_project(pytester, PROBES_WITH_TEARDOWN_OUTPUT)
    pytester.makeconftest(KEPT)
    run(pytester, "probes", "--no-push").assert_outcomes(passed=5)
    kept = json.loads((pytester.path / "kept.json").read_text())
    assert kept["passed"] == 5
    # pytest alone keeps 10 here (a setup and a teardown report per test); the last may stay.
    assert kept.get("", 0) <= 1
    # -rA shows each passing test's teardown output, which needs those reports.
    result = run(pytester, "probes", "--no-push", "-rA")
    assert result.stdout.str().count("teardown says hello") == 5
