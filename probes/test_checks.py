"""Declarative checks from `checks:` in the config: add an endpoint without writing Python.

The checks this process will run are fetched concurrently, in the background, from the first
of them on (see `slo.probe.checks`); each test then waits for its own judged response.
"""

from pathlib import Path

import pytest

from slo import CheckFetcher, judge, parametrize_probes, probe_config, probe_param


def pytest_generate_tests(metafunc):
    if "check" in metafunc.fixturenames:
        checks = probe_config(metafunc.config).checks
        parametrize_probes(
            metafunc,
            "check",
            # By name: a Check's URL or body may hold secrets, and reports record parameters.
            [probe_param(c.name, id=c.name, target=c.target or "", slo=c.slo) for c in checks],
            empty="no checks: in the config",
        )


def check_of(item):
    """The name of the check a collected item tests, or None for any other test."""
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("check") if callspec and item.path == Path(__file__) else None


@pytest.fixture(scope="session")
def check_fetcher(request, slo_config):
    fetcher = CheckFetcher(request.session, slo_config, check_of)
    yield fetcher
    fetcher.close()  # a run stopped early (-x, a deadline) sends none of the checks it skips


def test_check(request, probe, check, check_fetcher):
    outcome = check_fetcher.outcome(request.node)
    if outcome.record is not None:
        probe.requests(outcome.target_name, [outcome.record], outcome.check.degraded_after)
    judge(outcome)
