"""HTTP plumbing shared by both services: routing, auth, fault injection, metrics, serving.

Standard library only (``http.server``): the reference stack must run wherever the suite
runs, with no extra dependency. ``ThreadingHTTPServer`` gives every connection its own daemon
thread, so an injected sleep or hang holds only its own request, and a hung request can never
keep the process alive at shutdown. Responses use HTTP/1.1 keep-alive with an exact
``Content-Length`` (or chunked encoding for streams), because load generators reuse
connections and a stack that closes each one would measure connection setup, not latency.
"""

from __future__ import annotations

import hmac
import json
import socket
import sys
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

from devstack.refstack.faults import FaultError, FaultState

MAX_BODY_BYTES = 1 << 20
MALFORMED_BODY = b'{"status": "healthy", "detail": "truncated'
"""What ``malformed`` answers: starts like JSON, never parses, as a cut-off backend reply does."""


@dataclass(frozen=True)
class Request:
    """What a route handler sees: the path, its query string apart, and the raw body."""

    method: str
    path: str
    body: bytes
    query: str = ""


@dataclass(frozen=True)
class Response:
    """A complete response, sent with ``Content-Length`` so the connection stays open."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Stream:
    """A response whose body is produced piece by piece (server-sent events), sent chunked.

    A stream whose ``chunks`` end early, with ``cut`` set, is dropped without its last chunk,
    as when an upstream dies mid-answer.
    """

    chunks: Iterable[bytes]
    status: int = 200
    content_type: str = "text/event-stream"
    headers: tuple[tuple[str, str], ...] = ()
    cut: bool = False


Handler = Callable[[Request], Response | Stream]
_CLOSE = (("Connection", "close"),)


@dataclass(frozen=True)
class Route:
    """A handler and how the service treats it.

    ``traffic`` routes are what users call: faults apply, auth applies (unless ``auth`` is
    false) and they are counted in the service's request metrics. Control and monitoring
    routes (``/_faults``, ``/metrics``) are not traffic, so a faulted stack can still be
    inspected, repaired and scraped. ``errors`` false means the handler applies
    ``error_rate`` itself (the gateway's ``/health`` reports failing endpoints instead).
    """

    handler: Handler
    traffic: bool = True
    auth: bool = True
    errors: bool = True
    #: A monitoring route that still needs the key (LiteLLM's ``/metrics``).
    monitor_auth: bool = False


class ServiceMetrics(Protocol):
    """What the plumbing needs from a service's metrics."""

    def observe(self, endpoint: str, status: int, seconds: float) -> None: ...

    def exposition(self) -> bytes: ...


class RequestDropped(Exception):
    """The server is stopping while the request waits on a fault: close without answering."""


def json_response(payload: Any, status: int = 200) -> Response:
    """Serialize ``payload`` as a JSON response."""
    return Response(status, json.dumps(payload).encode())


def error_response(
    status: int,
    message: str,
    kind: str,
    *,
    param: str | None = None,
    headers: tuple[tuple[str, str], ...] = (),
) -> Response:
    """An OpenAI-style error body, which LiteLLM clients and our probes both understand."""
    error = {"message": message, "type": kind, "param": param, "code": str(status)}
    return Response(status, json.dumps({"error": error}).encode(), headers=headers)


def inject_faults(state: FaultState, *, errors: bool = True) -> Response | None:
    """Apply the current faults to one request: wait, sleep, then maybe replace the answer.

    Returns the injected response, or None to serve the real one. Raises
    :class:`RequestDropped` when the server stops while the request hangs or sleeps.
    """
    faults = state.current()
    if faults.hang:
        if not state.wait_while_hung():
            raise RequestDropped
        faults = state.current()
    delay = state.delay_seconds(faults)
    if delay > 0 and not state.sleep(delay):
        raise RequestDropped
    if errors and state.roll_error(faults):
        message = f"fault injected: error_rate={faults.error_rate:g}, status={faults.status}"
        return error_response(faults.status, message, "injected_fault")
    if faults.malformed:
        return Response(200, MALFORMED_BODY)
    return None


class Service:
    """A set of routes with its own faults and metrics; subclasses add their traffic routes."""

    def __init__(self, name: str, faults: FaultState, metrics: ServiceMetrics) -> None:
        self.name = name
        self.faults = faults
        self.metrics = metrics
        self.routes: dict[str, dict[str, Route]] = {}
        self.add("GET", "/_faults", self._show_faults, traffic=False)
        self.add("PUT", "/_faults", self._update_faults, traffic=False)
        self.add("DELETE", "/_faults", self._clear_faults, traffic=False)
        self.add("GET", "/metrics", self._metrics, traffic=False)

    def add(
        self,
        method: str,
        path: str,
        handler: Handler,
        *,
        traffic: bool = True,
        auth: bool = True,
        errors: bool = True,
        monitor_auth: bool = False,
    ) -> None:
        """Register ``handler`` for ``method path``."""
        route = Route(handler, traffic=traffic, auth=auth, errors=errors, monitor_auth=monitor_auth)
        self.routes.setdefault(path, {})[method] = route

    def in_flight(self, path: str) -> AbstractContextManager[None]:
        """Context held while a request to ``path`` is served; services count sessions here."""
        return nullcontext()

    def _show_faults(self, request: Request) -> Response:
        return json_response(self.faults.as_json())

    def _update_faults(self, request: Request) -> Response:
        try:
            body = json.loads(request.body)
        except ValueError:
            return error_response(400, "fault update is not valid JSON", "invalid_fault")
        try:
            self.faults.update(body)
        except FaultError as exc:
            return error_response(400, str(exc), "invalid_fault")
        return json_response(self.faults.as_json())

    def _clear_faults(self, request: Request) -> Response:
        self.faults.reset()
        return json_response(self.faults.as_json())

    def _metrics(self, request: Request) -> Response:
        # The exposition format version prometheus_client itself serves.
        return Response(200, self.metrics.exposition(), "text/plain; version=0.0.4; charset=utf-8")


class StackServer(ThreadingHTTPServer):
    """One service's listener: a daemon thread per connection and a deep accept backlog."""

    daemon_threads = True
    # Load tests open hundreds of connections at once; the default backlog of 5 would make
    # the kernel drop SYNs and add whole seconds of retransmit delay to the measurements.
    request_queue_size = 1024

    def __init__(
        self, address: tuple[str, int], service: Service, *, api_key: str | None, verbose: bool
    ) -> None:
        self.service = service
        self.api_key = api_key
        self.verbose = verbose
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, StackHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-response is normal under load, not a server bug.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class StackHandler(BaseHTTPRequestHandler):
    """Dispatches every request to the server's service."""

    protocol_version = "HTTP/1.1"
    server_version = "slo-refstack/0.1"
    # Headers and body go out in separate writes; with Nagle's algorithm the body would wait
    # for the client's delayed ACK (about 40 ms) on a kept-alive connection.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:
        if cast(StackServer, self.server).verbose:
            super().log_message(format, *args)

    def _dispatch(self) -> None:
        started = time.perf_counter()
        server = cast(StackServer, self.server)
        service = server.service
        path = urlsplit(self.path).path
        methods = service.routes.get(path)
        route = methods.get(self.command) if methods else None
        with service.in_flight(path):
            try:
                response = self._answer(server, path, methods, route)
            except RequestDropped:
                self.close_connection = True
                return
            self._send(response)
        if route is None or route.traffic:
            # Unknown paths share one label: scanners must not mint a series per URL.
            endpoint = path if methods else "other"
            service.metrics.observe(endpoint, response.status, time.perf_counter() - started)

    def _answer(
        self,
        server: StackServer,
        path: str,
        methods: dict[str, Route] | None,
        route: Route | None,
    ) -> Response | Stream:
        # Read the body first, whatever the answer: unread bytes would corrupt the next
        # request on this kept-alive connection.
        body = self._read_body()
        if isinstance(body, Response):
            return body
        if methods is None:
            return error_response(404, f"no route {path}", "not_found")
        if route is None:
            allow = (("Allow", ", ".join(sorted(methods))),)
            return error_response(
                405, f"{self.command} not allowed on {path}", "method_not_allowed", headers=allow
            )
        needs_key = route.auth and (route.traffic or route.monitor_auth)
        if needs_key and server.api_key and not self._authorized(server.api_key):
            return error_response(
                401,
                "missing or invalid API key: send Authorization: Bearer <key>",
                "auth_error",
                headers=(("WWW-Authenticate", "Bearer"),),
            )
        if route.traffic:
            injected = inject_faults(server.service.faults, errors=route.errors)
            if injected is not None:
                return injected
        return route.handler(Request(self.command, path, body, urlsplit(self.path).query))

    def _read_body(self) -> bytes | Response:
        # Where the body cannot be read or skipped, the connection is done: say so.
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            return error_response(
                411,
                "chunked request bodies are not supported",
                "invalid_request_error",
                headers=_CLOSE,
            )
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self.close_connection = True
            return error_response(
                413, f"body must be 0..{MAX_BODY_BYTES} bytes", "invalid_request_error", headers=_CLOSE
            )
        return self.rfile.read(length) if length else b""

    def _authorized(self, api_key: str) -> bool:
        given = self.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {api_key}".encode())

    def _send(self, response: Response | Stream) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        if isinstance(response, Response):
            for name, value in response.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)
            return
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in response.chunks:
            self.wfile.write(b"%X\r\n%s\r\n" % (len(chunk), chunk))
        if response.cut:
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(b"0\r\n\r\n")
