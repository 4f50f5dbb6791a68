"""Declarative checks (`checks:` in the config): fetched concurrently, judged one by one.

pytest runs tests one after another, so 200 checks of 100 ms each would take 20 s. Instead a
check whose response is not there yet fetches, at once, itself and every check this process
is still going to run, on one event loop (:mod:`slo.exchange.batch`: libcurl's multi
interface, up to ``--slo-check-concurrency`` requests at a time, 256 by default) in a
background thread, and each test waits only for its own judged response. The answers come in
the order the tests run, so the network time and pytest's time per test overlap instead of
adding up; the wait has a deadline (the batch's exchanges' own timeouts or the run deadline,
plus a margin). Ctrl-C and SIGTERM, which reach the main thread, stop the batch too.
Under xdist "going to run" is the worker's queue of scheduled tests, so workers do not fetch
each other's checks; tests sent to a worker later form a new batch.

Each response is judged as it arrives, and dropped: a batch keeps verdicts, not bodies. The
bodies read at once hold at most IN_FLIGHT_BYTES, reserved as they arrive (not a cap's worth
per request), so large `max_response_bytes` do not cut the concurrency and a batch's memory
does not grow with its checks.
"""

from __future__ import annotations

import base64
import math
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import pytest

from slo import conventions
from slo.compat import scheduled_items
from slo.config import Check, Config, Target
from slo.exchange.body import ACCEPT_ENCODING
from slo.exchange.deadline import probe_deadline
from slo.exchange.failures import ProbeFailure
from slo.probe.client import TARGET_EXTENSION, RequestRecord
from slo.probe.expect import describe, expect_json, expect_status, json_path
from slo.redact import excerpt
from slo.runconfig import run_options
from slo.units import format_ms

if TYPE_CHECKING:
    from slo.exchange.batch import Answer, Exchange

__all__ = ["CheckFetcher", "CheckOutcome", "fetch_all", "judge", "target_exchange"]

#: Bytes of bodies a batch holds at once, reserved as they arrive.
IN_FLIGHT_BYTES = 256 * 1024 * 1024
#: Time beyond its exchanges' deadlines a batch is given to judge its answers.
_MARGIN = 5.0
#: Longest wait for a stopped batch to close its transfers.
_CLOSE_WAIT = 2.0
#: The interpreter's thread switch interval while a batch runs. Each libcurl callback takes
#: the GIL back from the busy main thread (pytest running the tests), waiting up to the switch
#: interval (5 ms by default): with 1 ms the batch keeps pace (docs/benchmarks.md).
_SWITCH_INTERVAL = 0.001


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


def target_exchange(
    name: str,
    target: Target,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    timeout: float | None = None,
    **body: Any,
) -> Exchange:
    """A request to `target` (named `name`) for :func:`~slo.exchange.batch.send_batch`, as
    :class:`~slo.probe.client.ProbeClient` would send it: the path under the target's URL,
    its auth and headers, bodies asked only in the encodings inflated with a bound; `body`
    is httpx's ``json=`` or ``content=``. An invalid URL raises :class:`ProbeFailure`."""
    # libcurl is loaded by the first batch, not by every probe run that has no checks.
    from slo.exchange.batch import Exchange

    base = httpx.URL(target.url)
    try:
        relative = httpx.URL(path)
    except httpx.InvalidURL as exc:
        raise ProbeFailure(f"{name}: {method} {path.split('?', 1)[0]}: invalid URL: {exc}", "error") from None
    # httpx's base_url rule: the path goes under the base URL's path.
    url = base.copy_with(raw_path=base.raw_path.rstrip(b"/") + b"/" + relative.raw_path.lstrip(b"/"))
    merged = {"Accept-Encoding": ACCEPT_ENCODING, **target.request_headers(), **(headers or {})}
    if url.userinfo:
        # As httpx does: credentials in the URL are sent as basic auth, in place of any other.
        credentials = f"{url.username}:{url.password}".encode()
        merged["Authorization"] = f"Basic {base64.b64encode(credentials).decode()}"
        url = url.copy_with(username=None, password=None)
    request = httpx.Request(method, url, headers=merged, extensions={TARGET_EXTENSION: name}, **body)
    return Exchange(
        name,
        request,
        target.timeout if timeout is None else timeout,
        target.max_response_bytes,
        target.verify,
        str(target.ca_file) if target.ca_file else None,
    )


