"""Declarative checks (`checks:` in the config): fetched concurrently, judged one by one.

pytest runs tests one after another, so 200 checks of 100 ms each would take 20 s. Instead the
first check test of a session fetches every check collected in that process at once (a
thread per check, one pooled client per target), and each test judges its own response.
With xdist each worker fetches only its own share.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from slo.config import Check, Config, Target
from slo.expect import describe, expect_json, expect_status, json_path
from slo.httpclient import RECORD_EXTENSION, ProbeClient, ProbeFailure, RequestRecord, format_ms

__all__ = ["CheckOutcome", "fetch_all", "judge"]

#: Threads are cheap next to a hundred millisecond round trip; more than this is a stampede.
MAX_CONCURRENCY = 256


@dataclass(frozen=True)
class CheckOutcome:
    check: Check
    target_name: str
    response: httpx.Response | None
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
    clients: dict[str, ProbeClient] = {}
    plans = []
    for check in checks:
        name, target, path = _target_of(check, config)
        key = name if check.target else f"url:{target.url}"
        if key not in clients:
            clients[key] = ProbeClient(name, target, max_connections=MAX_CONCURRENCY)
        plans.append((check, clients[key], path))

    def fetch(plan: tuple[Check, ProbeClient, str]) -> CheckOutcome:
        check, client, path = plan
        headers = {key: value.get_secret_value() for key, value in check.headers.items()}
        kwargs: dict[str, object] = {"headers": headers}
        if check.body is not None:
            kwargs["json" if not isinstance(check.body, str) else "content"] = check.body
        if check.timeout is not None:
            kwargs["timeout"] = check.timeout
        try:
            response = client.request(check.method, path, **kwargs)
        except ProbeFailure as failure:
            return CheckOutcome(check, client.name, None, failure, failure.record)
        return CheckOutcome(check, client.name, response, None, response.extensions[RECORD_EXTENSION])

    try:
        with ThreadPoolExecutor(min(len(plans), MAX_CONCURRENCY), thread_name_prefix="slo-check") as pool:
            outcomes = list(pool.map(fetch, plans))
    finally:
        for client in clients.values():
            client.close()
    return {outcome.check.name: outcome for outcome in outcomes}


def judge(outcome: CheckOutcome) -> None:
    """Raise :class:`ProbeFailure` naming the first expectation the response missed."""
    if outcome.failure is not None:
        raise outcome.failure
    check, response = outcome.check, outcome.response
    assert response is not None
    if check.json_fields:
        document = expect_json(response, check.status)
        for path, expected in check.json_fields.items():
            try:
                actual = json_path(document, path)
            except KeyError:
                raise ProbeFailure(f"{describe(response)}: JSON field {path} is missing") from None
            if actual != expected:
                raise ProbeFailure(
                    f"{describe(response)}: JSON field {path} is {actual!r}, expected {expected!r}"
                )
    else:
        expect_status(response, check.status)
    if check.body_regex is not None and not re.search(check.body_regex, response.text):
        raise ProbeFailure(
            f"{describe(response)}: body does not match /{check.body_regex}/: {response.text[:120]!r}"
        )
    elapsed = response.elapsed.total_seconds()
    if check.latency is not None and elapsed > check.latency:
        raise ProbeFailure(
            f"{describe(response)} took {format_ms(elapsed)}, "
            f"over the check's {format_ms(check.latency)} latency"
        )
