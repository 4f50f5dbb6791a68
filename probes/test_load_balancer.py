"""nginx in front of the API (the seed's 34.3.8): every upstream answers, the balancer answers,
plain HTTP redirects to HTTPS, and only TLS 1.2 and 1.3 are spoken. The balancer is an https
target, so the certificate probe (test_tls.py) covers its certificate.

Configured by `balancer:`; skipped while the config has none.
"""

from urllib.parse import urlsplit

import pytest

from slo.config import Target
from slo.plugin import CONFIG_KEY
from slo.probe.balancer import handshake
from slo.probe.client import ProbeClient
from slo.probe.expect import describe, expect_status
from slo.probe.failures import ProbeFailure

NOT_CONFIGURED = "monitoring.yaml has no balancer: section"


def pytest_generate_tests(metafunc):
    if "upstream" in metafunc.fixturenames:
        config = metafunc.config.stash.get(CONFIG_KEY, None)
        settings = config.balancer if config else None
        metafunc.parametrize(
            "upstream",
            [pytest.param(n, id=n, marks=pytest.mark.probe(target=n)) for n in settings.upstreams]
            if settings and settings.upstreams
            else [
                pytest.param(
                    None,
                    id="none",
                    marks=pytest.mark.skip(
                        reason="balancer.upstreams is empty" if settings else NOT_CONFIGURED
                    ),
                )
            ],
        )


@pytest.fixture
def settings(slo_config):
    if slo_config.balancer is None:
        pytest.skip(NOT_CONFIGURED)
    return slo_config.balancer


def test_upstream_health(settings, upstream, http):
    response = http(upstream).get(settings.health_path)
    expect_status(response, 200)


def test_balancer_health(settings, http):
    response = http(settings.target).get(settings.health_path)
    expect_status(response, 200)


def _balancer(settings, slo_config):
    if settings.target not in slo_config.environment.targets:
        pytest.skip(f"environment {slo_config.env_name!r} defines no target {settings.target!r}")
    return slo_config.target(settings.target)


def test_plain_http_redirects_to_https(settings, slo_config):
    balancer = _balancer(settings, slo_config)
    host = urlsplit(balancer.url).hostname
    plain = Target(url=settings.http_url or f"http://{host}", timeout=balancer.timeout)
    with ProbeClient(settings.target, plain) as client:
        response = client.get(settings.health_path)
    expect_status(response, 301)
    location = response.headers.get("location", "")
    assert urlsplit(location).scheme == "https" and urlsplit(location).hostname == host, (
        f"{describe(response)} redirects to {location or 'nowhere'!r}, not to https://{host}"
    )


def test_tls_versions(settings, slo_config):
    balancer = _balancer(settings, slo_config)
    url = urlsplit(balancer.url)
    if url.scheme != "https":
        pytest.skip(f"balancer target {settings.target} is not https")
    host, port = url.hostname, url.port or 443
    results = {
        v: handshake(host, port, v, balancer.timeout) for v in (*settings.tls_refused, *settings.tls_accepted)
    }
    failed = [f"{v} {r.detail}" for v, r in results.items() if r.outcome == "failed"]
    if failed:
        raise ProbeFailure(f"{settings.target} {host}:{port}: " + "; ".join(failed), "tls")
    problems = [
        f"accepts {v} ({results[v].detail})" for v in settings.tls_refused if results[v].outcome == "accepted"
    ]
    problems += [
        f"refuses {v} ({results[v].detail})" for v in settings.tls_accepted if results[v].outcome == "refused"
    ]
    assert not problems, (
        f"{settings.target} {host}:{port}: " + "; ".join(problems) + " (balancer.tls_accepted/tls_refused)"
    )
    untestable = [f"{v}: {r.detail}" for v, r in results.items() if r.outcome == "untestable"]
    if untestable:
        pytest.skip("; ".join(untestable))
