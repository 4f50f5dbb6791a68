"""The timed HTTP exchange against real loopback servers: plain, slow, hung and TLS.

Every failure must be a :class:`ProbeFailure` with a bounded reason and one line a person on
call understands, and must never carry the target's token. The behaviours run against both
paths of an exchange (`via`): the httpx client of single probes and the event loop of batches.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest
import trustme
from exchanges import EXCHANGE_PATHS, exchange, failure_of
from loopback import loopback_server, url_of

from slo.config import Target
from slo.exchange.failures import describe_exception
from slo.probe.client import ProbeClient, RequestRecord
from slo.redact import safe_url

TOKEN = "tok-7d1e0c-never-print-me"
SERVER_DELAY = 0.1
TRICKLE_DELAY = 0.05
#: The server's pause minus the moment the headers take to reach the client while it pauses.
MIN_TRANSFER = TRICKLE_DELAY * 0.8


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == "/slow":
            time.sleep(SERVER_DELAY)
            self.reply(200, b"slow")
        elif self.path == "/trickle":
            # Headers first, the body later: the wait is transfer time, not time to first byte.
            body = b"x" * 1000
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.flush()
            time.sleep(TRICKLE_DELAY)
            self.wfile.write(body)
        elif self.path == "/auth":
            authorized = self.headers.get("Authorization") == f"Bearer {TOKEN}"
            self.reply(200 if authorized else 401, b"ok" if authorized else b"no")
        else:
            self.reply(200, b"ok")

    def reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with loopback_server(Handler) as server:
        yield server.server_address[1]


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_port(ca: trustme.CA) -> Iterator[int]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    with loopback_server(Handler, context) as server:
        yield server.server_address[1]


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def hung_port() -> Iterator[int]:
    """A server that never answers: the kernel completes the TCP handshake (the listen
    backlog), the request is sent, and no byte ever comes back."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield int(listener.getsockname()[1])


