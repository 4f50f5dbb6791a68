"""Push transport details: grouping-key URLs, metric rendering (text and protobuf), TLS and auth."""

from __future__ import annotations

import base64
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme
from loopback import CaptureServer, capture_server
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from devstack.daemons import Pushgateway
from slo.config import PushgatewaySettings
from slo.report.exposition import SuiteRun, latency_buckets, probe_families
from slo.report.families import Family, as_registry
from slo.report.push import group_url, push_families, push_registry
from slo.report.state import ProbeState, TargetState
from slo.report.values import value_families


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
        as_registry(
            probe_families({"probes/x.py::t": probe}, SuiteRun(10.0, 2.0, {"passed": 1}), {"api": runs})
        )
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
    registry = as_registry(probe_families({}, SuiteRun(1.0, 1.0, {})))
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


def _families_of_every_kind() -> list[Family]:
    """Every family a run pushes, with counts past one- and two-byte varints and label values
    the text format must escape."""
    failed = ProbeState(target="api", slo="", runs=2**40, failures=300, retries=20_000, last_run=1.0)
    failed.last_success, failed.last_duration, failed.last_phases = 0.0, 0.25, {"dns": 0.001, "ttfb": 0.2}
    failed.last_failure_reason, failed.last_failure_time = "status", 5.0
    failed.last_failure_message = 'expected 200, got 503 "Service Unavailable" \\ é\nsecond line'
    for _ in range(3):
        failed.observe([0.1] * 100 + [3.0] * 30, latency_buckets([2.0]))
    passed = ProbeState(target="db", slo="db-availability", kind="resource", runs=1, last_run=1.0)
    passed.last_success, passed.last_duration = 1.0, 0.01
    reading_only = ProbeState(reading={"requests": 5.0})
    targets = {
        "api": TargetState(target="api", runs=7, failed_runs=2),
        "api\nnarrow": TargetState("api", "narrow", 3),
    }
    base = {"probe": "p", "target": "api", "slo": ""}
    section = {
        "a": {"name": "tokens", "kind": "counter", "labels": {**base, "model": "m"}, "value": 12.0},
        "b": {"name": "ttft_seconds", "kind": "histogram", "labels": base, "bounds": [0.5, 2.0],
              "counts": [1, 200], "sum": 40.5, "count": 201},
        "c": {"name": "active_sessions", "kind": "gauge", "labels": base, "value": -3.5},
    }  # fmt: skip
    probes = {
        "probes/a.py::test_api[x]": failed,
        "probes/b.py::test_db": passed,
        "probes/c.py::test_r": reading_only,
    }
    suite = SuiteRun(1_700_000_000.5, 12.25, {"passed": 1, "failed": 1, "skipped": 0})
    return [*probe_families(probes, suite, targets), *value_families(section)]


def _stored(gateway: Pushgateway) -> str:
    """What the Pushgateway serves of the pushed series (its own push_time_seconds left out)."""
    text = httpx.get(f"{gateway.url}/metrics", timeout=10).text
    return "\n".join(line for line in text.splitlines() if "synthetic_" in line)


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = {k: v for k, v in sample.labels.items() if k not in ("job", "instance")}
            if "le" in labels:  # the Pushgateway spells bounds its own way ("2" for "2.0")
                labels["le"] = repr(float(labels["le"]))
            samples[(sample.name, frozenset(labels.items()))] = sample.value
    return samples


@pytest.mark.slow
def test_the_protobuf_push_stores_what_the_text_push_of_the_same_families_stores() -> None:
    families = _families_of_every_kind()
    text = generate_latest(as_registry(families)).decode()
    with Pushgateway() as gateway:
        settings = PushgatewaySettings(url=gateway.url, deadline=10)
        assert push_registry(as_registry(families), settings, "j", {"instance": "i"}).ok
        stored_from_text = _stored(gateway)
        assert push_families(families, settings, "j", {"instance": "i"}).ok
        stored_from_protobuf = _stored(gateway)
    # Same names, types, HELP, labels and values: what Prometheus scrapes does not depend on the format.
    assert stored_from_protobuf == stored_from_text
    assert _samples(stored_from_protobuf) == _samples(text)
    assert 'message="expected 200, got 503 \\"Service Unavailable\\" \\\\ é"' in stored_from_protobuf
    assert "synthetic_probe_runs_total" in stored_from_protobuf
    assert "synthetic_tokens_total" in stored_from_protobuf
