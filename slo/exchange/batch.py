"""A batch of HTTP exchanges on one event loop: libcurl's multi interface, through pycurl.

    answers = send_batch(exchanges, judge, concurrency=256, budget=256 << 20)

A thread and an httpx client per concurrent request costs more CPU per request than the
request's own round trip, and httpx's AsyncClient more still (bench/bench_checks.py,
docs/benchmarks.md). libcurl runs every transfer of a batch on one loop in C, and times every
phase itself. Every guarantee of the exchange holds as on the httpx path:

- one deadline for the whole exchange, at every socket operation: libcurl's whole-transfer
  timeout (name lookup in its threaded resolver, connect, TLS, headers, body), set from
  :func:`~slo.exchange.deadline.probe_deadline`, so the run deadline caps it too;
- the body capped before and after decompression (:mod:`slo.exchange.body`: libcurl is asked
  for no decoding), its bytes reserved from a :class:`~slo.exchange.budget.ByteBudget` as they
  arrive; each response is judged by `judge` as it completes, and dropped;
- redirects never followed, http and https only;
- failures in the same reasons and one line (:func:`~slo.exchange.transport.describe_failure`),
  scrubbed of secrets by :class:`~slo.exchange.failures.ProbeFailure`.
"""

from __future__ import annotations

import contextlib
import errno
import math
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Generic, TypeVar

import certifi
import httpx
import pycurl

from slo.exchange.body import BodyTooLarge, Inflater, content_decoder
from slo.exchange.budget import ByteBudget, Share
from slo.exchange.deadline import probe_deadline
from slo.exchange.failures import ProbeFailure
from slo.exchange.records import Phases, RequestRecord
from slo.exchange.transport import PhaseClock, describe_failure
from slo.redact import safe_url
from slo.units import format_ms

__all__ = ["Answer", "BatchStopped", "Exchange", "send_batch"]

T = TypeVar("T")

#: Body bytes asked of the budget at a time (a network read is at most 16 KiB).
_STEP = 64 * 1024
#: Longest wait for the sockets before the loop looks at libcurl's timers and its stop flag again.
_IDLE_WAIT = 0.1
#: libcurl's results for a TLS failure (names as pycurl has them; older ones may be absent).
_TLS_ERRORS = frozenset(
    getattr(pycurl, name)
    for name in (
        "E_SSL_CONNECT_ERROR", "E_SSL_CERTPROBLEM", "E_SSL_CIPHER", "E_SSL_CACERT",
        "E_PEER_FAILED_VERIFICATION", "E_SSL_CACERT_BADFILE", "E_SSL_ISSUER_ERROR",
        "E_SSL_PINNEDPUBKEYNOTMATCH", "E_SSL_INVALIDCERTSTATUS", "E_SSL_SHUTDOWN_FAILED",
    )
    if hasattr(pycurl, name)
)  # fmt: skip
#: libcurl's results for a connection that broke or spoke something other than HTTP.
_CONNECTION_ERRORS = frozenset(
    getattr(pycurl, name)
    for name in ("E_COULDNT_CONNECT", "E_GOT_NOTHING", "E_RECV_ERROR", "E_SEND_ERROR", "E_PARTIAL_FILE",
                 "E_WEIRD_SERVER_REPLY", "E_HTTP2", "E_HTTP2_STREAM")
    if hasattr(pycurl, name)
)  # fmt: skip


@dataclass(frozen=True)
class Exchange:
    """One request of a batch: `request` (URL, headers and body, built by httpx), whose
    target `target` names in messages and records, within `timeout` seconds and
    `max_bytes` of body; `verify` False accepts any certificate, `ca_file` trusts a private
    CA instead of certifi's bundle."""

    target: str
    request: httpx.Request
    timeout: float
    max_bytes: int
    verify: bool = True
    ca_file: str | None = None


@dataclass(frozen=True)
class Answer:
    """What an exchange came to: its response, read whole (or the failure), and its record."""

    response: httpx.Response | None
    failure: ProbeFailure | None
    record: RequestRecord


class BatchStopped(Exception):
    """The batch was told to stop (its `stop` event was set) before every exchange was answered."""


