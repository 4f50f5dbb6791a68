"""Declarative checks (`checks:` in the config): fetched concurrently, judged one by one.

pytest runs tests one after another, so 200 checks of 100 ms each would take 20 s. Instead a
check whose response is not there yet fetches, at once, itself and every check this process
is still going to run (up to MAX_CONCURRENCY threads, each with its own client per target),
and each test judges its own response. Under xdist "going to run" is the worker's queue of
scheduled tests, so workers do not fetch each other's checks; tests sent to a worker later
form a new batch.

Each response is judged in the thread that fetched it, as it arrives, and dropped: a batch
keeps verdicts, not bodies. At most IN_FLIGHT_BYTES of bodies are read at once (fewer threads
when the targets allow large bodies), so a batch's memory does not grow with its checks.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest

from slo.compat import scheduled_items
from slo.config import Check, Config, Target
from slo.exchange.failures import ProbeFailure
from slo.probe.client import RECORD_EXTENSION, ProbeClient, RequestRecord, tls_verify
from slo.probe.expect import describe, expect_json, expect_status, json_path
from slo.redact import excerpt
from slo.units import format_ms

__all__ = ["CheckFetcher", "CheckOutcome", "fetch_all", "judge"]

#: Threads are cheap next to a hundred millisecond round trip; more than this is a stampede.
MAX_CONCURRENCY = 256
#: Bodies read at once, at their targets' `max_response_bytes`: what a batch may hold.
IN_FLIGHT_BYTES = 256 * 1024 * 1024

#: A check's request: (check, client key, target name, target, path).
_Plan = tuple[Check, str, str, Target, str]


@dataclass(frozen=True)
class CheckOutcome:
    """A check's verdict (its failure, or None), judged when its response arrived."""

    check: Check
    target_name: str
    failure: ProbeFailure | None
    record: RequestRecord | None


def _target_of(check: Check, config: Config) -> tuple[str, Target, str]:
    """(target name, target, path) of a check; a URL check becomes an ad-hoc target."""
    if check.target is not None:
        return check.target, config.target(check.target), check.path
    assert check.url is not None
    parts = urlsplit(check.url)
    origin = f"{parts.scheme}://{parts.netloc}"
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    return parts.hostname or origin, Target(url=origin), path


