"""How many checks a batch sends at once: as many as `--slo-check-concurrency` says, and the
bodies held at once within a byte budget, reserved as they arrive; a batch always finishes.

Before, every concurrent check was allowed a whole `max_response_bytes` (16 MiB by default) of a
256 MiB budget, so a batch ran at most 16 requests at a time however small its bodies were.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar

import pytest
from hostile import HostileServer
from loopback import capture_server, loopback_server, url_of
from probe_project import failed_ids, junit_cases, make_probe_project, probe_config, run_probes

from slo.config import Config, Target
from slo.exchange.batch import Answer, BatchStopped, send_batch
from slo.exchange.budget import ByteBudget, Share
from slo.probe import checks as checks_module
from slo.probe.checks import fetch_all, target_exchange
from slo.probe.client import ProbeClient
from slo.processes import stop
from slo.stopping import STOPPED_EXIT

MiB = 1 << 20


def test_a_share_is_granted_what_is_free_and_nothing_more() -> None:
    budget = ByteBudget(10 * MiB, largest_cap=2 * MiB)  # 2 MiB + 1 byte kept apart
    first, second = Share(), Share()
    assert budget.grant(first, 5 * MiB) == 5 * MiB
    assert budget.grant(second, 5 * MiB) == 3 * MiB - 1  # what is left besides the part apart
    assert (first.shared, second.shared) == (5 * MiB, 3 * MiB - 1)


def test_the_part_kept_apart_is_lent_to_one_waiting_share_at_a_time() -> None:
    budget = ByteBudget(4 * MiB, largest_cap=2 * MiB)
    holder, first, second = Share(), Share(), Share()
    assert budget.grant(holder, 4 * MiB) == 2 * MiB - 1
    # Nothing free: the first to ask is lent the part apart (a whole cap, so it can finish) ...
    assert budget.grant(first, MiB) == MiB
    assert budget.grant(first, 2 * MiB) == MiB + 1
    assert first.lent == 2 * MiB + 1
    # ... and the next waits until something is given back.
    assert budget.grant(second, 1) == 0
    budget.release(first)
    assert budget.grant(second, MiB) == MiB  # lent, now to the second
    budget.release(holder)
    third = Share()
    assert budget.grant(third, MiB) == MiB  # from what the holder gave back
    assert third.shared == MiB


class _Meeting(BaseHTTPRequestHandler):
    """Answers 200 only once `parties` requests are in flight together, 503 if they never are."""

    protocol_version = "HTTP/1.1"
    parties = 40
    meeting: ClassVar[threading.Barrier]

    def do_GET(self) -> None:
        try:
            self.meeting.wait()
            status = 200
        except threading.BrokenBarrierError:
            status = 503
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_large_caps_do_not_limit_how_many_checks_run_at_once() -> None:
    # 40 checks at the default 16 MiB cap: a cap's worth each of the 256 MiB budget would
    # allow 16 at a time, and the meeting of 40 would never happen.
    _Meeting.meeting = threading.Barrier(_Meeting.parties, timeout=20)
    with loopback_server(_Meeting, backlog=64) as server:
        checks = [
            {"name": f"check-{i}", "url": f"{url_of(server)}/meet", "timeout": "30s"}
            for i in range(_Meeting.parties)
        ]
        config = Config.model_validate(probe_config(None, checks=checks))
        outcomes = fetch_all(config.checks, config)
    failures = [str(outcome.failure) for outcome in outcomes.values() if outcome.failure is not None]
    assert not failures, failures[:3]


BODY = 700_000


class _Large(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = self.path.encode().ljust(BODY, b".")
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_budget_smaller_than_the_bodies_lets_them_in_one_at_a_time() -> None:
    """Twelve bodies of 700 KB under a 1 MiB budget: each arrives whole and intact, and the
    batch never holds more than about one of them."""
    received: list[tuple[int, bytes]] = []

    def judge(index: int, answer: Answer) -> None:
        assert answer.response is not None, answer.failure
        received.append((index, answer.response.content[:8]))
        assert len(answer.response.content) == BODY

    with loopback_server(_Large) as server:
        target = Target(url=url_of(server), timeout=30.0, max_response_bytes=MiB)
        exchanges = [target_exchange("big", target, "GET", f"/body-{i:02d}") for i in range(12)]
        tracemalloc.start()
        try:
            send_batch(exchanges, judge, concurrency=12, budget=MiB)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert sorted(received) == [(i, f"/body-{i:02d}".encode()[:8]) for i in range(12)]
    # One body, its joined copy and a network read per transfer; all twelve would be 8.4 MB.
    assert peak < 4 * MiB, peak


def test_an_empty_batch_sends_nothing() -> None:
    assert send_batch([], lambda index, answer: index, concurrency=8, budget=MiB) == []


class _Counting(BaseHTTPRequestHandler):
    """Counts the requests in flight together, each held a moment so that they overlap."""

    protocol_version = "HTTP/1.1"
    lock = threading.Lock()
    in_flight = 0
    most: ClassVar[list[int]] = []

    def do_GET(self) -> None:
        with self.lock:
            type(self).in_flight += 1
            self.most.append(self.in_flight)
        time.sleep(0.05)
        with self.lock:
            type(self).in_flight -= 1
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.slow
def test_the_check_concurrency_option_bounds_a_batch(pytester: pytest.Pytester) -> None:
    _Counting.most.clear()
    with loopback_server(_Counting) as server:
        checks = [{"name": f"check-{i}", "url": f"{url_of(server)}/health"} for i in range(24)]
        make_probe_project(pytester, None, checks=checks)
        result = run_probes(pytester, "probes/test_checks.py", "--slo-check-concurrency", "3")
    result.assert_outcomes(passed=24)
    assert len(_Counting.most) == 24
    assert max(_Counting.most) <= 3


@pytest.mark.parametrize("value", ["0", "many", "513"])
def test_a_check_concurrency_out_of_range_is_a_usage_error(pytester: pytest.Pytester, value: str) -> None:
    make_probe_project(pytester, None, checks=[{"name": "one", "url": "http://127.0.0.1:9/"}])
    result = run_probes(pytester, "probes/test_checks.py", "--slo-check-concurrency", value)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    expected = f"the check concurrency must be a whole number from 1 to 512, not '{value}'"
    result.stderr.fnmatch_lines([f"*--slo-check-concurrency: {expected}"])


class _Nested(BaseHTTPRequestHandler):
    """JSON nested deeper than Python's parser recurses on /deep, a plain answer elsewhere."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = b"[" * 200_000 + b"]" * 200_000 if self.path == "/deep" else b'{"status": "ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_check_that_breaks_the_json_parser_fails_alone() -> None:
    with loopback_server(_Nested) as server:
        checks = [
            {"name": "deep", "url": f"{url_of(server)}/deep", "json": {"status": "ok"}},
            *(
                {"name": f"fine-{i}", "url": f"{url_of(server)}/ok", "json": {"status": "ok"}}
                for i in range(3)
            ),
        ]
        config = Config.model_validate(probe_config(None, checks=checks))
        outcomes = fetch_all(config.checks, config)
    deep = outcomes["deep"].failure
    assert deep is not None
    assert deep.reason == "error"
    assert str(deep).startswith("127.0.0.1 GET /deep: RecursionError: ")
    assert [name for name, outcome in outcomes.items() if outcome.failure is None] == [
        "fine-0",
        "fine-1",
        "fine-2",
    ]


@pytest.mark.slow
def test_sigterm_stops_a_batch_waiting_on_its_targets(pytester: pytest.Pytester) -> None:
    """A batch of checks whose target trickles its headers for ever stops at SIGTERM, as any
    probe run does (slo.stopping): at once, with its report written, not at the deadlines."""
    with HostileServer(default="/trickle-headers") as target:
        checks = [{"name": f"slow-{i}", "url": f"{target.url}/health", "timeout": "60s"} for i in range(5)]
        make_probe_project(pytester, None, checks=checks)
        run = subprocess.Popen(
            [sys.executable, "-m", "pytest", "probes/test_checks.py", "--no-push"],
            cwd=pytester.path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            until = time.monotonic() + 60
            while len(target.requests) < 5:
                assert run.poll() is None, "the run ended before its checks were sent"
                assert time.monotonic() < until, "the checks were never sent"
                time.sleep(0.1)
            run.send_signal(signal.SIGTERM)
            output, _ = run.communicate(timeout=30)
        finally:
            stop(run, 10)
    assert run.returncode == STOPPED_EXIT, output.decode(errors="replace")[-3000:]
    cases = junit_cases(pytester)
    assert cases["test_checks::test_check[slow-0]"].message == (
        "stopped by SIGTERM before this probe finished: the run was cut short"
    )


@pytest.mark.parametrize(
    ("method", "body"),
    [("GET", {}), ("POST", {"json": {"model": "m", "messages": []}}), ("PUT", {"content": "plain text"})],
)
def test_the_loop_sends_what_the_httpx_client_sends(method: str, body: dict[str, Any]) -> None:
    """Method, path and query, body and the headers that matter arrive the same from both paths."""
    compared = ("content-type", "content-length", "authorization", "accept-encoding", "x-team", "host")
    with capture_server() as server:
        target = Target(url=f"{server.url}/api", token="tok-1", headers={"X-Team": "sre"})
        with ProbeClient("api", target) as client:
            client.request(method, "/v1/x?verbose=1", **body)
        exchange = target_exchange("api", target, method, "/v1/x?verbose=1", **body)
        send_batch([exchange], lambda _, answer: answer, concurrency=1, budget=MiB)
    by_httpx, by_loop = server.received
    assert (by_loop.method, by_loop.path, by_loop.body) == (by_httpx.method, by_httpx.path, by_httpx.body)
    assert by_loop.path == "/api/v1/x?verbose=1"
    seen = [
        {k.lower(): v for k, v in r.headers.items() if k.lower() in compared} for r in (by_httpx, by_loop)
    ]
    assert seen[0] == seen[1]
    assert seen[1]["authorization"] == "Bearer tok-1"


def test_libcurl_is_loaded_by_the_first_batch_not_by_the_checks_module() -> None:
    """A probe run imports the checks module at collection; one without checks never pays for
    loading libcurl (about 15 ms)."""
    code = "import sys, slo.probe.checks; print('pycurl' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "False"


class _Released(BaseHTTPRequestHandler):
    """/first answers at once; /second only once the test of the first check has been
    reported (`released`), 503 if that never happens within `hold` seconds."""

    protocol_version = "HTTP/1.1"
    released = threading.Event()
    hold = 30.0
    paths: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.paths.append(self.path)
        status = 200 if self.path == "/first" or self.released.wait(self.hold) else 503
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


class _ReleaseAfterFirst:
    """A plugin of the run: releases the second answer when the first check's test is reported."""

    @staticmethod
    def pytest_runtest_logreport(report: pytest.TestReport) -> None:
        if report.when == "call" and report.nodeid.endswith("[first]"):
            _Released.released.set()


def test_a_check_is_judged_while_the_checks_after_it_are_still_in_flight(pytester: pytest.Pytester) -> None:
    """The batch runs beside the tests: the first check's test does not wait for the whole
    batch. Here the second answer comes only after the first test is reported; a test that
    waited for the batch would wait for it in vain, and the second check would get a 503."""
    _Released.released.clear()
    _Released.paths.clear()
    with loopback_server(_Released) as server:
        checks = [
            {"name": name, "url": f"{url_of(server)}/{name}", "timeout": "60s"}
            for name in ("first", "second")
        ]
        make_probe_project(pytester, None, checks=checks)
        switch_interval = sys.getswitchinterval()
        result = pytester.runpytest("--no-push", "probes/test_checks.py", plugins=[_ReleaseAfterFirst()])
    result.assert_outcomes(passed=2)
    assert sorted(_Released.paths) == ["/first", "/second"]
    assert sys.getswitchinterval() == switch_interval, "the batch's switch interval outlived it"


def test_a_run_stopped_at_its_first_failure_stops_its_batch(pytester: pytest.Pytester) -> None:
    """With -x the run ends at the first failed check, and its batch with it: the check after
    it, held by its target, is not waited for, and no batch thread outlives the run."""
    _Released.released.clear()
    _Released.paths.clear()
    with loopback_server(_Released) as server:
        checks = [
            {"name": "fails", "url": f"{url_of(server)}/first", "status": 404},
            {"name": "held", "url": f"{url_of(server)}/second", "timeout": "60s"},
        ]
        make_probe_project(pytester, None, checks=checks)
        try:
            result = run_probes(pytester, "probes/test_checks.py", "-x")
            left = [thread.name for thread in threading.enumerate() if thread.name == "slo-check-batch"]
        finally:
            _Released.released.set()
    result.assert_outcomes(failed=1)
    assert sorted(_Released.paths) == ["/first", "/second"]
    assert left == [], "the batch still ran after the run ended"


def test_a_stopped_batch_ends_with_its_exchanges_unanswered() -> None:
    """Signals reach only the main thread: a batch in another thread stops when told to, its
    transfers closed, without waiting for a target that never answers."""
    with HostileServer(default="/trickle-headers") as target:
        exchanges = [
            target_exchange("hostile", Target(url=target.url, timeout=60.0), "GET", "/") for _ in range(3)
        ]
        stop = threading.Event()
        outcome: list[BaseException] = []

        def run() -> None:
            try:
                send_batch(exchanges, lambda index, answer: index, concurrency=3, budget=MiB, stop=stop)
            except BatchStopped as stopped:
                outcome.append(stopped)

        batch = threading.Thread(target=run)
        batch.start()
        until = time.monotonic() + 30
        while len(target.requests) < 3:
            assert time.monotonic() < until, "the exchanges were never sent"
            time.sleep(0.05)
        stop.set()
        batch.join(30)
    assert not batch.is_alive(), "the batch did not stop"
    assert [str(stopped) for stopped in outcome] == ["stopped with 3 exchanges unanswered"]


def test_a_check_after_a_timed_out_one_is_fetched_afresh(pytester: pytest.Pytester) -> None:
    """pytest-timeout fails a check test whose answer is held, and the session goes on: its
    batch is stopped, and the next check, which that batch (one request at a time) never sent,
    gets a batch of its own instead of waiting for the stopped one."""
    _Released.released.clear()
    _Released.paths.clear()
    with loopback_server(_Released) as server:
        checks = [
            {"name": "held", "url": f"{url_of(server)}/second", "timeout": "60s"},
            {"name": "fine", "url": f"{url_of(server)}/first"},
        ]
        make_probe_project(pytester, None, checks=checks)
        try:
            result = run_probes(
                pytester,
                "probes/test_checks.py",
                "--slo-check-concurrency",
                "1",
                "--timeout",
                "5",
                "--timeout-method",
                "signal",
            )
        finally:
            _Released.released.set()
    result.assert_outcomes(failed=1, passed=1)
    assert failed_ids(pytester) == {"test_checks::test_check[held]"}


def test_a_check_that_breaks_the_json_parser_fails_alone_in_a_run(pytester: pytest.Pytester) -> None:
    """The same, judged in the batch's thread while the tests run: one failure, in one line."""
    with loopback_server(_Nested) as server:
        checks = [
            {"name": "deep", "url": f"{url_of(server)}/deep", "json": {"status": "ok"}},
            {"name": "fine", "url": f"{url_of(server)}/ok", "json": {"status": "ok"}},
        ]
        make_probe_project(pytester, None, checks=checks)
        run_probes(pytester, "probes/test_checks.py").assert_outcomes(failed=1, passed=1)
    assert junit_cases(pytester)["test_checks::test_check[deep]"].message.startswith(
        "127.0.0.1 GET /deep: RecursionError: "
    )


def test_a_broken_batch_fails_each_check_in_one_line_and_starts_no_other(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug that ends a batch (here a stand-in for the fetch that raises) fails every check
    that waited on it with one line, and no further batch is started (it would break too)."""
    calls: list[int] = []

    def broken(checks: list[Any], *args: object) -> None:
        calls.append(len(checks))
        raise ValueError("boom")

    monkeypatch.setattr(checks_module, "_fetch", broken)
    make_probe_project(
        pytester, None, checks=[{"name": f"c-{i}", "url": "http://127.0.0.1:9/"} for i in range(3)]
    )
    run_probes(pytester, "probes/test_checks.py").assert_outcomes(failed=3)
    assert calls == [3]
    messages = {case.message for case in junit_cases(pytester).values()}
    assert messages == {"the batch of checks failed: ValueError: boom"}
