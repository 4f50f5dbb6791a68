"""Declarative checks (`checks:` in the config) against the reference stack, through pytest.

Every check is its own probe (own test id, own verdict, own message), whatever the number
of checks and however the run is split with xdist. How fast 200 of them run is measured by
`bench/bench_checks.py`, not asserted here.
"""

from __future__ import annotations

import socket
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar

import pytest
from loopback import loopback_server, url_of
from probe_project import failed_ids, junit_cases, make_probe_project, run_probes

from devstack.refstack import ReferenceStack

CHECKS_MODULE = "probes/test_checks.py"


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return run_probes(pytester, *args, CHECKS_MODULE)


def generated_checks(count: int) -> list[dict[str, Any]]:
    """`count` passing checks over both targets and the three kinds of expectation."""
    kinds: list[dict[str, Any]] = [
        {
            "target": "api",
            "path": "/health",
            "json": {"status": "healthy"},
            # The latency expectation passes (its failure has its own test), even on a busy machine.
            "latency": "30s",
            "slo": "api-availability",
        },
        {"target": "api", "path": "/sandbox/status", "json": {"status": "ok"}, "slo": "sandbox-availability"},
        {"target": "gateway", "path": "/health/readiness", "body_regex": '"(healthy|connected)"'},
    ]
    return [{"name": f"generated-{i:03d}", **kinds[i % len(kinds)]} for i in range(count)]


@pytest.mark.slow
def test_many_checks_are_each_their_own_probe(pytester: pytest.Pytester, stack: ReferenceStack) -> None:
    checks = generated_checks(200)
    make_probe_project(pytester, stack, checks=checks)
    result = run(pytester)

    result.assert_outcomes(passed=200)
    cases = junit_cases(pytester)
    assert set(cases) == {f"test_checks::test_check[{check['name']}]" for check in checks}
    assert {case.outcome for case in cases.values()} == {"passed"}


def test_no_checks_is_an_explained_skip(pytester: pytest.Pytester, stack: ReferenceStack) -> None:
    make_probe_project(pytester, stack, checks=[])
    result = run(pytester, "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED*no checks: in the config"])


@pytest.fixture
def mixed(pytester: pytest.Pytester, stack: ReferenceStack) -> pytest.Pytester:
    """A project whose checks pass and fail in every way a check can, gateway 150 ms slow."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    completion = {
        "model": "claude-sonnet-4",
        "messages": [{"role": "user", "content": "ping"}],
        "max_tokens": 4,
    }
    checks = [
        {"name": "json-ok", "target": "api", "path": "/health", "json": {"status": "healthy"}},
        {
            "name": "json-nested-ok",
            "target": "api",
            "path": "/health",
            "json": {"checks.disk.threshold_percent": 90},
        },
        {"name": "json-mismatch", "target": "api", "path": "/health", "json": {"status": "degraded"}},
        {"name": "json-missing", "target": "api", "path": "/health", "json": {"uptime_seconds": 1}},
        {"name": "json-not-json", "target": "api", "path": "/metrics", "json": {"status": "ok"}},
        {"name": "regex-ok", "target": "gateway", "path": "/health/readiness", "body_regex": '"healthy"'},
        {
            "name": "regex-mismatch",
            "target": "gateway",
            "path": "/health/readiness",
            "body_regex": '"degraded"',
        },
        {"name": "status-mismatch", "target": "api", "path": "/nope"},
        {"name": "status-list-ok", "target": "api", "path": "/nope", "status": [404, 410]},
        {"name": "latency-over", "target": "gateway", "path": "/health/liveliness", "latency": "50ms"},
        {"name": "latency-ok", "target": "gateway", "path": "/health/liveliness", "latency": "5s"},
        {"name": "by-url", "url": f"{stack.api_url}/health?verbose=1", "json": {"status": "healthy"}},
        {"name": "by-url-refused", "url": f"http://127.0.0.1:{closed_port}/health"},
        {
            "name": "post-completion",
            "target": "gateway",
            "path": "/v1/chat/completions",
            "method": "POST",
            "body": completion,
            "json": {"object": "chat.completion", "choices.0.message.role": "assistant"},
        },
    ]
    make_probe_project(pytester, stack, checks=checks)
    stack.set_faults("gateway", latency_ms=150)
    return pytester


def check_id(name: str) -> str:
    return f"test_checks::test_check[{name}]"


MIXED_FAILURES = {
    check_id(name)
    for name in (
        "json-mismatch",
        "json-missing",
        "json-not-json",
        "regex-mismatch",
        "status-mismatch",
        "latency-over",
        "by-url-refused",
    )
}

MIXED_MESSAGES = [
    "api GET /health: JSON field status is 'healthy', expected 'degraded'",
    "api GET /health: JSON field uptime_seconds is missing",
    "api GET /metrics returned malformed JSON in * ms: # HELP *",
    'gateway GET /health/readiness: body does not match /"degraded"/: *',
    "api GET /nope returned 404 (expected 200) in * ms: *no route /nope*",
    "gateway GET /health/liveliness took * ms, over the check's 50 ms latency",
    "127.0.0.1: GET http://127.0.0.1:*/health: connection refused after * ms",
]


def test_each_failed_expectation_has_its_own_message(mixed: pytest.Pytester) -> None:
    result = run(mixed)

    result.assert_outcomes(passed=7, failed=7)
    assert failed_ids(mixed) == MIXED_FAILURES
    result.stdout.fnmatch_lines_random(MIXED_MESSAGES)
    assert "Traceback" not in result.stdout.str()


@pytest.mark.slow
def test_xdist_gives_the_same_verdicts(mixed: pytest.Pytester) -> None:
    result = run(mixed, "-n", "2")

    result.stdout.fnmatch_lines(["created: 2/2 workers"])
    result.assert_outcomes(passed=7, failed=7)
    assert len(junit_cases(mixed)) == 14
    assert failed_ids(mixed) == MIXED_FAILURES
    result.stdout.fnmatch_lines_random(MIXED_MESSAGES)


class _FailsOnce(BaseHTTPRequestHandler):
    """503 to the first request, 200 afterwards; counts what it was sent."""

    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.requests.append(self.path)
        status = 503 if len(self.requests) == 1 else 200
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


def test_a_rerun_check_sends_a_fresh_request(pytester: pytest.Pytester, stack: ReferenceStack) -> None:
    _FailsOnce.requests.clear()
    with loopback_server(_FailsOnce) as server:
        secret_url = f"{url_of(server)}/status?api_key=sk-live-SECRET"
        make_probe_project(pytester, stack, checks=[{"name": "flaky", "url": secret_url}])
        result = run_probes(pytester, "probes/test_checks.py", "--reruns", "1", "--alluredir", "allure")
    outcomes = result.parseoutcomes()
    assert (outcomes.get("passed"), outcomes.get("rerun")) == (1, 1)
    assert len(_FailsOnce.requests) == 2, "the rerun judged a new response, not the cached one"
    allure = "".join(path.read_text() for path in (pytester.path / "allure").glob("*.json"))
    assert "flaky" in allure
    assert "sk-live-SECRET" not in allure, "a check's URL never reaches a report"
