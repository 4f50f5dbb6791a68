"""A target-aware HTTP client that times every request phase and explains every failure.

>>> client = ProbeClient("api", config.target("api"))
>>> response = client.get("/health")
>>> client.records[-1].phases
Phases(dns=0.0, connect=0.0003, tls=0.0, ttfb=0.0011, transfer=0.0001)

Phases come from httpcore's trace extension, plus a thin network backend that times the name
lookup separately from the TCP connect. A request that reuses a kept-alive connection has
zero dns/connect/tls, exactly as a real client would see it.

Transport errors are raised as :class:`ProbeFailure`: one line for the person on call
(``api: GET /health: connection refused after 2 ms``) and a bounded `reason` for metrics.
"""

from __future__ import annotations

import contextvars
import functools
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import certifi
import httpcore
import httpx

from slo.config import Target

__all__ = [
    "FAILURE_REASONS",
    "Phases",
    "ProbeClient",
    "ProbeFailure",
    "RequestRecord",
    "describe_exception",
    "safe_url",
]

FailureReason = Literal["dns", "connect", "tls", "timeout", "http_status", "assertion", "error"]
FAILURE_REASONS: tuple[FailureReason, ...] = (
    "dns", "connect", "tls", "timeout", "http_status", "assertion", "error",
)  # fmt: skip


TARGET_EXTENSION = "slo_target"
#: The :class:`RequestRecord` of a response, in ``response.extensions``.
RECORD_EXTENSION = "slo_record"


class ProbeFailure(AssertionError):
    """A probe's verdict with a message for people and a bounded reason for metrics.

    An AssertionError, so pytest reports it as a plain test failure.
    """

    def __init__(
        self, message: str, reason: FailureReason = "assertion", record: RequestRecord | None = None
    ) -> None:
        super().__init__(message)
        self.reason: FailureReason = reason
        #: The request that failed, when a request did.
        self.record = record


@dataclass(frozen=True)
class Phases:
    """Seconds spent in each phase of one request (not cumulative: they add up to the total)."""

    dns: float = 0.0
    connect: float = 0.0
    tls: float = 0.0
    ttfb: float = 0.0
    transfer: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {
            "dns": self.dns,
            "connect": self.connect,
            "tls": self.tls,
            "ttfb": self.ttfb,
            "transfer": self.transfer,
        }


@dataclass(frozen=True)
class RequestRecord:
    target: str
    method: str
    url: str
    status: int | None
    elapsed: float
    phases: Phases
    reason: FailureReason | None = None


@dataclass
class _PhaseClock:
    """Collects the trace events of one request (one per context, so concurrency is safe)."""

    marks: dict[str, float] = field(default_factory=dict)
    dns: float = 0.0

    def mark(self, event: str) -> None:
        self.marks.setdefault(event, time.perf_counter())

    def span(self, start: str, end: str) -> float:
        if start in self.marks and end in self.marks:
            return max(0.0, self.marks[end] - self.marks[start])
        return 0.0

    def phases(self, finished: float) -> Phases:
        connect = max(0.0, self.span("connect_tcp.started", "connect_tcp.complete") - self.dns)
        headers_done = self.marks.get("receive_response_headers.complete")
        return Phases(
            dns=self.dns,
            connect=connect,
            tls=self.span("start_tls.started", "start_tls.complete"),
            ttfb=self.span("send_request_headers.started", "receive_response_headers.complete"),
            transfer=max(0.0, finished - headers_done) if headers_done else 0.0,
        )


_current_clock: contextvars.ContextVar[_PhaseClock | None] = contextvars.ContextVar(
    "slo_phase_clock", default=None
)


def _trace(event_name: str, info: dict[str, Any]) -> None:
    clock = _current_clock.get()
    if clock is not None:
        # "connection.connect_tcp.started" -> "connect_tcp.started"; http11 and http2 alike.
        clock.mark(event_name.split(".", 1)[1])


