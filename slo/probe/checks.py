"""Declarative checks (`checks:` in the config): fetched concurrently, judged one by one.

pytest runs tests one after another, so 200 checks of 100 ms each would take 20 s. Instead a
check whose response is not there yet fetches, at once, itself and every check this process
is still going to run, on one event loop (:mod:`slo.exchange.batch`: libcurl's multi
interface, up to ``--slo-check-concurrency`` requests at a time, 256 by default), and each
test judges its own response.
Under xdist "going to run" is the worker's queue of scheduled tests, so workers do not fetch
each other's checks; tests sent to a worker later form a new batch.

Each response is judged as it arrives, and dropped: a batch keeps verdicts, not bodies. The
bodies read at once hold at most IN_FLIGHT_BYTES, reserved as they arrive (not a cap's worth
per request), so large `max_response_bytes` do not cut the concurrency and a batch's memory
does not grow with its checks.
"""

from __future__ import annotations

import base64
import re
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
    """Send every check's request, `concurrency` at a time; failures are captured, never raised."""
    from slo.exchange.batch import send_batch

    outcomes: dict[str, CheckOutcome] = {}
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
            outcomes[check.name] = CheckOutcome(check, name, failure, None)
            continue
        sent.append((check, exchange))

    def judged(index: int, answer: Answer) -> CheckOutcome:
        check, exchange = sent[index]
        if answer.response is None:
            return CheckOutcome(check, exchange.target, answer.failure, answer.record)
        try:
            _judge_response(check, answer.response)
        except ProbeFailure as failure:
            return CheckOutcome(check, exchange.target, _kept(failure), answer.record)
        except Exception as exc:  # one check's surprise (JSON nested past the stack) must not end the batch
            surprise = ProbeFailure(
                f"{describe(answer.response)}: {type(exc).__name__}: {excerpt(str(exc))}", "error"
            )
            return CheckOutcome(check, exchange.target, surprise, answer.record)
        return CheckOutcome(check, exchange.target, None, answer.record)

    exchanges = [exchange for _, exchange in sent]
    for outcome in send_batch(exchanges, judged, concurrency=concurrency, budget=IN_FLIGHT_BYTES):
        outcomes[outcome.check.name] = outcome
    return outcomes


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
            concurrency = run_options(self.session.config).check_concurrency
            self.outcomes.update(fetch_all([self.checks[n] for n in batch], self.config, concurrency))
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
