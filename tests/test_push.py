"""Push transport details: grouping-key URLs and metric rendering (pure logic)."""

from __future__ import annotations

import base64

from prometheus_client.exposition import generate_latest

from slo.metrics import SuiteRun, latency_buckets, probe_registry
from slo.push import group_url
from slo.state import ProbeState


def test_group_url_plain_and_base64_values() -> None:
    assert group_url(
        "http://pg:9091/", "synthetic-probes", {"environment": "local", "instance": "host-1"}
    ) == ("http://pg:9091/metrics/job/synthetic-probes/environment/local/instance/host-1")
    url = group_url("http://pg:9091", "a/b", {"instance": ""})
    encoded = base64.urlsafe_b64encode(b"a/b").decode()
    assert url == f"http://pg:9091/metrics/job@base64/{encoded}/instance@base64/="


def test_latency_buckets_include_every_threshold() -> None:
    buckets = latency_buckets([1.5, 2.0, 0.3])
    assert {0.3, 1.5, 2.0} <= set(buckets)
    assert buckets == sorted(set(buckets))


def test_registry_renders_contract_names_and_cumulative_histogram() -> None:
    probe = ProbeState(
        target="api",
        slo="api-availability",
        runs=3,
        failures=1,
        last_success=0.0,
        last_duration=0.5,
        last_run=1.0,
    )
    probe.observe([0.1, 1.0, 3.0], [0.5, 2.0])
    text = generate_latest(
        probe_registry({"probes/x.py::t": probe}, SuiteRun(10.0, 2.0, {"passed": 1}))
    ).decode()
    labels = 'probe="probes/x.py::t",slo="api-availability",target="api"'
    assert f"synthetic_probe_runs_total{{{labels}}} 3.0" in text
    assert f"synthetic_probe_failures_total{{{labels}}} 1.0" in text
    assert f"synthetic_probe_success{{{labels}}} 0.0" in text
    assert f'synthetic_probe_latency_seconds_bucket{{le="0.5",{labels}}} 1.0' in text
    assert f'synthetic_probe_latency_seconds_bucket{{le="2.0",{labels}}} 2.0' in text
    assert f'synthetic_probe_latency_seconds_bucket{{le="+Inf",{labels}}} 3.0' in text
    assert f"synthetic_probe_latency_seconds_count{{{labels}}} 3.0" in text
    assert 'synthetic_suite_probes{outcome="passed"} 1.0' in text
    assert "synthetic_suite_last_run_timestamp_seconds 10.0" in text