class _Transfer:
    """One exchange in flight: its response head, and its body as the budget lets it in."""

    def __init__(
        self,
        index: int,
        exchange: Exchange,
        handle: pycurl.Curl,
        budget: ByteBudget,
        waiting: deque[_Transfer],
    ) -> None:
        self.index = index
        self.exchange = exchange
        self.handle = handle
        self.budget = budget
        #: The batch's queue of transfers waiting for the budget.
        self.waiting = waiting
        self.share = Share()
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.decoder: Inflater | None = None
        self.raw = self.decoded = self.spare = 0
        self.pieces: list[bytes] = []
        #: Arrived and not yet let into the body: it waits for the budget.
        self.tail = b""
        self.error: BaseException | None = None
        #: libcurl's result and the timings, once the transfer ended.
        self.ended: tuple[int, str, int, _Timings] | None = None

    def on_header(self, line: bytes) -> None:
        # libcurl bounds a header line and the whole head itself (CURL_MAX_HTTP_HEADER).
        if line.startswith(b"HTTP/"):  # a new head: after a 100 Continue, the final one
            self.headers, self.headers_done = [], False
        elif line in (b"\r\n", b"\n"):
            self.headers_done = True
        else:
            name, _, value = line.partition(b":")
            self.headers.append((name.strip(), value.strip()))

    def on_body(self, data: bytes) -> int | None:
        """libcurl's write callback: `data` taken in whole (None), or the transfer paused
        (libcurl hands `data` again once it is resumed), or 0 to abort it."""
        if self.tail:
            return pycurl.WRITEFUNC_PAUSE
        try:
            if not self.raw:
                self.decoder = content_decoder(httpx.Headers(self.headers))
            self.raw += len(data)
            if self.raw > self.exchange.max_bytes:
                raise BodyTooLarge(self.exchange.max_bytes)
            self.tail = data
            if not self.drain():
                self.waiting.append(self)
        except BaseException as exc:  # kept for the failure, or re-raised by the loop
            self.error = exc
            return 0
        return None

    def drain(self) -> bool:
        """Let what has arrived into the body as far as the budget allows; False: wait."""
        cap = self.exchange.max_bytes
        while self.tail:
            if not self.spare:
                self.spare = self.budget.grant(self.share, min(_STEP, cap + 1 - self.decoded))
                if not self.spare:
                    return False
            if self.decoder is None:
                piece, self.tail = self.tail[: self.spare], self.tail[self.spare :]
            else:
                piece, self.tail = self.decoder.step(self.tail, self.spare)
            self.spare -= len(piece)
            self.decoded += len(piece)
            if self.decoded > cap:
                raise BodyTooLarge(cap)
            self.pieces.append(piece)
        return True

    def answer(self) -> Answer:
        assert self.ended is not None
        code, message, os_errno, timings = self.ended
        exchange, request = self.exchange, self.exchange.request
        url = safe_url(request.url)
        if code == pycurl.E_OK and self.error is None:
            status = timings.status
            record = RequestRecord(
                exchange.target, request.method, url, status, timings.total, timings.phases
            )
            response = httpx.Response(status, headers=self.headers, request=request)
            # httpx's cache of a read body: .content, .text and .json() work as usual.
            response._content = b"".join(self.pieces)
            response.elapsed = timedelta(seconds=timings.total)
            return Answer(response, None, record)
        error = self.error or _transport_error(code, message, os_errno, request.url.host)
        if not isinstance(error, Exception):
            raise error  # Ctrl-C or SIGTERM (slo.stopping) inside a callback: the run stops
        clock = PhaseClock()
        if timings.sent:
            clock.mark("send_request_headers.started")
        if self.headers_done:
            clock.mark("receive_response_headers.complete")
        description, reason = describe_failure(error, clock, exchange.timeout)
        record = RequestRecord(
            exchange.target, request.method, url, None, timings.total, timings.phases, reason
        )
        failure = ProbeFailure(
            f"{exchange.target}: {request.method} {url}: {description} after {format_ms(record.elapsed)}",
            reason,
            record,
        )
        return Answer(None, failure, record)


@dataclass(frozen=True)
class _Timings:
    status: int
    total: float
    phases: Phases
    #: Whether the request was being sent (libcurl had connected and was ready to).
    sent: bool


