"""nginx in front of the API (the seed's 34.3.8): every upstream answers, the balancer answers,
plain HTTP redirects to HTTPS, and only TLS 1.2 and 1.3 are spoken. The balancer is an https
target, so the certificate probe (test_tls.py) covers its certificate.

Configured by `balancer:`; skipped while the config has none.
"""

from urllib.parse import urlsplit

import pytest

from slo import (
    ProbeClient,
    ProbeFailure,
    Target,
    describe,
    expect_status,
    parametrize_probes,
    probe_config,
    probe_param,
    tls_handshake,
)

NOT_CONFIGURED = "monitoring.yaml has no balancer: section"


def pytest_generate_tests(metafunc):
    if "upstream" in metafunc.fixturenames:
        settings = probe_config(metafunc.config).balancer
        parametrize_probes(
            metafunc,
            "upstream",
            [probe_param(n, id=n, target=n) for n in (settings.upstreams if settings else [])],
            empty="balancer.upstreams is empty" if settings else NOT_CONFIGURED,
        )


@pytest.fixture
def settings(slo_config):
    if slo_config.balancer is None:
        pytest.skip(NOT_CONFIGURED)
    return slo_config.balancer


@pytest.fixture
def balancer(settings, slo_config):
    if settings.target not in slo_config.environment.targets:
        pytest.skip(f"environment {slo_config.env_name!r} defines no target {settings.target!r}")
    return slo_config.target(settings.target)


@pytest.mark.probe(alert="UpstreamDown")
def test_upstream_health(settings, upstream, http):
    expect_status(http(upstream).get(settings.health_path), 200)


def test_balancer_health(settings, balancer, http):
    expect_status(http(settings.target).get(settings.health_path), 200)


def test_plain_http_redirects_to_https(settings, balancer):
    host = urlsplit(balancer.url).hostname
    plain = Target(url=settings.http_url or f"http://{host}", timeout=balancer.timeout)
    with ProbeClient(settings.target, plain) as client:
        response = client.get(settings.health_path)
    expect_status(response, 301)
    location = urlsplit(response.headers.get("location", ""))
    assert (location.scheme, location.hostname) == ("https", host), (
        f"{describe(response)} redirects to {response.headers.get('location') or 'nowhere'!r}, "
        f"not to https://{host}"
    )


def test_tls_versions(settings, balancer):
    url = urlsplit(balancer.url)
    if url.scheme != "https":
        pytest.skip(f"balancer target {settings.target} is not https")
    host, port = url.hostname, url.port or 443
    offered = (*settings.tls_refused, *settings.tls_accepted)
    results = {version: tls_handshake(host, port, version, balancer.timeout) for version in offered}
    at = f"{settings.target} {host}:{port}"
    failed = [f"{v} {r.detail}" for v, r in results.items() if r.outcome == "failed"]
    if failed:
        raise ProbeFailure(f"{at}: " + "; ".join(failed), "tls")
    problems = [
        f"accepts {v} ({results[v].detail})" for v in settings.tls_refused if results[v].outcome == "accepted"
    ]
    problems += [
        f"refuses {v} ({results[v].detail})" for v in settings.tls_accepted if results[v].outcome == "refused"
    ]
    assert not problems, f"{at}: " + "; ".join(problems) + " (balancer.tls_accepted/tls_refused)"
    untestable = [r.detail for r in results.values() if r.outcome == "untestable"]
    if untestable:
        pytest.skip("; ".join(untestable))
