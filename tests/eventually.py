"""Waiting for a real Prometheus to catch up, with a deadline instead of a sleep.

Prometheus scrapes and evaluates each rule group on its own timer, so a test that pushed new
counters waits for the very series it asserts on (or for every group to have evaluated once
more), never for a fixed time or for a neighbouring series.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from slo.objectives.promql import PrometheusClient, Sample

__all__ = ["rules_evaluated_after", "value_of", "wait_for"]

T = TypeVar("T")

#: Long enough for a loaded two-core CI machine; Prometheus here evaluates every second.
DEADLINE = 60.0


def wait_for(check: Callable[[], T], what: str, timeout: float = DEADLINE) -> T:
    """The first truthy result of `check`, polled until `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.2)


def value_of(client: PrometheusClient, query: str, expected: float, timeout: float = DEADLINE) -> Sample:
    """The one sample of `query` once its value is `expected` (relative 1e-9).

    Fails naming the last value seen when the rules never get there: that is the assertion.
    """
    seen: list[list[Sample]] = []

    def settled() -> list[Sample]:
        samples = client.query(query)
        seen.append(samples)
        if len(samples) == 1 and math.isclose(samples[0].value, expected, rel_tol=1e-9, abs_tol=1e-12):
            return samples
        return []

    try:
        [sample] = wait_for(settled, f"{query} == {expected:g}", timeout)
    except AssertionError as timed_out:
        raise AssertionError(f"{timed_out}; last seen: {seen[-1] if seen else 'nothing'}") from None
    return sample


def rules_evaluated_after(client: PrometheusClient, moment: float, timeout: float = DEADLINE) -> None:
    """Return once every rule group has been evaluated after `moment` (a ``time.time()``)."""

    def evaluated() -> bool:
        groups = client.rule_groups()
        return bool(groups) and all(
            datetime.fromisoformat(group["lastEvaluation"]).timestamp() > moment for group in groups
        )

    wait_for(evaluated, "every rule group to evaluate once more", timeout)
