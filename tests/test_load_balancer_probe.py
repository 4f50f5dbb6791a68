"""The load-balancer probes against Debian's nginx, configured here in the seed's shape: three
weighted upstreams (small loopback HTTP servers), HTTP -> HTTPS 301, TLS 1.2/1.3 only, with a
certificate made by trustme."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import trustme
from loopback import loopback_server
from probe_project import junit_cases, make_probe_project, run_probes
from servers import free_port, nginx_server

from slo.probe.balancer import tls_handshake

UPSTREAM = "test_load_balancer::test_upstream_health[{}]"
BALANCER = "test_load_balancer::test_balancer_health"
REDIRECT = "test_load_balancer::test_plain_http_redirects_to_https"
TLS = "test_load_balancer::test_tls_versions"
SEED_TLS = "ssl_protocols TLSv1.2 TLSv1.3;\n    ssl_ciphers HIGH:!aNULL:!MD5;"
#: A balancer left with the old protocols on (security level 0, or OpenSSL 3 refuses them itself).
WEAK_TLS = "ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;\n    ssl_ciphers DEFAULT:@SECLEVEL=0;"


class Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"status": "healthy"}).encode()
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def nginx_http_block(upstreams: list[int], http_port: int, https_port: int, home: Path, tls: str) -> str:
    servers = "\n".join(
        f"    server 127.0.0.1:{port} weight={weight};"
        for port, weight in zip(upstreams, (3, 2, 1), strict=True)
    )
    return f"""
  upstream claude_code_backend {{
    least_conn;
{servers}
    keepalive 32;
  }}
  server {{
    listen 127.0.0.1:{http_port};
    server_name 127.0.0.1;
    return 301 https://$server_name:{https_port}$request_uri;
  }}
  server {{
    listen 127.0.0.1:{https_port} ssl http2;
    server_name 127.0.0.1;
    ssl_certificate {home}/cert.pem;
    ssl_certificate_key {home}/key.pem;
    {tls}
    ssl_prefer_server_ciphers on;
    location / {{
      proxy_pass http://claude_code_backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_connect_timeout 2s;
      proxy_read_timeout 5s;
    }}
  }}