def fetch_all(checks: Iterable[Check], config: Config) -> dict[str, CheckOutcome]:
    """Send every check's request concurrently; failures are captured, never raised."""
    checks = list(checks)
    if not checks:
        return {}
    plans: list[_Plan] = []
    for check in checks:
        name, target, path = _target_of(check, config)
        plans.append((check, name if check.target else f"url:{target.url}", name, target, path))

    # Each target's TLS context is loaded here, once: threads that all start by asking for it
    # would each load the CA bundle (milliseconds of CPU each) before the first one is cached.
    for _, _, _, target, _ in plans:
        tls_verify(target)

    # One client per target *per worker thread*, never one pool shared by all of them: httpcore's
    # sync pool can close a kept-alive connection it has just handed to another thread (httpcore
    # issue #1110), which failed a few checks of every large run with "Bad file descriptor".
    # A thread sends one request at a time, so its client needs one connection, kept alive
    # for the next check on the same target.
    local = threading.local()
    opened: list[ProbeClient] = []
    opened_lock = threading.Lock()

    def client_for(key: str, name: str, target: Target) -> ProbeClient:
        mine: dict[str, ProbeClient] = local.__dict__.setdefault("clients", {})
        if key not in mine:
            mine[key] = ProbeClient(name, target, max_connections=1)
            with opened_lock:
                opened.append(mine[key])
        return mine[key]

    def fetch(plan: _Plan) -> CheckOutcome:
        check, key, name, target, path = plan
        headers = {header: value.get_secret_value() for header, value in check.headers.items()}
        kwargs: dict[str, object] = {"headers": headers}
        if check.body is not None:
            kwargs["json" if not isinstance(check.body, str) else "content"] = check.body
        if check.timeout is not None:
            kwargs["timeout"] = check.timeout
        try:
            response = client_for(key, name, target).request(check.method, path, **kwargs)
        except ProbeFailure as failure:
            return CheckOutcome(check, name, _kept(failure), failure.record)
        except Exception as exc:  # one check's surprise must not fail its whole batch
            surprise = ProbeFailure(
                f"{name}: {check.method} {path.split('?', 1)[0]}: {type(exc).__name__}: {excerpt(str(exc))}",
                "error",
            )
            return CheckOutcome(check, name, surprise, None)
        record = response.extensions[RECORD_EXTENSION]
        try:
            _judge_response(check, response)
        except ProbeFailure as failure:
            return CheckOutcome(check, name, _kept(failure), record)
        return CheckOutcome(check, name, None, record)

    largest = max(target.max_response_bytes for _, _, _, target, _ in plans)
    threads = max(1, min(len(plans), MAX_CONCURRENCY, IN_FLIGHT_BYTES // largest))
    try:
        with ThreadPoolExecutor(threads, thread_name_prefix="slo-check") as pool:
            outcomes = list(pool.map(fetch, plans))
    finally:
        for client in opened:
            client.close()
    return {outcome.check.name: outcome for outcome in outcomes}


def _kept(failure: ProbeFailure) -> ProbeFailure:
    """`failure` without its traceback and chained exceptions: their frames hold the body
    that was read (up to max_response_bytes), and a batch keeps a failure per check."""
    failure.__traceback__ = failure.__context__ = failure.__cause__ = None
    return failure


class CheckFetcher:
    """Hands each check test its outcome, fetching in batches of what this process will run."""

    def __init__(self, session: pytest.Session, config: Config, name_of: Callable[[pytest.Item], str | None]):
        self.session = session
        self.checks = {check.name: check for check in config.checks}
        self.config = config
        self.name_of = name_of
        self.outcomes: dict[str, CheckOutcome] = {}

    def outcome(self, item: pytest.Item) -> CheckOutcome:
        """The check's response, taken once: a rerun of the test (pytest-rerunfailures) asks
        again and so sends a fresh request instead of re-judging the old one."""
        name = self.name_of(item)
        assert name in self.checks, f"{item.nodeid} is not a check"
        if name not in self.outcomes:
            upcoming = [n for n in map(self.name_of, scheduled_items(self.session, item)) if n in self.checks]
            batch = dict.fromkeys([name, *(n for n in upcoming if n not in self.outcomes)])
            self.outcomes.update(fetch_all([self.checks[n] for n in batch], self.config))
        return self.outcomes.pop(name)


def judge(outcome: CheckOutcome) -> None:
    """Raise the check's :class:`ProbeFailure`, if its response missed an expectation."""
    if outcome.failure is not None:
        raise outcome.failure


def _judge_response(check: Check, response: httpx.Response) -> None:
    """Raise :class:`ProbeFailure` naming the first expectation the response missed."""
    if check.json_fields:
        document = expect_json(response, check.status)
        for path, expected in check.json_fields.items():
            try:
                actual = json_path(document, path)
            except KeyError:
                raise ProbeFailure(f"{describe(response)}: JSON field {path} is missing") from None
            if actual != expected:
                raise ProbeFailure(
                    f"{describe(response)}: JSON field {path} is {excerpt(repr(actual))}, "
                    f"expected {excerpt(repr(expected))}"
                )
    else:
        expect_status(response, check.status)
    if check.body_regex is not None and not re.search(check.body_regex, response.text):
        raise ProbeFailure(
            f"{describe(response)}: body does not match /{excerpt(check.body_regex)}/: "
            f"{excerpt(response.text, 120)}"
        )
    elapsed = response.elapsed.total_seconds()
    if check.latency is not None and elapsed > check.latency:
        raise ProbeFailure(
            f"{describe(response)} took {format_ms(elapsed)}, "
            f"over the check's {format_ms(check.latency)} latency"
        )
