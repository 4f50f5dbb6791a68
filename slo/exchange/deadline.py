"""One wall-clock deadline for a whole HTTP exchange, enforced at every socket operation.

httpx's timeouts bound each network read, so a server that trickles its headers or body a
byte at a time never times out. Here every connect, TLS handshake, read and write is given at
most the time left until the exchange's deadline, and none starts once it has passed, so the
whole exchange (DNS, connect, TLS, headers, body, stream) ends by its deadline:

    with exchange_deadline(3.0):
        client.get("/health")  # raises httpx.ReadTimeout 3 s from now at the latest

The deadline lives in a context variable, so concurrent requests in threads each keep their
own. A run-level deadline (:func:`set_run_deadline`) caps every exchange that starts or is
still running, so a run always ends, in time to save and push what it measured.
"""

from __future__ import annotations

import contextvars
import ssl
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpcore

__all__ = [
    "DeadlineBackend",
    "exchange_deadline",
    "probe_deadline",
    "remaining",
    "run_deadline_passed",
    "set_run_deadline",
]

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "slo_exchange_deadline", default=None
)
#: time.monotonic() at which the whole run must stop waiting on targets; None: no run limit.
_run_deadline: list[float | None] = [None]
#: False inside the push: recording the run is what the run deadline leaves time for.
_run_bound: contextvars.ContextVar[bool] = contextvars.ContextVar("slo_run_bound", default=True)


def set_run_deadline(seconds: float | None) -> None:
    """Cap every exchange of this process at `seconds` from now (None lifts the cap).

    Process-wide on purpose: it is the limit of the run this process is part of.
    """
    _run_deadline[0] = None if seconds is None else time.monotonic() + seconds


def run_deadline_passed() -> bool:
    limit = _run_deadline[0]
    return limit is not None and time.monotonic() >= limit


def probe_deadline(seconds: float) -> float:
    """The ``time.monotonic()`` by which a probe's own wait of `seconds` (a subprocess, a
    socket, a file walk) must end: its own timeout or the run deadline, whichever is first."""
    own, run = time.monotonic() + seconds, _run_deadline[0]
    return own if run is None else min(own, run)


def _effective() -> float | None:
    own, run = _deadline.get(), _run_deadline[0] if _run_bound.get() else None
    if own is None or run is None:
        return own if run is None else run
    return min(own, run)


def remaining() -> float | None:
    """Seconds left until the current exchange's deadline (None: no deadline)."""
    at = _effective()
    return None if at is None else at - time.monotonic()


@contextmanager
def exchange_deadline(seconds: float, *, within_run: bool = True) -> Iterator[None]:
    """Every socket operation inside the block ends within `seconds` from now.

    Nested blocks can only shorten the deadline (a stream's first-token deadline inside its
    total deadline), never extend it. ``within_run=False`` (the push) is bound by `seconds`
    only, not by the run deadline: the results must still be recorded after it.
    """
    at = time.monotonic() + seconds
    outer = _deadline.get()
    token = _deadline.set(at if outer is None else min(at, outer))
    bound = _run_bound.set(_run_bound.get() and within_run)
    try:
        yield
    finally:
        _run_bound.reset(bound)
        _deadline.reset(token)


def _bounded(timeout: float | None, expired: type[Exception], phase: str) -> float | None:
    left = remaining()
    if left is None:
        return timeout
    if left <= 0:
        raise expired(f"deadline reached before {phase}")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write gets at most the time left."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout, "reading"))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bounded(timeout, httpcore.WriteTimeout, "writing"))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout, "the TLS handshake")
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, bounded))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """Wraps a network backend so that its connections obey the current exchange deadline."""

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
        bounded = _bounded(timeout, httpcore.ConnectTimeout, "connecting")
        return _DeadlineStream(self._inner.connect_tcp(host, port, bounded, local_address, socket_options))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout, "connecting")
        return _DeadlineStream(self._inner.connect_unix_socket(path, bounded, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)
