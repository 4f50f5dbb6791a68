"""The transport of every exchange: a deadline at every socket operation, and, for probes,
each phase of a request timed.

    transport = bounded_transport(verify)        # the push, the Prometheus client
    transport = bounded_transport(verify, timed=True, max_connections=100)   # a probe's client
    with timing() as clock:                      # one request's phases, concurrency-safe
        ...
    clock.phases(time.perf_counter())            # Phases(dns=0.0, connect=0.0003, ...)

Phases come from httpcore's trace extension (:data:`TRACE`), plus a thin network backend that
times the name lookup separately from the TCP connect. A request that reuses a kept-alive
connection has zero dns/connect/tls, exactly as a real client would see it.
"""

from __future__ import annotations

import contextvars
import ssl
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from slo.compat import wrap_network_backend
from slo.exchange.body import BodyTooLarge, UnsupportedEncoding
from slo.exchange.deadline import DeadlineBackend, run_deadline_passed
from slo.exchange.dns import TimedBackend
from slo.exchange.failures import describe_exception
from slo.exchange.reasons import FailureReason
from slo.exchange.records import Phases
from slo.exchange.tls import context_on_first_handshake
from slo.units import format_ms

__all__ = ["TRANSPORT_ERRORS", "PhaseClock", "bounded_transport", "describe_failure", "timing", "trace"]

#: What an exchange can fail with below the HTTP status: transport, size and decoding errors.
TRANSPORT_ERRORS = (httpx.HTTPError, httpx.StreamError, BodyTooLarge, UnsupportedEncoding, zlib.error)


@dataclass
class PhaseClock:
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


_current_clock: contextvars.ContextVar[PhaseClock | None] = contextvars.ContextVar(
    "slo_phase_clock", default=None
)


def trace(event_name: str, info: dict[str, Any]) -> None:
    """httpcore's ``trace`` request extension: marks the phase events on this context's clock."""
    clock = _current_clock.get()
    if clock is not None:
        # "connection.connect_tcp.started" -> "connect_tcp.started"; http11 and http2 alike.
        clock.mark(event_name.split(".", 1)[1])


def _record_lookup(seconds: float) -> None:
    clock = _current_clock.get()
    if clock is not None:
        clock.dns = seconds


@contextmanager
def timing() -> Iterator[PhaseClock]:
    """The clock the requests sent in this block (with :func:`trace`) mark their phases on."""
    clock = PhaseClock()
    token = _current_clock.set(clock)
    try:
        yield clock
    finally:
        _current_clock.reset(token)


def bounded_transport(
    verify: ssl.SSLContext | bool = True, *, timed: bool = False, max_connections: int | None = None
) -> httpx.HTTPTransport:
    """An httpx transport whose every socket operation obeys the exchange deadline.

    httpx's timeouts bound each network read, so headers trickling in a byte at a time would
    never time out: :class:`~slo.exchange.deadline.DeadlineBackend` makes the deadline one for
    the whole exchange. `timed` also times the name lookup apart from the connect.
    """
    if verify is True:
        # httpx would load the default CA bundle now, for a plain-http push as well.
        verify = context_on_first_handshake()
    transport = (
        httpx.HTTPTransport(verify=verify)
        if max_connections is None
        else httpx.HTTPTransport(
            verify=verify, limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=20)
        )
    )
    if timed:
        wrap_network_backend(transport, lambda inner: DeadlineBackend(TimedBackend(inner, _record_lookup)))
    else:
        # The test of slo.compat says if the backend moved.
        wrap_network_backend(transport, DeadlineBackend)
    return transport


def describe_failure(
    exc: BaseException, clock: PhaseClock, budget: float, headers_budget: float | None = None
) -> tuple[str, FailureReason]:
    """One line and a reason for an exchange that failed, naming the phase it waited in and
    the deadline that ended it."""
    if isinstance(exc, BodyTooLarge | UnsupportedEncoding):
        return str(exc), "error"
    if isinstance(exc, zlib.error):
        return f"undecodable compressed body: {str(exc)[:120]}", "error"
    description, reason = describe_exception(exc)
    if reason == "timeout":
        if "receive_response_headers.complete" in clock.marks:
            waiting = "reading the body"
        elif "send_request_headers.started" in clock.marks:
            waiting = "waiting for the response headers"
        else:
            waiting = "connecting"
        if run_deadline_passed():
            limit = "the run deadline"
        elif headers_budget is not None and headers_budget < budget and waiting != "reading the body":
            limit = f"{format_ms(headers_budget)} deadline for the response headers"
        else:
            limit = f"{format_ms(budget)} deadline for the whole exchange"
        description = f"timed out {waiting} ({limit})"
    return description, reason
