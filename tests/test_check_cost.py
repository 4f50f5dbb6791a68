"""What a batch of declarative checks costs besides its requests: the CA bundle is loaded once
per batch, however many worker threads start at once."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from loopback import loopback_server, url_of
from probe_project import probe_config

from slo.config import Config
from slo.probe import client
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
    client.ssl_context.cache_clear()
    yield loads
    client.ssl_context.cache_clear()


def test_a_batch_loads_the_ca_bundle_once(bundle_loads: list[object]) -> None:
    with loopback_server(Health) as server:
        checks = [{"name": f"check-{i}", "url": f"{url_of(server)}/health"} for i in range(64)]
        config = Config.model_validate(probe_config(None, checks=checks))
        outcomes = fetch_all(config.checks, config)
    assert all(outcome.failure is None for outcome in outcomes.values())
    assert len(bundle_loads) == 1
