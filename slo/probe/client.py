"""A target-aware HTTP client that times every request phase and explains every failure.

    client = ProbeClient("api", config.target("api"))
    response = client.get("/health")
    client.records[-1].phases  # Phases(dns=0.0, connect=0.0003, tls=0.0, ttfb=0.0011, ...)

Phases are timed by :mod:`slo.exchange.transport` (httpcore's trace extension and a backend
that times the name lookup apart from the TCP connect): a request that reuses a kept-alive
connection has zero dns/connect/tls, exactly as a real client would see it.

Transport errors are raised as :class:`ProbeFailure`: one line for the person on call
(``api: GET /health: connection refused after 2 ms``) and a bounded `reason` for metrics.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from slo.config import Target
from slo.exchange.body import ACCEPT_ENCODING, read_body
from slo.exchange.deadline import exchange_deadline
from slo.exchange.failures import ProbeFailure
from slo.exchange.reasons import FailureReason
from slo.exchange.records import Phases, RequestRecord
from slo.exchange.tls import context_on_first_handshake, verifying_context
from slo.exchange.transport import TRANSPORT_ERRORS, bounded_transport, describe_failure, timing, trace
from slo.redact import safe_url
from slo.units import format_ms

__all__ = ["RECORD_EXTENSION", "Phases", "ProbeClient", "RequestRecord", "tls_verify"]

TARGET_EXTENSION = "slo_target"
#: The :class:`RequestRecord` of a response, in ``response.extensions``.
RECORD_EXTENSION = "slo_record"


def _traced(kwargs: dict[str, Any], target: str) -> dict[str, Any]:
    # `slo_target` rides along so failure messages can name the target; httpcore ignores it.
    extensions = {**kwargs.get("extensions", {}), "trace": trace, TARGET_EXTENSION: target}
    return {**kwargs, "extensions": extensions}


def tls_verify(target: Target) -> ssl.SSLContext | bool:
    """The target's TLS verification: False when it sets ``verify: false``; the bundle loaded
    now for an https target (its first handshake is timed), at the first handshake (if ever)
    for a plain-http one (slo.exchange.tls)."""
    if not target.verify:
        return False
    ca_file = str(target.ca_file) if target.ca_file else None
    if str(target.url).startswith("https:"):
        return verifying_context(ca_file)
    return context_on_first_handshake(ca_file)


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
            # Only encodings that slo.exchange.body inflates with a bound.
            headers={"Accept-Encoding": ACCEPT_ENCODING, **target.request_headers()},
            timeout=target.timeout,
            transport=bounded_transport(tls_verify(target), timed=True, max_connections=max_connections),
            follow_redirects=False,
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

        httpx's timeouts bound each network read, so headers or a body trickling in a byte at
        a time would never time out; here the timeout is one deadline for the whole exchange
        (see :mod:`slo.exchange.deadline`), and the body is capped at the target's
        `max_response_bytes`, before decompression inflates it. Transport, size and decoding
        errors become a :class:`ProbeFailure` with a reason.
        """
        timeout = kwargs.get("timeout")
        budget = float(timeout) if isinstance(timeout, int | float) else self.target.timeout
        with self._exchange(method, path, kwargs, budget) as (response, finish):
            # httpx's own cache of a read body: .content, .text and .json() work as usual.
            response._content = read_body(response, self.target.max_response_bytes)
            response.extensions[RECORD_EXTENSION] = finish(response.status_code)
        return response

    def read(self, response: httpx.Response) -> bytes:
        """The body of a streamed response, read whole within the cap (e.g. an error answer)."""
        response._content = read_body(response, self.target.max_response_bytes)
        return response._content

    @contextmanager
    def stream(
        self,
        method: str,
        path: str,
        *,
        deadline: float | None = None,
        headers_deadline: float | None = None,
        **kwargs: Any,
    ) -> Iterator[httpx.Response]:
        """Like ``httpx.Client.stream``, within one deadline for the whole exchange (the
        target's timeout unless given), and the response headers within `headers_deadline`
        when given (a stream's first token cannot come before them); the transfer phase ends
        when the block exits.

        Read the body with :func:`slo.exchange.body.iter_body` (or :mod:`slo.probe.sse`) to keep
        its size capped.
        """
        budget = self.target.timeout if deadline is None else deadline
        # httpx bounds each read by the client's timeout (the target's): under a longer
        # deadline it would fire first, and the message would name a deadline that did not.
        kwargs.setdefault("timeout", budget)
        with self._exchange(method, path, kwargs, budget, headers_deadline) as (response, finish):
            try:
                yield response
            finally:
                finish(response.status_code)

    @contextmanager
    def _exchange(
        self,
        method: str,
        path: str,
        kwargs: dict[str, Any],
        budget: float,
        headers_budget: float | None = None,
    ) -> Iterator[tuple[httpx.Response, Callable[..., RequestRecord]]]:
        """Build, send and time one request; its body streams until the block ends.

        Redirects are never followed: a probe checks the answer it got, and following one
        would send the target's token and headers to wherever the target points.
        """
        send_options = {key: kwargs.pop(key) for key in ("auth",) if key in kwargs}
        kwargs.pop("follow_redirects", None)
        try:
            request = self._client.build_request(method, path, **_traced(kwargs, self.name))
        except httpx.InvalidURL as exc:
            shown = path.split("?", 1)[0]  # a query string may carry a key
            raise ProbeFailure(f"{self.name}: {method} {shown}: invalid URL: {exc}", "error") from None
        with self._timed(method, safe_url(request.url), budget, headers_budget) as finish:
            # A nested deadline only shortens the exchange's: without a headers budget, a no-op.
            with exchange_deadline(budget if headers_budget is None else headers_budget):
                response = self._client.send(request, stream=True, follow_redirects=False, **send_options)
            try:
                yield response, finish
            finally:
                response.close()

    @contextmanager
    def _timed(
        self, method: str, url: str, budget: float, headers_budget: float | None = None
    ) -> Iterator[Callable[..., RequestRecord]]:
        with timing() as clock:
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
                with exchange_deadline(budget):
                    yield finish
            except TRANSPORT_ERRORS as exc:
                description, reason = describe_failure(exc, clock, budget, headers_budget)
                record = finish(None, reason)
                raise ProbeFailure(
                    f"{self.name}: {method} {url}: {description} after {format_ms(record.elapsed)}",
                    reason,
                    record,
                ) from None
