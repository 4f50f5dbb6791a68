"""Both paths of an HTTP exchange behind one call, so that one behaviour test runs against each:
the httpx client of single probes (:class:`~slo.probe.client.ProbeClient`) and the event loop
of batches (:func:`~slo.exchange.batch.send_batch`, the declarative checks).

    @pytest.fixture(params=EXCHANGE_PATHS)
    def path(request): return request.param

    [answer] = exchange(path, Target(url=...), "/health")
"""

from __future__ import annotations

import pytest

from slo.config import Target
from slo.exchange.batch import Answer, send_batch
from slo.exchange.failures import FAILURE_REASONS, ProbeFailure
from slo.probe.checks import IN_FLIGHT_BYTES, target_exchange
from slo.probe.client import ProbeClient

__all__ = ["EXCHANGE_PATHS", "exchange", "failure_of"]

EXCHANGE_PATHS = ("httpx", "loop")


def exchange(path: str, target: Target, *paths: str, timeout: float | None = None) -> list[Answer]:
    """GET each of `paths` from `target` (named "api") one after another, on one client or one
    loop (a kept-alive connection serves the next), by `path`: "httpx" or "loop"."""
    if path == "loop":
        exchanges = [target_exchange("api", target, "GET", each, timeout=timeout) for each in paths]
        return send_batch(exchanges, lambda _, answer: answer, concurrency=1, budget=IN_FLIGHT_BYTES)
    answers = []
    options = {} if timeout is None else {"timeout": timeout}
    with ProbeClient("api", target) as client:
        for each in paths:
            try:
                response = client.get(each, **options)
            except ProbeFailure as failure:
                answers.append(Answer(None, failure, failure.record or client.records[-1]))
            else:
                answers.append(Answer(response, None, client.records[-1]))
    return answers


def failure_of(
    path: str, target: Target, each: str = "/health", timeout: float | None = None
) -> ProbeFailure:
    """The failure a GET of `each` must end in: one line, a known reason, its record kept."""
    [answer] = exchange(path, target, each, timeout=timeout)
    if answer.failure is None:
        pytest.fail(f"{each} answered {answer.record.status}, expected a failure")
    failure = answer.failure
    assert failure.reason in FAILURE_REASONS
    assert "\n" not in str(failure)
    assert failure.record is answer.record
    assert answer.record.status is None
    return failure