def _timings(handle: pycurl.Curl) -> _Timings:
    """libcurl's own clock: each phase ends at a time since the transfer started."""
    lookup, connected, handshaken, ready, first_byte, total = (
        handle.getinfo(info)
        for info in (
            pycurl.NAMELOOKUP_TIME, pycurl.CONNECT_TIME, pycurl.APPCONNECT_TIME,
            pycurl.PRETRANSFER_TIME, pycurl.STARTTRANSFER_TIME, pycurl.TOTAL_TIME,
        )
    )  # fmt: skip
    reused = handle.getinfo(pycurl.NUM_CONNECTS) == 0 and connected > 0
    phases = Phases(
        # A kept-alive connection has no set-up phases, as on the httpx path.
        dns=0.0 if reused else lookup,
        connect=0.0 if reused else max(0.0, connected - lookup),
        tls=0.0 if reused or not handshaken else max(0.0, handshaken - connected),
        ttfb=max(0.0, first_byte - ready) if first_byte else 0.0,
        transfer=max(0.0, total - first_byte) if first_byte else 0.0,
    )
    return _Timings(int(handle.getinfo(pycurl.RESPONSE_CODE)), total, phases, ready > 0)


def _transport_error(code: int, message: str, os_errno: int, host: str) -> Exception:
    """libcurl's result as the httpx error the exchange's classification knows."""
    if code == pycurl.E_OPERATION_TIMEDOUT:
        return httpx.TimeoutException(message)
    if code == pycurl.E_COULDNT_RESOLVE_HOST:
        return httpx.ConnectError(f"name resolution failed for {host}")
    if code == pycurl.E_COULDNT_CONNECT and os_errno == errno.ECONNREFUSED:
        return httpx.ConnectError("connection refused")
    if code in _TLS_ERRORS:
        error = httpx.ConnectError(message)
        error.__cause__ = ssl.SSLError(code, message)  # (code, text): str() is the text
        return error
    if code in _CONNECTION_ERRORS:
        return httpx.ConnectError(message)
    return httpx.TransportError(message)


