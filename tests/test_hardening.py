"""A hostile or broken target can never hang a run, exhaust memory or pull a secret out.

Each class against :class:`tests.hostile.HostileServer` on loopback. Deadlines are asserted
with generous upper margins (a deadline held is correctness, not speed): never earlier than
the deadline where that matters, and far below "waits for ever".
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from exchanges import EXCHANGE_PATHS, exchange, failure_of
from hostile import HostileServer
from probe_project import make_probe_project, run_probes
from prometheus_client import CollectorRegistry, Gauge

from devstack.refstack.faults import COMMON_FIELDS, FaultError, validate_update
from slo import redact
from slo.config import ConfigError, PushgatewaySettings, Target, load_config
from slo.exchange.deadline import exchange_deadline, set_run_deadline
from slo.exchange.failures import ProbeFailure
from slo.objectives import gate
from slo.probe.client import ProbeClient
from slo.probe.expect import expect_status
from slo.probe.sse import EventLines
from slo.report import push
from slo.report.push import GroupsError, push_registry, read_groups
from slo.report.state import ProbeState, StateFile

REPO_ROOT = Path(__file__).resolve().parents[1]
#: A failure arriving this long after its deadline means the deadline did not hold.
MARGIN = 3.0


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileServer]:
    with HostileServer() as server:
        yield server


@pytest.fixture(params=EXCHANGE_PATHS)
def via(request: pytest.FixtureRequest) -> str:
    """Which path of an exchange: the httpx client of single probes, or the batches' loop."""
    return str(request.param)


def failure(via: str, target: Target, path: str) -> tuple[ProbeFailure, float]:
    started = time.monotonic()
    problem = failure_of(via, target, path)
    return problem, time.monotonic() - started


# --- every wait has one deadline ----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "waiting"),
    [("/trickle-headers", "waiting for the response headers"), ("/trickle-body", "reading the body")],
)
def test_trickled_answers_end_at_the_deadline(
    via: str, hostile: HostileServer, path: str, waiting: str
) -> None:
    # The per-read timeout alone (1 s) never fires: a byte arrives every 100 ms.
    problem, elapsed = failure(via, Target(url=hostile.url, timeout=1.0), path)
    assert problem.reason == "timeout"
    assert f"timed out {waiting} (1000 ms deadline for the whole exchange)" in str(problem)
    assert 1.0 <= elapsed < 1.0 + MARGIN


def test_a_stalled_tls_handshake_ends_at_the_deadline(via: str, hostile: HostileServer) -> None:
    target = Target(url=f"https://127.0.0.1:{hostile.stall_port}", timeout=1.0)
    problem, elapsed = failure(via, target, "/health")
    assert problem.reason == "timeout"
    assert 1.0 <= elapsed < 1.0 + MARGIN


def test_the_run_deadline_caps_every_exchange(via: str, hostile: HostileServer) -> None:
    set_run_deadline(1.0)
    try:
        problem, elapsed = failure(via, Target(url=hostile.url, timeout=30.0), "/trickle-body")
    finally:
        set_run_deadline(None)
    assert "(the run deadline)" in str(problem)
    assert elapsed < 1.0 + MARGIN


def test_a_nested_deadline_only_shortens(hostile: HostileServer) -> None:
    with exchange_deadline(30):
        problem, elapsed = failure("httpx", Target(url=hostile.url, timeout=0.5), "/trickle-body")
    assert problem.reason == "timeout"
    assert elapsed < 0.5 + MARGIN


def read_stream(
    client: ProbeClient,
    path: str,
    *,
    deadline: float,
    first_token_deadline: float,
    max_token_gap: float | None = None,
) -> None:
    """Read a stream to its end; a deadline of 0 for the first token means "it came"."""
    with client.stream("POST", path, deadline=deadline) as response:
        lines = EventLines(
            response,
            first_token_deadline=first_token_deadline,
            cap=1 << 20,
            max_token_gap=max_token_gap,
            deadline=deadline,
        )
        if not first_token_deadline:
            lines.token_arrived()
        for _ in lines:
            pass


@pytest.mark.parametrize(
    ("path", "seen"),
    [
        (
            "/keepalive-stream",
            r"saw 0 content token\(s\), 0 data line\(s\) without content, [1-9]\d* keep-alive comment\(s\)",
        ),
        (
            "/empty-delta-stream",
            r"saw 0 content token\(s\), [1-9]\d* data line\(s\) without content, 0 keep-alive comment\(s\)",
        ),
    ],
)
def test_streams_without_content_end_at_the_first_token_deadline(
    hostile: HostileServer, path: str, seen: str
) -> None:
    client = ProbeClient("gateway", Target(url=hostile.url, timeout=30.0))
    started = time.monotonic()
    with client, pytest.raises(ProbeFailure) as raised:
        read_stream(client, path, deadline=30, first_token_deadline=1.0)
    elapsed = time.monotonic() - started
    message = str(raised.value)
    assert raised.value.reason == "timeout"
    assert "waiting for the first content token (1000 ms first-token deadline)" in message
    assert re.search(seen, message)
    assert 1.0 <= elapsed < 1.0 + MARGIN


