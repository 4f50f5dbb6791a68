"""What kind of failure a probe had: the closed `reason` vocabulary and its one-line messages.

Reasons label pushed series, so the set is small and fixed; each has its README line.
"""

from __future__ import annotations

import socket
import ssl
from typing import TYPE_CHECKING, Literal

import httpx

if TYPE_CHECKING:
    from slo.probe.client import RequestRecord

__all__ = ["FAILURE_REASONS", "FailureReason", "ProbeFailure", "describe_exception"]

FailureReason = Literal["dns", "connect", "tls", "timeout", "http_status", "assertion", "error"]
FAILURE_REASONS: tuple[FailureReason, ...] = (
    "dns", "connect", "tls", "timeout", "http_status", "assertion", "error",
)  # fmt: skip


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
