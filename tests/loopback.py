"""Real HTTP(S) servers on 127.0.0.1 for tests that need a peer the reference stack is not:
any handler (:func:`loopback_server`), or one that records what it was sent
(:func:`capture_server`)."""

from __future__ import annotations

import contextlib
import socket
import ssl
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Server(ThreadingHTTPServer):
    """A test's peer whose handler threads never outlive it and never print a traceback.

    Printing is not only noise: CPython 3.11 keeps the AST constructor's recursion depth in
    interpreter-wide state, and `traceback` parses each line it prints (its caret anchors).
    A handler thread printing while pytest parses a failing test's source in the main thread
    fails pytest with ``SystemError: AST constructor recursion depth mismatch`` (cpython
    gh-106905). A handler's own error is kept and raised in the test's thread at shutdown.
    """

    # A batch of a few dozen concurrent connections must not overflow the listen backlog
    # (socketserver's default is 5), or the kernel drops and the client retries a second later.
    request_queue_size = 128
    # Handler threads are tracked and joined by server_close().
    daemon_threads = False
    block_on_close = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler, bind_and_activate=False)
        self.errors: list[BaseException] = []
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        # A client that hangs up (or aborts its TLS) is what the clients under test do.
        if error is not None and not isinstance(error, OSError):
            self.errors.append(error)

    def stop(self) -> None:
        """Stop accepting, end every open connection (a keep-alive client, a handler blocked
        reading), then join the handler threads."""
        self.shutdown()
        with self._open_lock:
            still_open = list(self._open)
        for connection in still_open:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self.server_close()


@contextmanager
def loopback_server(
    handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext | None = None, backlog: int | None = None
) -> Iterator[ThreadingHTTPServer]:
    """Serve `handler` on a free loopback port (https when `tls` is given); always shut down.
    `backlog` raises the listen queue for clients opening more connections at once. An
    exception a handler raised (other than the client going away) is raised at the end."""
    server = _Server(handler)
    server.request_queue_size = backlog or server.request_queue_size
    server.server_bind()
    server.server_activate()
    if tls is not None:
        # A client that rejects the certificate aborts the handshake inside accept(); the
        # server drops that connection (an OSError) and keeps serving.
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop()
        thread.join()
    if server.errors:
        raise server.errors[0]


def url_of(server: ThreadingHTTPServer, scheme: str = "http") -> str:
    return f"{scheme}://127.0.0.1:{server.server_address[1]}"


@dataclass(frozen=True)
class Received:
    """One request the capture server was sent."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class CaptureServer:
    """A loopback peer that answers every request with `status` and keeps what it was sent."""

    url: str
    received: list[Received] = field(default_factory=list)
    #: The most requests it was answering at once (each is held for the server's `hold`).
    peak_in_flight: int = 0


@contextmanager
def capture_server(
    status: int = 200, tls: ssl.SSLContext | None = None, hold: float = 0.0, release_at: int = 0
) -> Iterator[CaptureServer]:
    """Serve on a free loopback port, answer every GET, PUT and POST with `status` and an
    empty body, and record each request (at most 1 MiB of body each) and how many were in
    flight at once; always shut down.

    Each request is held `hold` seconds before it is answered, or less: all waiting requests
    are answered as soon as `release_at` of them are in flight (a batch the test expects).
    """
    capture = CaptureServer(url="")
    lock = threading.Condition()
    in_flight = 0

    class Capture(BaseHTTPRequestHandler):
        def _record(self) -> None:
            nonlocal in_flight
            length = min(int(self.headers.get("Content-Length", 0)), 1 << 20)
            body = self.rfile.read(length)
            with lock:
                capture.received.append(Received(self.command, self.path, dict(self.headers.items()), body))
                in_flight += 1
                capture.peak_in_flight = max(capture.peak_in_flight, in_flight)
                lock.notify_all()
                lock.wait_for(lambda: 0 < release_at <= capture.peak_in_flight, timeout=hold)
            try:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
            finally:
                with lock:
                    in_flight -= 1

        do_GET = do_PUT = do_POST = _record

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the test asserts on what arrived."""

    with loopback_server(Capture, tls) as server:
        capture.url = url_of(server, "http" if tls is None else "https")
        yield capture
