"""What a batch of declarative checks costs besides its requests: the CA bundle is loaded at most
once per batch, however many worker threads start at once, and not at all for plain http."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import trustme
from loopback import loopback_server, url_of
from probe_project import probe_config

from slo.config import Config
from slo.exchange import tls
from slo.probe.checks import fetch_all


class Health(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def bundle_loads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Every CA bundle load, each made slow enough that threads starting together overlap it."""
    loads: list[object] = []
    original = ssl.SSLContext.load_verify_locations

    def counted(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loads.append(args or kwargs)
        time.sleep(0.2)  # widens the window in which an uncached context is asked for again
        original(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counted)
    tls.verifying_context.cache_clear()
    tls.context_on_first_handshake.cache_clear()
    yield loads
    tls.verifying_context.cache_clear()
    tls.context_on_first_handshake.cache_clear()


def test_a_batch_of_plain_http_checks_loads_no_ca_bundle(bundle_loads: list[object]) -> None:
    with loopback_server(Health) as server:
        checks = [{"name": f"check-{i}", "url": f"{url_of(server)}/health"} for i in range(64)]
        config = Config.model_validate(probe_config(None, checks=checks))
        outcomes = fetch_all(config.checks, config)
    assert all(outcome.failure is None for outcome in outcomes.values())
    assert bundle_loads == []


def test_a_batch_of_https_checks_loads_the_ca_bundle_once(bundle_loads: list[object], tmp_path: Path) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with loopback_server(Health, context) as server:
        secure = {"url": url_of(server, "https"), "ca_file": str(ca_file), "timeout": "5s"}
        checks = [{"name": f"check-{i}", "target": "secure", "path": "/health"} for i in range(64)]
        raw = probe_config(None, checks=checks)
        raw["environments"]["local"]["targets"]["secure"] = secure
        config = Config.model_validate(raw)
        outcomes = fetch_all(config.checks, config)
    assert [outcome.failure for outcome in outcomes.values() if outcome.failure] == []
    assert len(bundle_loads) == 1