def _resolve(host: str, port: int, timeout: float | None) -> tuple[list[str], float]:
    """Addresses of `host`, bounded by the connect timeout (getaddrinfo itself has none)."""
    try:
        return [str(ipaddress.ip_address(host))], 0.0  # a literal address needs no lookup
    except ValueError:
        pass
    started = time.perf_counter()
    outcome: list[Any] = []
    # A thread per lookup, not a shared pool: a hung resolver must not queue up healthy
    # targets behind it, and a daemon thread does not hold up the process at exit.
    lookup = threading.Thread(
        target=lambda: outcome.append(_getaddrinfo(host, port)), name="slo-dns", daemon=True
    )
    lookup.start()
    lookup.join(timeout)
    if not outcome:
        raise httpcore.ConnectTimeout(f"name resolution for {host} timed out")
    if isinstance(outcome[0], socket.gaierror):
        raise httpcore.ConnectError(f"name resolution failed for {host}: {outcome[0].strerror}")
    addresses = list(dict.fromkeys(str(info[4][0]) for info in outcome[0]))
    return addresses, time.perf_counter() - started


def _getaddrinfo(host: str, port: int) -> Any:
    try:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return exc


class _TimedBackend(httpcore.NetworkBackend):
    """Resolves the host name itself so the DNS time is not hidden inside the TCP connect."""

    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses, dns = _resolve(host, port, timeout)
        clock = _current_clock.get()
        if clock is not None:
            clock.dns = dns
        # Like a browser: try each address in turn (e.g. ::1, then 127.0.0.1 for "localhost").
        for address in addresses[:-1]:
            try:
                return self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError:
                continue
        return self._inner.connect_tcp(addresses[-1], port, timeout, local_address, socket_options)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        return self._inner.connect_unix_socket(path, timeout, socket_options)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _timed_transport(verify: ssl.SSLContext | bool, max_connections: int) -> httpx.HTTPTransport:
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=20)
    transport = httpx.HTTPTransport(verify=verify, limits=limits)
    pool = getattr(transport, "_pool", None)
    # httpx does not expose the network backend; without this hook DNS is counted in `connect`.
    if isinstance(pool, httpcore.ConnectionPool) and hasattr(pool, "_network_backend"):
        pool._network_backend = _TimedBackend(pool._network_backend)
    return transport


def _traced(kwargs: dict[str, Any], target: str) -> dict[str, Any]:
    # `slo_target` rides along so failure messages can name the target; httpcore ignores it.
    extensions = {**kwargs.get("extensions", {}), "trace": _trace, TARGET_EXTENSION: target}
    return {**kwargs, "extensions": extensions}


@functools.lru_cache(maxsize=16)
def ssl_context(ca_file: str | None = None) -> ssl.SSLContext:
    """Loading a CA bundle costs milliseconds: share one context per bundle across clients."""
    return ssl.create_default_context(cafile=ca_file or certifi.where())


def tls_verify(target: Target) -> ssl.SSLContext | bool:
    if not target.verify:
        return False
    return ssl_context(str(target.ca_file) if target.ca_file else None)


