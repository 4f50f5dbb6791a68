"""Budget probes judge the interval since their previous run, not the service's whole life.

Two pushed runs against one reference stack: the API answers 503 for a while, then recovers.
A ratio since the process started would keep failing long after the recovery (the 503s stay
in its counters); the interval since the previous run sees only the healthy requests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from probe_project import make_probe_project

from devstack.daemons import Pushgateway
from devstack.refstack import ReferenceStack

pytest_plugins = ["pytester"]

RATIO = "probes/test_metrics_endpoint.py::test_api_5xx_ratio[api]"


@pytest.fixture
def pushgateway() -> Iterator[Pushgateway]:
    with Pushgateway() as gateway:
        yield gateway


def pushed_run(pytester: pytest.Pytester, pushgateway: Pushgateway, state: Path) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        RATIO, "-rs", "--pushgateway", pushgateway.url, "--slo-state", str(state), timeout=120
    )


def requests(stack: ReferenceStack, count: int) -> None:
    with httpx.Client(trust_env=False, timeout=5.0) as client:
        for _ in range(count):
            client.get(f"{stack.api_url}/health")


def test_the_5xx_ratio_covers_the_interval_since_the_previous_run(
    pytester: pytest.Pytester, pushgateway: Pushgateway, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    with ReferenceStack(env={"REFSTACK_API_KEY": ""}) as stack:
        make_probe_project(pytester, stack)
        stack.set_faults("api", error_rate=1.0, status=503)
        requests(stack, 10)
        first = pushed_run(pytester, pushgateway, state)
        first.assert_outcomes(failed=1)
        first.stdout.fnmatch_lines(
            ["*5xx ratio 100.00% (10 of 10 requests since the counters started (no previous reading))*"]
        )

        stack.clear_faults("api")
        requests(stack, 20)
        second = pushed_run(pytester, pushgateway, state)
        # Since the start: 10 of 30 requests failed (33 %); since the previous run: none.
        second.assert_outcomes(passed=1)

        stack.set_faults("api", error_rate=1.0, status=503)
        requests(stack, 5)
        third = pushed_run(pytester, pushgateway, state)
    third.assert_outcomes(failed=1)
    third.stdout.fnmatch_lines(["*5xx ratio * (5 of 5 requests in the * s since the previous run)*"])
