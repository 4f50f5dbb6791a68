"""The seed's log analysis (34.3.5): errors and slow requests over a window under budgets, and
no request-rate anomaly (this window over twice the previous one). From the local log files,
from Elasticsearch, or both (one probe each).

Configured by `logs:`; skipped while the config has none.
"""

import pytest

from slo import LogChecks, parametrize_probes, probe_config, probe_param


def pytest_generate_tests(metafunc):
    if "log_source" in metafunc.fixturenames:
        settings = probe_config(metafunc.config).logs
        sources = LogChecks(settings).sources if settings else []
        parametrize_probes(
            metafunc,
            "log_source",
            [probe_param(source, id=source) for source in sources],
            empty="monitoring.yaml has no logs: section",
        )


@pytest.fixture(scope="session")
def logs(slo_config):
    """One reading per source and run: three probes judge the same counts."""
    return LogChecks(slo_config.logs)


@pytest.mark.probe(alert="ErrorLogRateHigh")
def test_error_count(log_source, logs):
    problem = logs.too_many_errors(log_source)
    assert not problem, problem


def test_slow_requests(log_source, logs):
    problem = logs.too_many_slow(log_source)
    assert not problem, problem


def test_request_rate_anomaly(log_source, logs):
    problem = logs.rate_anomaly(log_source)
    assert not problem, problem
