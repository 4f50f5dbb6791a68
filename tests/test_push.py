"""Push transport details: grouping-key URLs, metric rendering, TLS and auth to the Pushgateway."""

from __future__ import annotations

import base64
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from loopback import CaptureServer, capture_server
from prometheus_client.exposition import generate_latest

from slo.config import PushgatewaySettings
from slo.report.exposition import SuiteRun, latency_buckets, probe_registry
from slo.report.push import group_url, push_registry
from slo.report.state import ProbeState, TargetState


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
    runs = TargetState(target="api", runs=3, failed_runs=1, last_run=1.0)
    text = generate_latest(
        probe_registry({"probes/x.py::t": probe}, SuiteRun(10.0, 2.0, {"passed": 1}), {"api": runs})
    ).decode()
    kind, labels = 'kind="availability"', 'probe="probes/x.py::t",slo="api-availability",target="api"'
    assert f"synthetic_probe_runs_total{{{kind},{labels}}} 3.0" in text
    assert f"synthetic_probe_failures_total{{{kind},{labels}}} 1.0" in text
    assert f"synthetic_probe_success{{{kind},{labels}}} 0.0" in text
    assert f'synthetic_probe_latency_seconds_bucket{{{kind},le="0.5",{labels}}} 1.0' in text
    assert f'synthetic_probe_latency_seconds_bucket{{{kind},le="2.0",{labels}}} 2.0' in text
    assert f'synthetic_probe_latency_seconds_bucket{{{kind},le="+Inf",{labels}}} 3.0' in text
    assert f"synthetic_probe_latency_seconds_count{{{kind},{labels}}} 3.0" in text
    assert 'synthetic_target_runs_total{slo="",target="api"} 3.0' in text
    assert 'synthetic_target_failed_runs_total{slo="",target="api"} 1.0' in text
    assert 'synthetic_suite_probes{outcome="passed"} 1.0' in text
    assert "synthetic_suite_last_run_timestamp_seconds 10.0" in text


@pytest.fixture
def https_sink(tmp_path: Path) -> Iterator[tuple[CaptureServer, Path]]:
    """A real HTTPS server on loopback with a throwaway CA; yields its URL and the CA file."""
    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    with capture_server(tls=context) as server:
        yield server, ca_file


def test_push_over_tls_trusts_the_configured_ca_only(https_sink: tuple[CaptureServer, Path]) -> None:
    sink, ca_file = https_sink
    url = sink.url
    registry = probe_registry({}, SuiteRun(1.0, 1.0, {}))
    untrusted = push_registry(registry, PushgatewaySettings(url=url, deadline=3), "j", {"instance": "i"})
    assert not untrusted.ok
    assert untrusted.error.startswith("TLS handshake failed")
    trusted = push_registry(
        registry, PushgatewaySettings(url=url, ca_file=ca_file, token="s3cret-token"), "j", {"instance": "i"}
    )
    assert trusted.ok, trusted.error
    [received] = sink.received
    assert received.headers["Authorization"] == "Bearer s3cret-token"
    assert "s3cret-token" not in repr(PushgatewaySettings(url=url, token="s3cret-token"))