def test_a_stream_is_bounded_by_its_total_deadline_too(hostile: HostileServer) -> None:
    client = ProbeClient("gateway", Target(url=hostile.url, timeout=30.0))
    started = time.monotonic()
    with client, pytest.raises(ProbeFailure) as raised:
        # As if the first token had come: the exchange's deadline still ends the stream.
        read_stream(client, "/keepalive-stream", deadline=1.0, first_token_deadline=0)
    assert raised.value.reason == "timeout"
    assert time.monotonic() - started < 1.0 + MARGIN
    message = str(raised.value)
    assert "waiting for the end of the stream (1000 ms deadline for the whole exchange)" in message
    assert "saw 1 content token(s), 0 data line(s) without content" in message


def test_a_stall_after_a_token_ends_at_the_gap_budget_and_says_so(hostile: HostileServer) -> None:
    """Under a longer exchange deadline and target timeout, the gap budget is what fires, and
    the message names it, not the exchange's deadline or the target's timeout."""
    client = ProbeClient("gateway", Target(url=hostile.url, timeout=30.0))
    with client, pytest.raises(ProbeFailure) as raised:
        read_stream(client, "/keepalive-stream", deadline=30, first_token_deadline=0, max_token_gap=0.5)
    message = str(raised.value)
    assert raised.value.reason == "timeout"
    assert "waiting for the next token (500 ms max_token_gap, token 1 came at " in message
    assert "deadline for the whole exchange" not in message


def test_a_push_to_a_trickling_pushgateway_ends_at_its_deadline(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    Gauge("synthetic_test", "a gauge", registry=registry).set(1)
    settings = PushgatewaySettings(timeout=1.0, deadline=2.0, retries=5)
    state = StateFile(tmp_path / "state.json")
    with HostileServer(default="/trickle-headers") as pushgateway:
        started = time.monotonic()
        with state.locked({"job": "j"}) as group:
            group.probes["p"] = ProbeState(runs=1, last_run=time.time())
            group.save()
            result = push_registry(
                registry, settings.with_overrides(url=pushgateway.url), "j", {"instance": "i"}
            )
        held = time.monotonic() - started
    assert not result.ok
    assert "timed out" in result.error
    assert held < 2.0 + MARGIN  # the state lock was not held past the push deadline


@pytest.mark.parametrize("route", ["/endless", "/inflating"])
def test_reading_a_pushgateways_groups_stops_at_its_cap(monkeypatch: pytest.MonkeyPatch, route: str) -> None:
    """Every run reads the groups (ad-hoc maintenance windows) at its start: a body that never
    ends, or inflates, is one line at the cap, raw or decoded, not memory without end."""
    monkeypatch.setattr(push, "GROUPS_BODY_BYTES", 1 << 20)
    with HostileServer(default=route) as pushgateway:
        url = pushgateway.url
        settings = PushgatewaySettings(url=url, timeout=10.0, deadline=20.0)
        with pytest.raises(GroupsError) as raised:
            read_groups(settings)
    assert str(raised.value) == f"{url}/api/v1/metrics: over 1 MiB of groups"


def test_an_overlong_grouping_key_is_a_failed_push_not_an_exception() -> None:
    settings = PushgatewaySettings(url="http://127.0.0.1:9")
    result = push_registry(CollectorRegistry(), settings, "j", {"instance": "x" * 70_000})
    assert not result.ok
    assert "over 1024 characters" in result.error
    with pytest.raises(ValueError, match="at most 1024 characters"):
        settings.with_overrides(instance="x" * 70_000)


def test_an_overlong_instance_is_one_line_at_start_up() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "slo", "load"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        env={**os.environ, "SLO_INSTANCE": "x" * 70_000, "PUSHGATEWAY_URL": "http://127.0.0.1:9"},
    )
    assert done.returncode == 4
    assert "SLO_INSTANCE" in done.stderr
    assert "at most 1024 characters" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


# --- memory is bounded by configuration, not by the target --------------------------------

_PEAK_RSS = """
import resource, sys
sys.path.insert(0, sys.argv[4])
from exchanges import exchange
from slo.config import Target
[answer] = exchange(sys.argv[3], Target(url=sys.argv[1], timeout=20.0), sys.argv[2])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
print("answered" if answer.failure is None else str(answer.failure))
"""


