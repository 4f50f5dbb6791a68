"""Declarative checks at scale: no check fails because of how the client shares connections.

When fetch_all ran threads sharing one httpx connection pool, httpcore's sync pool could close
a kept-alive connection it had just handed to another thread (httpcore issue #1110): a few
checks of every large run failed with ``ReadError: [Errno 9] Bad file descriptor`` against a
healthy target. Batches now run on one libcurl loop whose connections its transfers take in
turn; this runs a few thousand checks against a healthy loopback server whose answers arrive
in a jittered order, every connection reused many times, and no check may fail.
"""

from __future__ import annotations

import random
import time
import tracemalloc
from collections import Counter
from http.server import BaseHTTPRequestHandler

import pytest
from hostile import HostileServer
from loopback import loopback_server, url_of
from probe_project import probe_config

from slo.config import Config
from slo.conventions import CHECK_CONCURRENCY
from slo.probe.checks import fetch_all

CHECKS = 2000
ROUNDS = 2
BODY = b'{"status": "healthy"}'


class JitteredHealth(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real API: connections get reused

    def do_GET(self) -> None:
        time.sleep(random.uniform(0, 0.02))  # responses come back out of order
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.slow
def test_thousands_of_checks_on_a_healthy_target_all_pass() -> None:
    assert CHECKS > CHECK_CONCURRENCY * 4  # every connection is reused many times
    with loopback_server(JitteredHealth, backlog=CHECK_CONCURRENCY * 2) as server:
        # A generous timeout: the race fails fast (a closed socket), a busy machine must not.
        checks = [
            {"name": f"check-{i}", "url": f"{url_of(server)}/health", "timeout": "30s"} for i in range(CHECKS)
        ]
        config = Config.model_validate(probe_config(None, checks=checks))
        failures: Counter[str] = Counter()
        for _ in range(ROUNDS):
            outcomes = fetch_all(config.checks, config)
            assert len(outcomes) == CHECKS
            failures.update(str(o.failure) for o in outcomes.values() if o.failure is not None)
    assert not failures, failures.most_common(3)


@pytest.mark.slow
def test_a_batch_keeps_verdicts_not_bodies() -> None:
    # 50 targets answering 500 MB each: every check fails at its 2 MiB cap, and what the
    # batch holds afterwards is its verdicts, not 50 bodies (nor the frames that read them).
    with HostileServer(default="/oversized") as server:
        big = {"url": server.url, "timeout": "30s", "max_response_bytes": 2 << 20}
        checks = [
            {"name": f"big-{i}", "target": "big", "path": f"/big{i}", "body_regex": "x"} for i in range(50)
        ]
        config = Config.model_validate(
            probe_config(None, checks=checks, environments={"local": {"targets": {"big": big}}})
        )
        tracemalloc.start()
        try:
            outcomes = fetch_all(config.checks, config)
            held = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
    assert len(outcomes) == 50
    assert all(
        "response body over the 2 MiB cap (max_response_bytes)" in str(o.failure) for o in outcomes.values()
    )
    assert held < 8 << 20, f"{held} bytes still held by a batch of 50 failed checks"
