"""Every probe run becomes metrics on a real Pushgateway, and no event is ever lost.

Each test builds a small probe project with pytester, runs it (in a subprocess, as a timer
would) against a real `prometheus-pushgateway` and reads back what arrived through the
Pushgateway's own API.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
from loopback import loopback_server, url_of

from devstack.daemons import Pushgateway

CONFIG = """
version: 1
environments:
  local:
    targets:
      api: {url: "http://127.0.0.1:9", timeout: 1s}
      gateway: {url: "http://127.0.0.1:9", timeout: 1s}
pushgateway:
  deadline: 3s
  timeout: 1s
slos:
  - {name: api-availability, objective: 99.9, sli: {kind: probes, target: api}}
  - {name: api-probe-latency, objective: 95, sli: {kind: probe_latency, target: api, threshold: 1500ms}}
"""

PROBES = """
import json
import os
import pytest

@pytest.mark.probe(target="api", slo="api-availability")
def test_passes():
    pass

@pytest.mark.probe(target="api", slo="api-availability")
def test_fails_when_asked():
    assert os.environ.get("FAIL") != "1", "asked to fail"

@pytest.mark.probe(target="gateway")
def test_unreachable(http):
    http().get("/health")

def test_skipped():
    pytest.skip("not this time")
"""


@pytest.fixture
def pushgateway() -> Iterator[Pushgateway]:
    with Pushgateway() as gateway:
        yield gateway


@pytest.fixture
def project(
    pytester: pytest.Pytester,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> pytest.Pytester:
    pytester.makefile(".yaml", monitoring=CONFIG)
    # The whole project is probes (as if they lived under probes/), so every test is reported.
    pytester.makeini("[pytest]\nslo_probe_paths = .\n")
    pytester.makepyfile(test_probes=PROBES)
    monkeypatch.setenv("SLO_STATE_FILE", str(tmp_path_factory.mktemp("state") / "state.json"))
    monkeypatch.setenv("SLO_INSTANCE", "runner-1")
    monkeypatch.delenv("PUSHGATEWAY_URL", raising=False)
    monkeypatch.delenv("FAIL", raising=False)
    return pytester


def run(project: pytest.Pytester, *args: str, fail: bool = False) -> pytest.RunResult:
    """One probe run in its own process, as a timer would start it."""
    extra = ["-o", "python_files=test_*.py"]
    if fail:
        project.makeconftest("import os\nos.environ['FAIL'] = '1'\n")
    try:
        return project.runpytest_subprocess(
            "-p", "no:locust", "-p", "no:cacheprovider", *extra, *args, timeout=120
        )
    finally:
        if fail:
            (project.path / "conftest.py").unlink()


def series(gateway_url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Everything in the Pushgateway, read through its API: name -> [(labels, value)]."""
    groups = httpx.get(f"{gateway_url}/api/v1/metrics", timeout=5).json()["data"]
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for group in groups:
        for name, family in group.items():
            if not isinstance(family, dict) or "metrics" not in family:
                continue
            for metric in family["metrics"]:
                labels = metric["labels"]
                if "value" in metric:
                    found.setdefault(name, []).append((labels, float(metric["value"])))
                else:  # histogram: keep count and the buckets
                    found.setdefault(name, []).append((labels, float(metric["count"])))
                    for bound, count in metric.get("buckets", {}).items():
                        found.setdefault(f"{name}_bucket", []).append(({**labels, "le": bound}, float(count)))
    return found


def by_probe(found: dict[str, list[tuple[dict[str, str], float]]], name: str) -> dict[str, float]:
    return {labels["probe"].split("::")[-1]: value for labels, value in found.get(name, [])}