def peak_rss_mib(via: str, url: str, path: str) -> tuple[int, str]:
    """Peak RSS of a fresh interpreter that makes one probe request (the server runs here)."""
    tests = str(Path(__file__).parent)
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, url, path, via, tests],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    peak, outcome = done.stdout.splitlines()[:2]
    return int(peak), outcome


@pytest.mark.slow
def test_oversized_inflating_and_endless_bodies_stay_within_the_cap(via: str, hostile: HostileServer) -> None:
    baseline, outcome = peak_rss_mib(via, hostile.url, "/slow")
    assert outcome == "answered"
    for path in ("/oversized", "/inflating", "/endless"):
        peak, outcome = peak_rss_mib(via, hostile.url, path)
        assert "response body over the 16 MiB cap (max_response_bytes)" in outcome, outcome
        # The cap is 16 MiB: the body, one copy and a chunk, above what a normal run takes.
        assert peak - baseline < 3 * 16 + 16, (path, peak, baseline)


def test_excerpts_are_one_bounded_line() -> None:
    assert redact.excerpt("a\n" * 10_000_000, 200) == ("a " * 100)[:200] + "..."


# --- no secret is shown -------------------------------------------------------------------

TOKEN = "tok-MARKER-4b1d"
HEADER = "hdr-MARKER-77aa"
PASSWORD = "pw-MARKER-e3f0"
QUERY = "q-MARKER-0c9d"


def test_an_echoing_target_never_gets_a_secret_into_a_message(via: str, hostile: HostileServer) -> None:
    target = Target(
        url=hostile.url.replace("://", f"://user:{PASSWORD}@"), token=TOKEN, headers={"X-Key": HEADER}
    )
    redact.register_secrets(target)
    redact.register_url(f"/echo?key={QUERY}")
    [answer] = exchange(via, target, f"/echo?key={QUERY}")
    response = answer.response
    assert response is not None
    # The target did echo them (httpx sends the URL's credentials instead of the token).
    basic = base64.b64encode(f"user:{PASSWORD}".encode()).decode()
    assert HEADER in response.text
    assert basic in response.text
    assert QUERY in response.text
    with pytest.raises(ProbeFailure) as raised:
        expect_status(response)
    message = str(raised.value)
    assert "returned 401" in message
    for secret in (TOKEN, HEADER, PASSWORD, QUERY, basic):
        assert secret not in message
    assert redact.scrub(response.text).count("***") >= 3


def test_probes_never_follow_redirects(via: str) -> None:
    with HostileServer() as elsewhere:
        with HostileServer(redirect_to=elsewhere.url) as target:
            [answer] = exchange(via, Target(url=target.url), "/redirect")
        assert answer.record.status == 302
        assert elsewhere.requests == []