@pytest.fixture
def closed_port() -> int:
    """A port nobody listens on: bound once by us, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(params=EXCHANGE_PATHS)
def via(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def target(url: str, **settings: object) -> Target:
    return Target.model_validate({"url": url, **settings})


def client(url: str, **settings: object) -> ProbeClient:
    return ProbeClient("api", target(url, **settings))


def record_of(via: str, url: str, path: str, **settings: object) -> tuple[int, RequestRecord]:
    [answer] = exchange(via, target(url, **settings), path)
    assert answer.response is not None, answer.failure
    return answer.response.status_code, answer.record


# --- phases ------------------------------------------------------------------------------


def test_phases_add_up_to_the_elapsed_time(via: str, port: int) -> None:
    status, record = record_of(via, f"http://127.0.0.1:{port}", "/slow")
    assert status == 200
    phases = record.phases
    assert phases.ttfb >= SERVER_DELAY
    assert phases.connect > 0
    assert phases.tls == 0
    assert (record.status, record.method, record.url) == (200, "GET", f"http://127.0.0.1:{port}/slow")
    total = sum(phases.as_dict().values())
    # The phases are disjoint spans inside the request: never more than the whole, and what
    # they leave out (building the request, taking a pooled connection) is small.
    assert total <= record.elapsed
    assert record.elapsed - total < 0.08, (record.elapsed, phases)


def test_body_arriving_after_the_headers_is_transfer_time(via: str, port: int) -> None:
    phases = record_of(via, f"http://127.0.0.1:{port}", "/trickle")[1].phases
    assert phases.transfer >= MIN_TRANSFER
    assert phases.ttfb < phases.transfer


def test_streamed_response_is_recorded_when_the_block_ends(port: int) -> None:
    with client(f"http://127.0.0.1:{port}") as probe:
        with probe.stream("GET", "/trickle") as response:
            assert probe.records == []
            assert len(response.read()) == 1000
        [record] = probe.records
    assert record.status == 200
    assert record.phases.transfer >= MIN_TRANSFER


def test_name_lookup_is_timed_separately_for_a_host_name(via: str, port: int) -> None:
    status, record = record_of(via, f"http://localhost:{port}", "/")
    assert status == 200
    phases = record.phases
    assert phases.dns > 0
    assert phases.connect > 0


def test_a_kept_alive_connection_has_no_setup_phases(via: str, port: int) -> None:
    answers = exchange(via, target(f"http://localhost:{port}"), "/", "/")
    first, second = (answer.record.phases for answer in answers)
    assert first.dns > 0
    assert first.connect > 0
    assert (second.dns, second.connect, second.tls) == (0, 0, 0)
    assert second.ttfb > 0


def test_every_record_reaches_the_callback(port: int) -> None:
    seen: list[RequestRecord] = []
    probe = ProbeClient("api", Target(url=f"http://127.0.0.1:{port}"), on_record=seen.append)
    with probe:
        response = probe.get("/")
    assert seen == probe.records
    assert response.extensions["slo_record"] is seen[0]


def test_token_is_sent_as_bearer(via: str, port: int) -> None:
    assert record_of(via, f"http://127.0.0.1:{port}", "/auth", token=TOKEN)[0] == 200
    assert record_of(via, f"http://127.0.0.1:{port}", "/auth")[0] == 401


# --- failures ----------------------------------------------------------------------------


def test_connection_refused(via: str, closed_port: int) -> None:
    failure = failure_of(via, target(f"http://127.0.0.1:{closed_port}", token=TOKEN))
    assert failure.reason == "connect"
    message = str(failure)
    assert message.startswith(f"api: GET http://127.0.0.1:{closed_port}/health: connection refused after ")
    assert message.endswith(" ms")


def test_unknown_host_is_a_dns_failure(via: str) -> None:
    failure = failure_of(via, target("http://no-such-host.invalid:8080"))
    assert failure.reason == "dns"
    assert str(failure).startswith("api: GET http://no-such-host.invalid:8080/health: name resolution failed")


def test_a_host_name_no_resolver_accepts_fails_at_once_as_dns(via: str) -> None:
    """A label over 63 characters fails in the IDNA codec, before any lookup: at once, as a
    DNS failure saying so, not as a lookup timed out after the whole connect timeout."""
    host = "a" * 64 + ".example"
    failure = failure_of(via, target(f"http://{host}", timeout="5s"))
    assert failure.reason == "dns"
    assert f"name resolution failed for {host}" in str(failure)
    assert failure.record is not None
    assert failure.record.elapsed < 5


def test_hung_server_times_out_at_the_target_timeout(via: str, hung_port: int) -> None:
    timeout = 0.5
    failure = failure_of(via, target(f"http://127.0.0.1:{hung_port}", timeout=f"{timeout}s"))
    assert failure.reason == "timeout"
    assert str(failure).startswith(
        f"api: GET http://127.0.0.1:{hung_port}/health: timed out waiting for the response headers "
        "(500 ms deadline for the whole exchange) after "
    )
    assert failure.record is not None
    # Never earlier than the timeout; the generous upper bound only catches "waits for ever".
    assert timeout <= failure.record.elapsed < timeout + 5


def test_request_timeout_overrides_the_target_timeout(via: str, hung_port: int) -> None:
    failure = failure_of(via, target(f"http://127.0.0.1:{hung_port}", timeout="30s"), timeout=0.2)
    assert failure.reason == "timeout"
    assert failure.record is not None
    assert failure.record.elapsed < 5


# --- TLS ---------------------------------------------------------------------------------


def test_self_signed_certificate_is_a_tls_failure(via: str, tls_port: int) -> None:
    failure = failure_of(via, target(f"https://localhost:{tls_port}", token=TOKEN))
    assert failure.reason == "tls"
    # Each TLS library words the detail its own way: Python's ssl or libcurl's OpenSSL.
    detail = "[SSL: CERTIFICATE_VERIFY_FAILED]" if via == "httpx" else "SSL certificate"
    assert str(failure).startswith(
        f"api: GET https://localhost:{tls_port}/health: TLS handshake failed: {detail}"
    )


def test_private_ca_file_is_trusted_and_tls_is_timed(via: str, tls_port: int, ca_file: Path) -> None:
    status, record = record_of(via, f"https://localhost:{tls_port}", "/", ca_file=str(ca_file))
    assert status == 200
    phases = record.phases
    assert phases.tls > 0
    assert phases.connect > 0


def test_verify_false_accepts_any_certificate(via: str, tls_port: int) -> None:
    status, record = record_of(via, f"https://127.0.0.1:{tls_port}", "/", verify=False)
    assert status == 200
    assert record.phases.tls > 0


# --- secrets -----------------------------------------------------------------------------


def test_token_never_appears_in_failures_or_reprs(via: str, closed_port: int, hung_port: int) -> None:
    headers = {"X-Api-Key": TOKEN}
    targets = [
        Target.model_validate({"url": f"http://127.0.0.1:{closed_port}", "token": TOKEN, "headers": headers}),
        Target.model_validate(
            {"url": f"http://127.0.0.1:{hung_port}", "token": TOKEN, "headers": headers, "timeout": "200ms"}
        ),
    ]
    for target in targets:
        assert TOKEN not in repr(target)
        assert TOKEN not in str(target)
        assert TOKEN not in target.model_dump_json()
        failure = failure_of(via, target)
        for text in (str(failure), repr(failure), repr(failure.record)):
            assert TOKEN not in text


def test_credentials_in_the_url_never_reach_messages(via: str, closed_port: int) -> None:
    failure = failure_of(via, target(f"http://user:{TOKEN}@127.0.0.1:{closed_port}"), "/health?key=" + TOKEN)
    assert TOKEN not in str(failure)
    assert failure.record is not None
    assert TOKEN not in failure.record.url


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("https://user:secret@api.example.com:8443/v1/x?token=abc#frag", "https://api.example.com:8443/v1/x"),
        ("http://api.example.com/health", "http://api.example.com/health"),
        ("http://user@api.example.com", "http://api.example.com"),
        ("http://[::1]:8080/health?x=1", "http://[::1]:8080/health"),
        ("http://user:pw@[2001:db8::1]/", "http://[2001:db8::1]/"),
    ],
)
def test_safe_url_drops_credentials_query_and_fragment(url: str, safe: str) -> None:
    assert safe_url(url) == safe
    assert safe_url(httpx.URL(url)) == safe


def test_describe_exception_falls_back_to_error_for_unknown_exceptions() -> None:
    assert describe_exception(ValueError("bad\nsecond line")) == ("ValueError: bad", "error")
    assert describe_exception(httpx.ReadTimeout("slow")) == ("timed out (read timeout)", "timeout")


class _Trickle(BaseHTTPRequestHandler):
    """Answers at once, then sends the body a byte at a time: every read is quick."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "40")
        self.end_headers()
        for _ in range(40):
            self.wfile.write(b"x")
            self.wfile.flush()
            time.sleep(0.1)

    def log_message(self, *args: object) -> None:
        pass


class _BadGzip(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", "9")
        self.end_headers()
        self.wfile.write(b"not gzip!")

    def log_message(self, *args: object) -> None:
        pass


def test_the_timeout_is_a_deadline_for_the_whole_response(via: str) -> None:
    """httpx's timeouts bound each read; a trickling body must still end at the timeout."""
    with loopback_server(_Trickle) as server:
        failure = failure_of(via, Target(url=url_of(server), timeout=0.5), "/")
    assert failure.reason == "timeout"
    # The whole body takes 4 s to arrive; the deadline ends the request well before that.
    assert failure.record is not None
    assert failure.record.elapsed < 2.0


def test_a_body_that_cannot_be_decoded_is_one_line_not_a_traceback(via: str) -> None:
    with loopback_server(_BadGzip) as server:
        failure = failure_of(via, Target(url=url_of(server)), "/")
    assert failure.reason == "error"
    assert str(failure).startswith(f"api: GET {url_of(server)}/: undecodable compressed body")


def test_failure_messages_show_the_url_actually_requested(via: str) -> None:
    failure = failure_of(via, Target(url="http://127.0.0.1:1/api/v2"))
    assert "GET http://127.0.0.1:1/api/v2/health: connection refused" in str(failure)