"""


class Deployment:
    def __init__(self, upstream_ports: list[int], http_port: int, https_port: int, ca_file: Path) -> None:
        self.upstream_ports = upstream_ports
        self.http_port = http_port
        self.https_port = https_port
        self.ca_file = ca_file

    def configure(self, pytester: pytest.Pytester) -> None:
        targets: dict[str, object] = {
            "balancer": {"url": f"https://127.0.0.1:{self.https_port}", "ca_file": str(self.ca_file)},
        }
        for index, port in enumerate(self.upstream_ports, 1):
            targets[f"api-{index}"] = {"url": f"http://127.0.0.1:{port}"}
        make_probe_project(
            pytester,
            None,
            environments={"local": {"targets": targets}},
            balancer={
                "target": "balancer",
                "upstreams": ["api-1", "api-2", "api-3"],
                "http_url": f"http://127.0.0.1:{self.http_port}",
            },
        )


def deployment(tmp_path: Path, *, down: int | None = None, tls: str = SEED_TLS) -> Iterator[Deployment]:
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    home = tmp_path / "tls"
    home.mkdir()
    certificate.cert_chain_pems[0].write_to_path(str(home / "cert.pem"))
    certificate.private_key_pem.write_to_path(str(home / "key.pem"))
    authority.cert_pem.write_to_path(str(home / "ca.pem"))
    with ExitStack() as stack:
        ports = []
        for index in range(3):
            if index == down:
                ports.append(free_port())  # nobody listens there
            else:
                server = stack.enter_context(loopback_server(Health))
                ports.append(server.server_address[1])
        http_port, https_port = free_port(), free_port()
        stack.enter_context(
            nginx_server(
                tmp_path, nginx_http_block(ports, http_port, https_port, home, tls), [http_port, https_port]
            )
        )
        yield Deployment(ports, http_port, https_port, home / "ca.pem")


def outcomes(pytester: pytest.Pytester) -> dict[str, tuple[str, str]]:
    run_probes(pytester, "probes/test_load_balancer.py")
    return {name: (case.outcome, case.message) for name, case in junit_cases(pytester).items()}


def test_seed_shaped_balancer_passes(pytester: pytest.Pytester, tmp_path: Path) -> None:
    for running in deployment(tmp_path):
        running.configure(pytester)
        results = outcomes(pytester)
    assert {name: outcome for name, (outcome, _) in results.items()} == {
        UPSTREAM.format("api-1"): "passed",
        UPSTREAM.format("api-2"): "passed",
        UPSTREAM.format("api-3"): "passed",
        BALANCER: "passed",
        REDIRECT: "passed",
        TLS: "passed",
    }


def test_one_upstream_down(pytester: pytest.Pytester, tmp_path: Path) -> None:
    for running in deployment(tmp_path, down=1):
        running.configure(pytester)
        results = outcomes(pytester)
    assert results[UPSTREAM.format("api-2")][0] == "failed"
    assert results[UPSTREAM.format("api-2")][1].startswith(
        f"api-2: GET http://127.0.0.1:{running.upstream_ports[1]}/health: connection refused"
    )
    # nginx passes the request on to a live upstream: the balancer itself still answers.
    assert results[UPSTREAM.format("api-1")][0] == results[BALANCER][0] == "passed"


def test_balancer_accepting_old_tls(pytester: pytest.Pytester, tmp_path: Path) -> None:
    for running in deployment(tmp_path, tls=WEAK_TLS):
        running.configure(pytester)
        results = outcomes(pytester)
    outcome, message = results[TLS]
    assert outcome == "failed"
    assert message.startswith(f"balancer 127.0.0.1:{running.https_port}: accepts TLSv1 (negotiated TLSv1); ")
    assert "accepts TLSv1.1 (negotiated TLSv1.1) (balancer.tls_accepted/tls_refused)" in message


def test_handshake_tells_the_servers_refusal_apart(tmp_path: Path) -> None:
    for running in deployment(tmp_path):
        refused = tls_handshake("127.0.0.1", running.https_port, "TLSv1.1", timeout=5)
        accepted = tls_handshake("127.0.0.1", running.https_port, "TLSv1.3", timeout=5)
        plain = tls_handshake("127.0.0.1", running.http_port, "TLSv1.2", timeout=5)
    assert (refused.outcome, refused.detail) == ("refused", "TLSV1_ALERT_PROTOCOL_VERSION")
    assert (accepted.outcome, accepted.detail) == ("accepted", "negotiated TLSv1.3")
    assert (plain.outcome, plain.detail) == ("failed", "handshake failed: WRONG_VERSION_NUMBER")


def test_redirect_missing(pytester: pytest.Pytester, tmp_path: Path) -> None:
    for running in deployment(tmp_path):
        running.configure(pytester)
        # Point the plain-HTTP check at an upstream: it answers 200, not a redirect.
        config = pytester.path / "monitoring.yaml"
        config.write_text(
            config.read_text().replace(
                f"http://127.0.0.1:{running.http_port}", f"http://127.0.0.1:{running.upstream_ports[0]}"
            )
        )
        results = outcomes(pytester)
    assert results[REDIRECT][0] == "failed"
    assert results[REDIRECT][1].startswith("balancer GET /health returned 200 (expected 301)")


def test_not_configured_skips(pytester: pytest.Pytester) -> None:
    make_probe_project(pytester, None)
    results = outcomes(pytester)
    assert results[BALANCER] == ("skipped", "monitoring.yaml has no balancer: section")
    assert results["test_load_balancer::test_upstream_health[none]"] == (
        "skipped",
        "monitoring.yaml has no balancer: section",
    )