@pytest.mark.parametrize(
    ("value", "problem"),
    [("tök€n", "a non-ASCII or control character"), ("token-with-newline\n", "a line break")],
)
def test_an_unsendable_header_value_is_a_config_error_without_the_value(
    tmp_path: Path, value: str, problem: str
) -> None:
    config = tmp_path / "monitoring.yaml"
    config.write_text(
        "environments:\n  local:\n    targets:\n      api:\n        url: http://127.0.0.1:9\n"
        "        token: ${TOKEN}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as raised:
        load_config(config, "local", {"TOKEN": value})
    assert f"environments.local.targets.api.token: value contains {problem}" in str(raised.value)
    assert value.strip() not in str(raised.value)


# --- bad input is one line, nothing lost --------------------------------------------------


def _write(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / "monitoring.yaml"
    path.write_bytes(content)
    return path


_BOMB = b'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + b"".join(
    b"%c: &%c [*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c]\n" % ((98 + i, 98 + i) + (97 + i,) * 9) for i in range(9)
)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (_BOMB, "aliases expand to more than 100000 values"),
        (b"a: " + b"[" * 600 + b"]" * 600, "nested deeper than 64 levels"),
        (b"a: &a [*a]\n", "an alias refers to itself"),
        (b"environments:\n  local: \xff\n", "line 2: not UTF-8 text (byte 0xff)"),
        (b"# padding\n" * 120_000, "config file is over 1024 KiB"),
        (b"? [a]\n: b\n", "a key must be a plain value"),
    ],
)
def test_hostile_config_files_are_one_line_in_bounded_time(
    tmp_path: Path, content: bytes, message: str
) -> None:
    started = time.monotonic()
    with pytest.raises(ConfigError) as raised:
        load_config(_write(tmp_path, content), "local", {})
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    "content",
    [
        b'{"version": 1, "groups": {"k": {"p": {"runs": 1\xff}}}}',
        b'{"version": 1, "groups": {"job=j": {"p": {"runs": 1%s}}}}' % (b"0" * 400),
        b'{"version": 1, "groups": {"job=j": {"p": {"runs": -1}}}}',
        b'{"version": 1, "groups": {"job=j": {"p": {"latency_sum": NaN}}}}',
        b"[" * 100_000,
    ],
)
def test_a_state_file_of_any_content_is_set_aside_once(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    state = StateFile(path)
    with state.locked({"job": "j"}) as group:
        group.probes["p"] = ProbeState(runs=1, last_run=time.time())
    assert state.warning is not None
    assert "counters restart from zero" in state.warning
    assert len(list(tmp_path.glob("state.json.corrupt-*"))) == 1
    again = StateFile(path)
    with again.locked({"job": "j"}) as group:
        assert group.probes["p"].runs == 1
    assert again.warning is None


@pytest.mark.parametrize(
    ("summary", "problem"),
    [
        ({"verdict": "pass"}, 'no "thresholds"'),
        ({"verdict": "pass", "thresholds": []}, 'no "thresholds"'),
        ({"verdict": "pass", "thresholds": [{"name": "p95", "verdict": "fail"}]}, "did not pass"),
        ({"verdict": "yes", "thresholds": [{"name": "p95", "verdict": "pass"}]}, "verdict"),
    ],
)
def test_a_load_summary_without_its_thresholds_fails_the_gate(
    tmp_path: Path, summary: object, problem: str
) -> None:
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(summary), encoding="utf-8")
    [condition] = gate.load_conditions(path)
    assert not condition.passed
    assert problem in condition.evidence


def test_slo_load_workers_are_bounded_by_the_machine() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "slo", "load", "--workers", "1000"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )
    assert done.returncode == 4
    assert "more than this machine's" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "update",
    [{"latency_ms": 1e308}, {"latency_jitter_ms": float("inf")}, {"latency_ms": 3_600_001}],
)
def test_fault_values_are_finite_and_bounded(update: dict[str, object]) -> None:
    with pytest.raises(FaultError):
        validate_update(update, COMMON_FIELDS)


def test_a_huge_field_makes_a_bounded_failure_message() -> None:
    problem = ProbeFailure("api GET /x: JSON field status is " + repr("x" * 5_000_000))
    assert len(str(problem)) <= 2003


@pytest.mark.parametrize("path", ["/inflating", "/oversized"])
def test_the_cap_is_named_whatever_chunk_crosses_it(via: str, hostile: HostileServer, path: str) -> None:
    for cap in (1024, 100_000, 5_000_000):
        problem, _ = failure(via, Target(url=hostile.url, timeout=20.0, max_response_bytes=cap), path)
        assert f"over the {cap if cap < 1048576 else cap / 1048576:g}" in str(problem)


@pytest.mark.slow
@pytest.mark.parametrize("behaviour", ["/keepalive-stream", "/empty-delta-stream"])
def test_the_streaming_probe_ends_on_a_stream_without_content(
    pytester: pytest.Pytester, behaviour: str
) -> None:
    with HostileServer(default=behaviour) as gateway:
        make_probe_project(
            pytester,
            None,
            timeout="1s",
            environments={"local": {"targets": {"gateway": {"url": gateway.url}}}},
            probes={"gateway": {"first_token_budget": "1s", "completion_budget": "2s"}},
        )
        started = time.monotonic()
        result = run_probes(
            pytester, "probes/test_gateway.py::test_streaming_time_to_first_token", subprocess=True
        )
    elapsed = time.monotonic() - started
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*stream timed out after * waiting for the first content token (2000 ms*: saw *"]
    )
    # First-token deadline: budget (1 s) + target timeout (1 s); the rest is pytest starting.
    assert elapsed < 2.0 + 30


def test_a_stream_whose_headers_never_come_ends_at_its_headers_deadline(hostile: HostileServer) -> None:
    """A gateway holding a stream request (retrying a throttled upstream) is given up on at the
    headers deadline, under the exchange's, and the message names that deadline."""
    client = ProbeClient("gateway", Target(url=hostile.url, timeout=30.0))
    with (
        client,
        pytest.raises(ProbeFailure) as raised,
        client.stream("POST", "/trickle-headers", deadline=30, headers_deadline=1.0),
    ):
        pass
    assert raised.value.reason == "timeout"
    assert "timed out waiting for the response headers (1000 ms deadline for the response headers)" in str(
        raised.value
    )