class _Batch(Generic[T]):
    def __init__(
        self,
        exchanges: Sequence[Exchange],
        judge: Callable[[int, Answer], T],
        concurrency: int,
        budget: int,
        stop: threading.Event | None,
    ) -> None:
        self.exchanges = exchanges
        self.judge = judge
        self.stop = stop
        self.budget = ByteBudget(budget, max(exchange.max_bytes for exchange in exchanges))
        self.waiting: deque[_Transfer] = deque()
        self.results: dict[int, T] = {}
        self.multi = pycurl.CurlMulti()
        self.idle = [pycurl.Curl() for _ in range(max(1, min(concurrency, len(exchanges))))]
        self.handles = list(self.idle)
        self.running: dict[pycurl.Curl, _Transfer] = {}
        self._waking = False

    def run(self) -> list[T]:
        upcoming = iter(enumerate(self.exchanges))
        try:
            while True:
                while self.idle and (following := next(upcoming, None)) is not None:
                    self.start(*following)
                if not self.running and not self.waiting:
                    break
                if self.stop is not None and self.stop.is_set():
                    raise BatchStopped(
                        f"stopped with {len(self.exchanges) - len(self.results)} exchanges unanswered"
                    )
                while self.multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
                    pass
                self.collect()
                if self.running:
                    wait = self.multi.timeout()
                    self.multi.select(_IDLE_WAIT if wait < 0 else min(wait / 1000, _IDLE_WAIT))
        finally:
            for handle in self.running:
                self.multi.remove_handle(handle)
            for handle in self.handles:
                handle.close()
            self.multi.close()
        return [self.results[index] for index in range(len(self.exchanges))]

    def start(self, index: int, exchange: Exchange) -> None:
        handle = self.idle.pop()
        transfer = _Transfer(index, exchange, handle, self.budget, self.waiting)
        request = exchange.request
        handle.reset()  # keeps the handle's connections, forgets the last request's options
        handle.setopt(pycurl.URL, str(request.url))
        handle.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        handle.setopt(pycurl.NOSIGNAL, 1)
        # HTTP/1.1, as the httpx path speaks: one request per connection at a time, so the
        # phases of a request are its own.
        handle.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
        # Each new connection looks its name up, as on the httpx path: the dns phase is real.
        handle.setopt(pycurl.DNS_CACHE_TIMEOUT, 0)
        headers = [
            f"{name.decode('latin-1')}: {value.decode('latin-1')}"
            for name, value in request.headers.raw
            if name.lower() != b"host"
        ]
        # "Name:" drops a header libcurl would add: no "Expect: 100-continue" wait before a
        # large body, and no form Content-Type on a body httpx sends without one.
        dropped = ["Expect:"] + ([] if "content-type" in request.headers else ["Content-Type:"])
        handle.setopt(pycurl.HTTPHEADER, headers + dropped)
        if request.method == "HEAD":
            handle.setopt(pycurl.NOBODY, 1)
        elif request.method != "GET" or request.content:
            handle.setopt(pycurl.CUSTOMREQUEST, request.method)
            if request.content or request.method == "POST":
                handle.setopt(pycurl.POSTFIELDS, request.content)
        left = probe_deadline(exchange.timeout) - time.monotonic()
        # Rounded up: a deadline held is never earlier than the timeout.
        milliseconds = max(1, math.ceil(left * 1000) + 1)
        handle.setopt(pycurl.TIMEOUT_MS, milliseconds)
        handle.setopt(pycurl.CONNECTTIMEOUT_MS, milliseconds)
        if exchange.verify:
            handle.setopt(pycurl.CAINFO, exchange.ca_file or certifi.where())
        else:
            handle.setopt(pycurl.SSL_VERIFYPEER, 0)
            handle.setopt(pycurl.SSL_VERIFYHOST, 0)
        handle.setopt(pycurl.HEADERFUNCTION, transfer.on_header)
        handle.setopt(pycurl.WRITEFUNCTION, transfer.on_body)
        self.running[handle] = transfer
        self.multi.add_handle(handle)

    def collect(self) -> None:
        while True:
            queued, succeeded, failed = self.multi.info_read()
            for handle in succeeded:
                self.ended(handle, pycurl.E_OK, "")
            for handle, code, message in failed:
                self.ended(handle, code, message)
            if not queued:
                return

    def ended(self, handle: pycurl.Curl, code: int, message: str) -> None:
        transfer = self.running.pop(handle)
        if code != pycurl.E_OK and transfer in self.waiting:
            self.waiting.remove(transfer)  # it timed out while it waited
        transfer.ended = (code, message, handle.getinfo(pycurl.OS_ERRNO), _timings(handle))
        self.multi.remove_handle(handle)
        self.idle.append(handle)
        if transfer.error is not None and not isinstance(transfer.error, Exception):
            raise transfer.error
        if code != pycurl.E_OK or not transfer.tail:
            self.finish(transfer)
        # else: its last bytes wait for the budget; wake() finishes it.

    def finish(self, transfer: _Transfer) -> None:
        try:
            self.results[transfer.index] = self.judge(transfer.index, transfer.answer())
        finally:
            self.budget.release(transfer.share)
            transfer.pieces = []
        self.wake()

    def wake(self) -> None:
        """Let waiting responses in, first come first: after a release there is room."""
        if self._waking:
            return
        self._waking = True
        try:
            while self.waiting:
                transfer = self.waiting[0]
                try:
                    if not transfer.drain():
                        return
                except Exception as exc:  # over the cap, or undecodable: this exchange's failure
                    transfer.error = exc
                self.waiting.popleft()
                if transfer.ended is not None:
                    self.finish(transfer)
                elif transfer.error is not None:
                    # Failed while it waited: end it now, as the write callback would.
                    self.running.pop(transfer.handle)
                    transfer.ended = (pycurl.E_WRITE_ERROR, "", 0, _timings(transfer.handle))
                    self.multi.remove_handle(transfer.handle)
                    self.idle.append(transfer.handle)
                    self.finish(transfer)
                else:
                    # An error: its transfer is done already, and info_read says so next.
                    with contextlib.suppress(pycurl.error):
                        transfer.handle.pause(pycurl.PAUSE_CONT)
        finally:
            self._waking = False


def send_batch(
    exchanges: Sequence[Exchange],
    judge: Callable[[int, Answer], T],
    *,
    concurrency: int,
    budget: int,
    stop: threading.Event | None = None,
) -> list[T]:
    """`judge(index, answer)` of every exchange, in order, each called as its answer comes in
    (its body is dropped when it returns); at most `concurrency` exchanges at once, and at
    most `budget` bytes of bodies held (plus one network read per exchange in flight).
    Failures are answers, never raised; Ctrl-C and SIGTERM stop the batch.

    Run in a thread, the batch lets the others run while it waits on its sockets: pycurl
    releases the GIL in libcurl's perform and select, and takes it only for the callbacks.
    Setting `stop` ends it within `_IDLE_WAIT` (its transfers closed) with
    :class:`BatchStopped`: signals reach only the main thread."""
    if not exchanges:
        return []
    return _Batch(exchanges, judge, concurrency, budget, stop).run()
