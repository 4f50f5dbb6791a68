"""The seed's log analysis (34.3.5): errors and slow requests over a window under budgets, and
no request-rate anomaly (this window over twice the previous one). From the local log files,
from Elasticsearch, or both (one probe each).

Configured by `logs:`; skipped while the config has none.
"""

import time

import pytest

from slo.plugin import CONFIG_KEY
from slo.probe.client import ProbeClient
from slo.probe.logs import anomaly, count_elasticsearch, count_files, elasticsearch_target
from slo.units import format_duration


def pytest_generate_tests(metafunc):
    if "log_source" in metafunc.fixturenames:
        config = metafunc.config.stash.get(CONFIG_KEY, None)
        settings = config.logs if config else None
        sources = []
        if settings and settings.files:
            sources.append("files")
        if settings and settings.elasticsearch:
            sources.append("elasticsearch")
        metafunc.parametrize(
            "log_source",
            sources
            or [
                pytest.param(
                    None, id="none", marks=pytest.mark.skip(reason="monitoring.yaml has no logs: section")
                )
            ],
        )


@pytest.fixture(scope="session")
def counted():
    """Counts per source, taken once per run: three probes judge the same reading."""
    return {}


def _counts(log_source, slo_config, counted):
    settings = slo_config.logs
    if log_source not in counted:
        now = time.time()
        if log_source == "files":
            counted[log_source] = count_files(settings, now)
        else:
            with ProbeClient("elasticsearch", elasticsearch_target(settings.elasticsearch)) as client:
                counted[log_source] = count_elasticsearch(settings, client, now)
    return counted[log_source]


def test_error_count(log_source, slo_config, counted):
    settings = slo_config.logs
    counts = _counts(log_source, slo_config, counted)
    assert counts.errors <= settings.max_errors, (
        f"logs ({log_source}): {counts.errors} errors in the last {format_duration(settings.window)}, "
        f"over {settings.max_errors} (logs.max_errors)"
    )


def test_slow_requests(log_source, slo_config, counted):
    settings = slo_config.logs
    counts = _counts(log_source, slo_config, counted)
    assert counts.slow <= settings.max_slow_requests, (
        f"logs ({log_source}): {counts.slow} requests slower than {format_duration(settings.slow_threshold)} "
        f"in the last {format_duration(settings.window)}, over {settings.max_slow_requests} "
        "(logs.max_slow_requests)"
    )


def test_request_rate_anomaly(log_source, slo_config, counted):
    found = anomaly(_counts(log_source, slo_config, counted), slo_config.logs)
    assert found is None, f"logs ({log_source}): request-rate anomaly: {found}"