@pytest.mark.slow
def test_every_probe_arrives_with_labels_and_values(
    project: pytest.Pytester, pushgateway: Pushgateway
) -> None:
    result = run(project, "--pushgateway", pushgateway.url, fail=True)
    result.assert_outcomes(passed=1, failed=2, skipped=1)
    result.stdout.fnmatch_lines(
        ["*pushed 4 probe results to http://127.0.0.1:*/metrics/job/synthetic-probes*"]
    )

    found = series(pushgateway.url)
    success = found["synthetic_probe_success"]
    labels = {entry[0]["probe"].split("::")[-1]: entry[0] for entry in success}
    assert labels["test_passes"] == {
        "job": "synthetic-probes",
        "environment": "local",
        "instance": "runner-1",
        "location": "runner-1",
        "probe": "test_probes.py::test_passes",
        "target": "api",
        "slo": "api-availability",
        "kind": "availability",
    }
    assert labels["test_unreachable"]["target"] == "gateway"
    assert by_probe(found, "synthetic_probe_success") == {
        "test_passes": 1.0,
        "test_fails_when_asked": 0.0,
        "test_unreachable": 0.0,
    }, "skipped probes are not runs, so they have no success series"
    assert by_probe(found, "synthetic_probe_runs_total") == {
        "test_passes": 1.0,
        "test_fails_when_asked": 1.0,
        "test_unreachable": 1.0,
    }
    assert by_probe(found, "synthetic_probe_failures_total")["test_fails_when_asked"] == 1.0
    reasons = {
        labels["probe"].split("::")[-1]: labels["reason"]
        for labels, _ in found["synthetic_probe_last_failure_timestamp_seconds"]
    }
    assert reasons == {"test_fails_when_asked": "assertion", "test_unreachable": "connect"}
    outcomes = {labels["outcome"]: value for labels, value in found["synthetic_suite_probes"]}
    assert outcomes == {"passed": 1.0, "degraded": 0.0, "failed": 2.0, "skipped": 1.0, "error": 0.0}
    last_run = found["synthetic_suite_last_run_timestamp_seconds"][0][1]
    assert abs(time.time() - last_run) < 120
    bounds = {labels["le"] for labels, _ in found["synthetic_probe_latency_seconds_bucket"]}
    assert {"1.5", "2"} <= bounds, "buckets include every SLO threshold"


@pytest.mark.slow
def test_two_runs_accumulate_counters_and_replace_gauges(
    project: pytest.Pytester, pushgateway: Pushgateway
) -> None:
    run(project, "--pushgateway", pushgateway.url).assert_outcomes(passed=2, failed=1, skipped=1)
    run(project, "--pushgateway", pushgateway.url, fail=True).assert_outcomes(passed=1, failed=2, skipped=1)
    found = series(pushgateway.url)
    assert by_probe(found, "synthetic_probe_runs_total") == {
        "test_passes": 2.0,
        "test_fails_when_asked": 2.0,
        "test_unreachable": 2.0,
    }
    assert by_probe(found, "synthetic_probe_failures_total") == {
        "test_passes": 0.0,
        "test_fails_when_asked": 1.0,
        "test_unreachable": 2.0,
    }
    assert by_probe(found, "synthetic_probe_success")["test_fails_when_asked"] == 0.0


@pytest.mark.slow
def test_xdist_pushes_once_from_the_controller(project: pytest.Pytester, pushgateway: Pushgateway) -> None:
    many = "\n".join(f"@pytest.mark.probe(target='api')\ndef test_many_{i}():\n    pass\n" for i in range(30))
    project.makepyfile(test_many=f"import pytest\n{many}")
    for _ in range(2):
        result = run(project, "-n", "2", "--pushgateway", pushgateway.url)
        result.assert_outcomes(passed=32, failed=1, skipped=1)
        # exactly one push line: workers never push
        assert sum("pushed " in line for line in result.outlines) == 1
    collected = run(project, "--collect-only", "-q").outlines
    counted = {test_id for test_id in collected if "::" in test_id and "test_skipped" not in test_id}
    runs = {labels["probe"]: value for labels, value in series(pushgateway.url)["synthetic_probe_runs_total"]}
    assert set(runs) == counted, "no series missing, none extra"
    assert set(runs.values()) == {2.0}


