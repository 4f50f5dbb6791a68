"""Declarative checks from `checks:` in the config: add an endpoint without writing Python.

Every check collected in this process is fetched concurrently by the first one to run
(see `slo.checks`); each test then judges its own response.
"""

from pathlib import Path

import pytest

from slo.checks import fetch_all, judge
from slo.plugin import CONFIG_KEY, record_requests


def pytest_generate_tests(metafunc):
    if "check" in metafunc.fixturenames:
        config = metafunc.config.stash.get(CONFIG_KEY, None)
        checks = config.checks if config else []
        metafunc.parametrize(
            "check",
            [
                pytest.param(c, id=c.name, marks=pytest.mark.probe(target=c.target or "", slo=c.slo))
                for c in checks
            ]
            or [pytest.param(None, id="none", marks=pytest.mark.skip(reason="no checks: in the config"))],
        )


@pytest.fixture(scope="session")
def check_outcomes(request, slo_config):
    collected = [
        item.callspec.params["check"]
        for item in request.session.items
        if item.path == Path(__file__)
        and getattr(item, "callspec", None)
        and item.callspec.params.get("check")
    ]
    return fetch_all(collected, slo_config)


def test_check(request, check, check_outcomes):
    outcome = check_outcomes[check.name]
    if outcome.record is not None:
        record_requests(request.node, outcome.target_name, [outcome.record])
    judge(outcome)