def fetch_all(
    checks: Iterable[Check], config: Config, concurrency: int = conventions.CHECK_CONCURRENCY
) -> dict[str, CheckOutcome]:
    """Send every check's request, `concurrency` at a time; failures are captured, never raised.
    The outcomes are in the order of `checks`, whatever order their answers came in."""
    checks = list(checks)
    outcomes: dict[str, CheckOutcome] = {}
    _fetch(checks, config, concurrency, lambda outcome: outcomes.__setitem__(outcome.check.name, outcome))
    return {check.name: outcomes[check.name] for check in checks}


def _fetch(
    checks: Iterable[Check],
    config: Config,
    concurrency: int,
    deliver: Callable[[CheckOutcome], None],
    stop: threading.Event | None = None,
) -> None:
    """Send every check's request and `deliver` each outcome as it is judged: the checks
    that cannot be sent (an invalid URL) first, then the others as their answers come in."""
    from slo.exchange.batch import send_batch

    sent: list[tuple[Check, Exchange]] = []
    for check in checks:
        name, target, path = _target_of(check, config)
        body = (
            {} if check.body is None else {"content" if isinstance(check.body, str) else "json": check.body}
        )
        headers = {header: value.get_secret_value() for header, value in check.headers.items()}
        try:
            exchange = target_exchange(
                name, target, check.method, path, headers=headers, timeout=check.timeout, **body
            )
        except ProbeFailure as failure:
            deliver(CheckOutcome(check, name, failure, None))
            continue
        sent.append((check, exchange))

    def judged(index: int, answer: Answer) -> None:
        check, exchange = sent[index]
        deliver(_judged(check, exchange.target, answer))

    exchanges = [exchange for _, exchange in sent]
    send_batch(exchanges, judged, concurrency=concurrency, budget=IN_FLIGHT_BYTES, stop=stop)


def _judged(check: Check, target_name: str, answer: Answer) -> CheckOutcome:
    if answer.response is None:
        return CheckOutcome(check, target_name, answer.failure, answer.record)
    try:
        _judge_response(check, answer.response)
    except ProbeFailure as failure:
        return CheckOutcome(check, target_name, _kept(failure), answer.record)
    except Exception as exc:  # one check's surprise (JSON nested past the stack) must not end the batch
        surprise = ProbeFailure(
            f"{describe(answer.response)}: {type(exc).__name__}: {excerpt(str(exc))}", "error"
        )
        return CheckOutcome(check, target_name, surprise, answer.record)
    return CheckOutcome(check, target_name, None, answer.record)


def _kept(failure: ProbeFailure) -> ProbeFailure:
    """`failure` without its traceback and chained exceptions: their frames hold the body
    that was read (up to max_response_bytes), and a batch keeps a failure per check."""
    failure.__traceback__ = failure.__context__ = failure.__cause__ = None
    return failure