@pytest.mark.slow
def test_down_pushgateway_loses_nothing(project: pytest.Pytester, pushgateway: Pushgateway) -> None:
    run(project, "--pushgateway", pushgateway.url)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        down_url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    down = run(project, "--pushgateway", down_url)
    down.assert_outcomes(passed=2, failed=1, skipped=1)
    assert down.ret == pytest.ExitCode.TESTS_FAILED, "the exit code reflects the probes only"
    down.stdout.fnmatch_lines(
        ["*WARNING: push to http://127.0.0.1:*failed: connection refused*next push carries*"]
    )
    run(project, "--pushgateway", pushgateway.url)
    assert set(by_probe(series(pushgateway.url), "synthetic_probe_runs_total").values()) == {3.0}


@pytest.mark.slow
def test_push_failure_keeps_exit_code_unless_required(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_probes="import pytest\n\n@pytest.mark.probe(target='api')\ndef test_ok():\n    pass\n"
    )
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        down_url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    assert run(project, "--pushgateway", down_url).ret == pytest.ExitCode.OK
    assert run(project, "--pushgateway", down_url, "--push-required").ret == pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def hung_server() -> Iterator[str]:
    """A loopback socket that accepts connections and never answers."""
    server = socket.create_server(("127.0.0.1", 0), backlog=16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    server.close()


@pytest.mark.slow
def test_hung_pushgateway_ends_within_the_push_deadline(project: pytest.Pytester, hung_server: str) -> None:
    result = run(project, "--pushgateway", hung_server)
    line = next(line for line in result.stdout.lines if "WARNING: push to" in line)
    assert "failed: timed out" in line
    # The push's own time, as it reports it: the whole process would also count pytest's
    # start-up, which a busy machine stretches. A bound against hanging (the client library
    # would wait 30 s per attempt), with room over the 3 s deadline.
    spent = float(re.search(r"attempt\(s\), ([\d.]+) s\)", line).group(1))  # type: ignore[union-attr]
    assert spent < 6


class _Unauthorized(http.server.BaseHTTPRequestHandler):
    """Answers 401 to every PUT and keeps the Authorization header it was sent."""

    authorizations: ClassVar[list[str]] = []

    def do_PUT(self) -> None:
        self.authorizations.append(self.headers.get("Authorization", ""))
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(401)
        self.send_header("Content-Length", "12")
        self.end_headers()
        self.wfile.write(b"unauthorized")

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.slow
def test_wrong_auth_is_not_retried_and_credentials_are_never_printed(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _Unauthorized.authorizations.clear()
    project.makefile(
        ".yaml",
        monitoring=CONFIG.replace(
            "pushgateway:\n", "pushgateway:\n  username: prober\n  password: ${PG_PASSWORD}\n"
        ),
    )
    monkeypatch.setenv("PG_PASSWORD", "hunter2-secret")
    with loopback_server(_Unauthorized) as server:
        result = run(project, "--pushgateway", url_of(server))
    result.stdout.fnmatch_lines(["*WARNING: push to*failed: HTTP 401: unauthorized (after 1 attempt(s)*"])
    assert len(_Unauthorized.authorizations) == 1
    assert _Unauthorized.authorizations[0].startswith("Basic ")
    output = "\n".join(result.outlines + result.errlines)
    assert "hunter2-secret" not in output
    junit = Path(project.path, "reports", "junit.xml").read_text()
    assert "hunter2-secret" not in junit


@pytest.mark.slow
def test_rerun_counts_one_run_one_retry_no_failure(
    project: pytest.Pytester, pushgateway: Pushgateway
) -> None:
    marker = project.path / "attempted"
    project.makepyfile(
        test_probes=f"""
import pathlib
import pytest

@pytest.mark.probe(target="api")
def test_flaky():
    marker = pathlib.Path({str(marker)!r})
    if not marker.exists():
        marker.touch()
        raise AssertionError("first attempt fails")
"""
    )
    result = run(project, "--reruns", "1", "--pushgateway", pushgateway.url)
    outcomes = result.parseoutcomes()
    assert (outcomes.get("passed"), outcomes.get("rerun"), outcomes.get("failed")) == (1, 1, None)
    found = series(pushgateway.url)
    assert by_probe(found, "synthetic_probe_runs_total") == {"test_flaky": 1.0}
    assert by_probe(found, "synthetic_probe_retries_total") == {"test_flaky": 1.0}
    assert by_probe(found, "synthetic_probe_failures_total") == {"test_flaky": 0.0}
    assert by_probe(found, "synthetic_probe_success") == {"test_flaky": 1.0}


@pytest.mark.slow
def test_corrupt_state_file_is_reported_kept_and_replaced(
    project: pytest.Pytester, pushgateway: Pushgateway
) -> None:
    state = Path(os.environ.get("SLO_STATE_FILE", ""))
    state.write_text("{not json")
    result = run(project, "--pushgateway", pushgateway.url)
    result.stdout.fnmatch_lines(["*WARNING: state file * was unreadable (*); kept as state.json.corrupt-*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # one probe is unreachable: unrelated to the state
    assert list(state.parent.glob("state.json.corrupt-*")), "the unreadable file is kept for a look"
    assert set(by_probe(series(pushgateway.url), "synthetic_probe_runs_total").values()) == {1.0}


@pytest.mark.slow
def test_overlapping_runs_neither_lose_nor_double_count(
    project: pytest.Pytester, pushgateway: Pushgateway
) -> None:
    project.makepyfile(
        test_probes="import time, pytest\n\n"
        "@pytest.mark.probe(target='api')\ndef test_slow():\n    time.sleep(1)\n"
    )
    results: list[pytest.RunResult] = []
    threads = [
        threading.Thread(target=lambda: results.append(run(project, "--pushgateway", pushgateway.url)))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.ret for r in results] == [0, 0, 0]
    assert by_probe(series(pushgateway.url), "synthetic_probe_runs_total") == {"test_slow": 3.0}


@pytest.mark.slow
def test_no_push_and_no_pushgateway_leave_the_state_alone(
    project: pytest.Pytester, pushgateway: Pushgateway
) -> None:
    run(project, "--pushgateway", pushgateway.url, "--no-push").stdout.no_fnmatch_line("*pushed*")
    run(project).stdout.no_fnmatch_line("*pushed*")
    assert not Path(os.environ["SLO_STATE_FILE"]).exists()
    assert series(pushgateway.url) == {}


@pytest.mark.slow
def test_a_probe_module_that_fails_to_import_is_a_failed_run(
    project: pytest.Pytester, pushgateway: Pushgateway
) -> None:
    project.makepyfile(test_broken="import no_such_module_here\n")
    result = run(project, "--pushgateway", pushgateway.url)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    found = series(pushgateway.url)
    assert by_probe(found, "synthetic_probe_failures_total")["test_broken.py"] == 1.0
    reasons = {
        labels["probe"]: labels["reason"]
        for labels, _ in found["synthetic_probe_last_failure_timestamp_seconds"]
    }
    assert reasons["test_broken.py"] == "error"
    assert {labels["outcome"]: value for labels, value in found["synthetic_suite_probes"]}["error"] == 1.0


def test_junit_by_default_and_allure_when_asked(project: pytest.Pytester) -> None:
    result = run(project, "--alluredir", "reports/allure-results")
    result.assert_outcomes(passed=2, failed=1, skipped=1)
    junit = (project.path / "reports" / "junit.xml").read_text()
    assert 'name="test_unreachable"' in junit
    assert "connection refused" in junit
    results = [
        json.loads(p.read_text()) for p in (project.path / "reports" / "allure-results").glob("*-result.json")
    ]
    assert {r["name"]: r["status"] for r in results} == {
        "test_passes": "passed",
        "test_fails_when_asked": "passed",
        "test_unreachable": "failed",
        "test_skipped": "skipped",
    }


@pytest.mark.slow
def test_a_timed_out_request_counts_as_slow_in_the_latency_histogram(
    project: pytest.Pytester, pushgateway: Pushgateway, hung_server: str
) -> None:
    """A hang is the slowest answer of all: the probe_latency SLI must see it, not skip it."""
    project.makefile(
        ".yaml",
        monitoring=CONFIG.replace('"http://127.0.0.1:9", timeout: 1s', f'"{hung_server}", timeout: 300ms', 1),
    )
    project.makepyfile(
        test_probes="import pytest\n\n"
        "@pytest.mark.probe(target='api')\ndef test_hangs(http):\n    http().get('/')\n"
    )
    result = run(project, "--pushgateway", pushgateway.url)
    result.assert_outcomes(failed=1)
    found = series(pushgateway.url)
    assert by_probe(found, "synthetic_probe_latency_seconds") == {"test_hangs": 1.0}
    buckets = {labels["le"]: value for labels, value in found["synthetic_probe_latency_seconds_bucket"]}
    assert buckets["0.25"] == 0.0
    assert buckets["+Inf"] == 1.0
    reasons = {labels["reason"] for labels, _ in found["synthetic_probe_last_failure_timestamp_seconds"]}
    assert reasons == {"timeout"}


SUITE = """
import os
import pytest

FAIL = os.environ.get("FAIL") == "1"

@pytest.mark.probe(target="api")
@pytest.mark.parametrize("n", range(5))
def test_api_endpoint(n):
    assert not FAIL, f"endpoint {n} down"

@pytest.mark.probe(target="api", slo="sandbox-availability")
def test_sandbox():
    assert not FAIL, "sandbox down"

@pytest.mark.probe(target="api", kind="budget")
def test_api_5xx_ratio():
    assert False, "5xx ratio over budget"

@pytest.mark.probe(target="runner-host", kind="resource")
def test_disk():
    assert False, "disk full"
"""


def test_one_run_is_one_event_per_target_whatever_fails_in_it(
    project: pytest.Pytester, pushgateway: Pushgateway
) -> None:
    project.makefile(
        ".yaml",
        monitoring=CONFIG
        + "  - {name: sandbox-availability, objective: 99.9,\n"
        + "     sli: {kind: probes, target: api, probe: '*sandbox*'}}\n",
    )
    project.makepyfile(test_probes=SUITE)
    run(project, "--pushgateway", pushgateway.url).assert_outcomes(passed=6, failed=2)
    run(project, "--pushgateway", pushgateway.url, fail=True).assert_outcomes(failed=8)
    found = series(pushgateway.url)

    def counters(name: str) -> dict[tuple[str, str], float]:
        return {(labels["target"], labels["slo"]): value for labels, value in found[name]}

    # Two runs; the second failed six api probes at once: one bad run, not six.
    assert counters("synthetic_target_runs_total") == {("api", ""): 2.0, ("api", "sandbox-availability"): 2.0}
    assert counters("synthetic_target_failed_runs_total") == {
        ("api", ""): 1.0,
        ("api", "sandbox-availability"): 1.0,
    }, "the budget and resource probes failed both runs and count for no target's availability"
    # The per-probe counters stay for drill-down, with the probe's kind and its failure.
    kinds = {
        labels["probe"].split("::")[-1]: labels["kind"] for labels, _ in found["synthetic_probe_runs_total"]
    }
    assert kinds["test_api_5xx_ratio"] == "budget"
    assert kinds["test_disk"] == "resource"
    assert kinds["test_api_endpoint[0]"] == "availability"
    assert by_probe(found, "synthetic_probe_failures_total")["test_api_endpoint[3]"] == 1.0
    messages = {
        labels["probe"].split("::")[-1]: (labels["reason"], labels["message"])
        for labels, _ in found["synthetic_probe_last_failure_timestamp_seconds"]
    }
    assert messages["test_sandbox"] == ("assertion", "sandbox down")


def test_an_unknown_probe_kind_is_a_usage_error(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_probes=(
            "import pytest\n\n@pytest.mark.probe(target='api', kind='latency')\ndef test_x():\n    pass\n"
        )
    )
    result = run(project)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*kind='latency' is not one of availability, budget, resource*"])
