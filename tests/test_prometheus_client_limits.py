"""The Prometheus client of `slo budget` and `slo gate` against answers no Prometheus gives:
a gzip bomb, an endless body, a trickle, JSON nested 100k deep. Each is one PrometheusError
line naming its limit, never a traceback, a hang or gigabytes held."""

from __future__ import annotations

import tracemalloc
from http.server import BaseHTTPRequestHandler

import pytest
from hostile import HostileServer
from loopback import loopback_server, url_of

from slo.objectives.promql import PrometheusClient, PrometheusError


@pytest.mark.slow
def test_a_gzip_bomb_stops_at_the_cap_in_bounded_memory() -> None:
    with (
        HostileServer(default="/inflating") as server,
        PrometheusClient(server.url, max_bytes=1 << 20) as client,
    ):
        tracemalloc.start()
        try:
            with pytest.raises(PrometheusError) as caught:
                client.query("up")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        url = server.url
    assert str(caught.value) == f"Prometheus at {url}: answer over 1048576 bytes (the client's cap)"
    assert peak < 16 << 20, f"{peak} bytes at the peak"


def test_an_endless_body_stops_at_the_cap() -> None:
    with (
        HostileServer(default="/endless") as server,
        PrometheusClient(server.url, max_bytes=1 << 20) as client,
        pytest.raises(PrometheusError, match=r"answer over 1048576 bytes \(the client's cap\)$"),
    ):
        client.rule_groups()


@pytest.mark.slow
def test_a_trickled_answer_ends_at_the_total_deadline() -> None:
    with HostileServer(default="/trickle-body") as server, PrometheusClient(server.url, timeout=1) as client:
        with pytest.raises(PrometheusError) as caught:
            client.query("up")
        url = server.url
    assert str(caught.value) == f"Prometheus at {url}: no whole answer within 1s"


class _Deep(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"status": "success", "data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_json_nested_100k_deep_is_one_line() -> None:
    with (
        loopback_server(_Deep) as server,
        PrometheusClient(url_of(server)) as client,
        pytest.raises(PrometheusError) as caught,
    ):
        client.query("up")
    assert (
        str(caught.value) == f"Prometheus at {url_of(server)}: answer nested deeper than the JSON depth limit"
    )