class CheckFetcher:
    """Hands each check test its outcome, fetched in the background in batches of what this
    process will run, so that the requests and pytest's own work on the tests overlap."""

    def __init__(self, session: pytest.Session, config: Config, name_of: Callable[[pytest.Item], str | None]):
        self.session = session
        self.checks = {check.name: check for check in config.checks}
        self.config = config
        self.name_of = name_of
        #: Outcomes judged and not yet taken by their test; guarded by `arrived`.
        self.outcomes: dict[str, CheckOutcome] = {}
        #: Checks a running batch is still to answer, by name: the time it will have answered by.
        self.pending: dict[str, float] = {}
        self.arrived = threading.Condition()
        self.stopping = threading.Event()
        self.batches: list[threading.Thread] = []
        #: What ended a batch other than its end (a bug): raised in every test that waits on it.
        self.broken: BaseException | None = None
        #: Batches running, and the switch interval to restore when none is.
        self.running = 0
        self.switch_interval = sys.getswitchinterval()

    def outcome(self, item: pytest.Item) -> CheckOutcome:
        """The check's response, taken once: a rerun of the test (pytest-rerunfailures) asks
        again and so sends a fresh request instead of re-judging the old one. The first test
        to find its check neither judged nor on its way starts a batch of it and every check
        still to run after it, and each test waits only for its own answer."""
        name = self.name_of(item)
        assert name in self.checks, f"{item.nodeid} is not a check"
        if self.broken is not None and name not in self.outcomes:
            raise self._broken()  # no more batches: the next would break the same way
        try:
            with self.arrived:
                if name not in self.outcomes and name not in self.pending:
                    upcoming = [
                        n for n in map(self.name_of, scheduled_items(self.session, item)) if n in self.checks
                    ]
                    fresh = (n for n in upcoming if n not in self.outcomes and n not in self.pending)
                    self._start(list(dict.fromkeys([name, *fresh])))
                while name not in self.outcomes:
                    if self.broken is not None:
                        raise self._broken()
                    left = self.pending[name] - time.monotonic()
                    if left <= 0:
                        del self.pending[name]
                        return self._late(self.checks[name])
                    self.arrived.wait(left)
                return self.outcomes.pop(name)
        except BaseException:  # Ctrl-C or SIGTERM (slo.stopping) reach this, the main thread
            self.close()
            raise

    def _broken(self) -> ProbeFailure:
        """A check's failure when a batch broke (a bug): a new one per test, since re-raising
        the one would pile every test's frames onto its traceback."""
        broken = f"{type(self.broken).__name__}: {excerpt(str(self.broken))}"
        return ProbeFailure(f"the batch of checks failed: {broken}", "error")

    def _start(self, names: list[str]) -> None:
        """Send the checks `names`, in this order, in a background thread."""
        concurrency = run_options(self.session.config).check_concurrency
        checks = [self.checks[name] for name in names]
        # libcurl ends each exchange by its timeout (or the run deadline), `concurrency` at a
        # time: the batch has answered all by then. The margin is for judging the answers.
        longest = max(self._timeout(check) for check in checks)
        by = probe_deadline(longest * math.ceil(len(checks) / concurrency)) + longest + _MARGIN
        self.pending.update(dict.fromkeys(names, by))
        if not self.running:
            self.switch_interval = sys.getswitchinterval()
            sys.setswitchinterval(min(self.switch_interval, _SWITCH_INTERVAL))
        self.running += 1
        thread = threading.Thread(
            target=self._fetch, args=(checks, concurrency, self.stopping), name="slo-check-batch", daemon=True
        )
        self.batches = [*(batch for batch in self.batches if batch.is_alive()), thread]
        thread.start()

    def _fetch(self, checks: list[Check], concurrency: int, stop: threading.Event) -> None:
        from slo.exchange.batch import BatchStopped

        try:
            _fetch(checks, self.config, concurrency, self._deliver, stop)
        except BatchStopped:
            pass
        except BaseException as exc:  # handed to the tests that wait, in the main thread
            with self.arrived:
                self.broken = exc
                self.arrived.notify_all()
        finally:
            with self.arrived:
                self.running -= 1
                if not self.running:
                    sys.setswitchinterval(self.switch_interval)

    def _deliver(self, outcome: CheckOutcome) -> None:
        with self.arrived:
            self.pending.pop(outcome.check.name, None)
            self.outcomes[outcome.check.name] = outcome
            self.arrived.notify_all()

    def _timeout(self, check: Check) -> float:
        if check.timeout is not None:
            return check.timeout
        return _target_of(check, self.config)[1].timeout

    def _late(self, check: Check) -> CheckOutcome:
        """The failure of a check whose answer did not come by its batch's deadline."""
        name, _, path = _target_of(check, self.config)
        where = f"{name}: {check.method} {path.split('?', 1)[0]}"
        return CheckOutcome(
            check, name, ProbeFailure(f"{where}: no answer by its batch's deadline", "timeout"), None
        )

    def close(self, wait: float = _CLOSE_WAIT) -> None:
        """Stop the batches still running (their transfers closed), waiting `wait` seconds at
        most. A test that runs after this (a test timed out by pytest-timeout, and the session
        went on) starts a fresh batch for what the stopped ones left unanswered."""
        self.stopping.set()
        until = time.monotonic() + wait
        for thread in self.batches:
            thread.join(max(0.0, until - time.monotonic()))
        with self.arrived:
            self.batches = [thread for thread in self.batches if thread.is_alive()]
            self.pending.clear()
            self.stopping = threading.Event()


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