def safe_url(url: str | httpx.URL) -> str:
    """The URL without credentials or query string, fit for messages, reports and labels."""
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal keeps its brackets, or the port would merge into it
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def describe_exception(exc: BaseException) -> tuple[str, FailureReason]:
    """A short, secret-free explanation of a transport error and its failure reason."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 8:
        chain.append(current)
        current = current.__cause__ or current.__context__
    text = " ".join(str(item) for item in chain).lower()
    if isinstance(exc, httpx.TimeoutException):
        kind = type(exc).__name__.removesuffix("Timeout").lower() or "request"
        return f"timed out ({kind} timeout)", "timeout"
    if any(isinstance(item, ssl.SSLError) for item in chain) or "certificate" in text:
        detail = next((str(i) for i in chain if isinstance(i, ssl.SSLError)), str(exc))
        return f"TLS handshake failed: {_first_line(detail)}", "tls"
    if "name resolution" in text or any(isinstance(i, socket.gaierror) for i in chain):
        return _first_line(str(exc)) or "name resolution failed", "dns"
    if "refused" in text:
        return "connection refused", "connect"
    if isinstance(exc, httpx.ConnectError | httpx.RemoteProtocolError | httpx.ReadError):
        return f"{type(exc).__name__}: {_first_line(str(exc)) or 'connection failed'}", "connect"
    return f"{type(exc).__name__}: {_first_line(str(exc))}", "error"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:200] if text.strip() else ""


def format_ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


class ProbeClient:
    """An httpx client bound to one target: base URL, auth, headers, timeout and TLS applied."""

    def __init__(
        self,
        name: str,
        target: Target,
        *,
        on_record: Callable[[RequestRecord], None] | None = None,
        max_connections: int = 100,
    ) -> None:
        self.name = name
        self.target = target
        self.records: list[RequestRecord] = []
        self._on_record = on_record
        self._client = httpx.Client(
            base_url=target.url,
            headers=target.request_headers(),
            timeout=target.timeout,
            transport=_timed_transport(tls_verify(target), max_connections),
        )

    def __enter__(self) -> ProbeClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send one request and read its body within the timeout, as a whole.

        httpx's timeouts bound each network read, so a body trickling in a byte at a time would
        never time out; here the timeout is a deadline for the whole exchange. Transport and
        decoding errors become a :class:`ProbeFailure` with a reason.
        """
        timeout = kwargs.get("timeout")
        budget = float(timeout) if isinstance(timeout, int | float) else self.target.timeout
        deadline = time.perf_counter() + budget
        with self._exchange(method, path, kwargs) as (response, finish):
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if time.perf_counter() > deadline:
                    raise httpx.ReadTimeout("the body was still arriving at the deadline")
            # httpx's own cache of a read body: .content, .text and .json() work as usual.
            response._content = bytes(body)
            response.extensions[RECORD_EXTENSION] = finish(response.status_code)
        return response

    @contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """Like ``httpx.Client.stream``; the transfer phase ends when the block exits."""
        with self._exchange(method, path, kwargs) as (response, finish):
            try:
                yield response
            finally:
                finish(response.status_code)

    @contextmanager
    def _exchange(
        self, method: str, path: str, kwargs: dict[str, Any]
    ) -> Iterator[tuple[httpx.Response, Callable[..., RequestRecord]]]:
        """Build, send and time one request; its body streams until the block ends."""
        send_options = {key: kwargs.pop(key) for key in ("auth", "follow_redirects") if key in kwargs}
        try:
            request = self._client.build_request(method, path, **_traced(kwargs, self.name))
        except httpx.InvalidURL as exc:
            shown = path.split("?", 1)[0]  # a query string may carry a key
            raise ProbeFailure(f"{self.name}: {method} {shown}: invalid URL: {exc}", "error") from None
        with self._timed(method, safe_url(request.url)) as finish:
            response = self._client.send(request, stream=True, **send_options)
            try:
                yield response, finish
            finally:
                response.close()

    @contextmanager
    def _timed(self, method: str, url: str) -> Iterator[Callable[..., RequestRecord]]:
        clock = _PhaseClock()
        token = _current_clock.set(clock)
        started = time.perf_counter()
        made: RequestRecord | None = None

        def finish(status: int | None, reason: FailureReason | None = None) -> RequestRecord:
            nonlocal made
            if made is not None:  # a stream that failed after its headers: keep the first word
                return made
            finished = time.perf_counter()
            record = made = RequestRecord(
                self.name, method, url, status, finished - started, clock.phases(finished), reason
            )
            self.records.append(record)
            if self._on_record is not None:
                self._on_record(record)
            return record

        try:
            yield finish
        except (httpx.HTTPError, httpx.StreamError) as exc:
            description, reason = describe_exception(exc)
            record = finish(None, reason)
            raise ProbeFailure(
                f"{self.name}: {method} {url}: {description} after {format_ms(record.elapsed)}",
                reason,
                record,
            ) from None
        finally:
            _current_clock.reset(token)
