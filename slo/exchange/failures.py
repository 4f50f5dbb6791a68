"""What kind of failure an exchange had: its reason (:mod:`slo.exchange.reasons`) and one line.

:class:`ProbeFailure` is the verdict a probe fails with; the transport errors, error bodies and
HTTP statuses of every exchange (probes, push, load gate) are classified here.
"""

from __future__ import annotations

import json
import socket
import ssl
from typing import Any

import httpx

from slo.exchange.reasons import FAILURE_REASONS, FailureReason
from slo.exchange.records import RequestRecord
from slo.redact import MAX_MESSAGE, scrub

__all__ = [
    "FAILURE_REASONS",
    "FailureReason",
    "ProbeFailure",
    "classify_status",
    "describe_exception",
    "error_message",
]

#: LiteLLM's error types (``error.type``) for a key it could not accept: besides 401/403 it
#: answers 400 ``no_db_connection`` for any key but the master key when it has no database.
_AUTH_ERROR_TYPES = frozenset({"auth_error", "no_db_connection", "token_not_found_in_db", "expired_key"})
_MESSAGE_LIMIT = 200


class ProbeFailure(AssertionError):
    """A probe's verdict with a message for people and a bounded reason for metrics.

    An AssertionError, so pytest reports it as a plain test failure. The message is scrubbed
    of every known secret here, where every probe failure is made, and bounded.
    """

    def __init__(
        self, message: str, reason: FailureReason = "assertion", record: RequestRecord | None = None
    ) -> None:
        text = scrub(message)
        super().__init__(text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + "...")
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
    return text.strip().splitlines()[0].strip()[:_MESSAGE_LIMIT] if text.strip() else ""


def error_message(body: str) -> tuple[str, str]:
    """The first line of an error body's message and its type, as OpenAI-style gateways send it.

    ``{"error": {"message": "litellm.RateLimitError: ...\\n...", "type": "throttling_error"}}``
    gives ``("litellm.RateLimitError: ...", "throttling_error")``; FastAPI's ``{"detail": ...}``,
    a bare JSON string and plain text are read too. Stack traces after the first line are
    dropped: one line is what a failure message and a metric label can carry.
    """
    try:
        document: Any = json.loads(body)
    except ValueError:
        return _first_line(body), ""
    kind = ""
    for key in ("error", "detail"):
        if isinstance(document, dict) and key in document:
            document = document[key]
    if isinstance(document, dict):
        kind = str(document.get("type") or "")
        document = document.get("message", document.get("error", ""))
    text = document if isinstance(document, str) else json.dumps(document) if document else ""
    return _first_line(text), kind


def classify_status(status: int, body: str) -> tuple[FailureReason, str]:
    """The reason for an unexpected HTTP status, and the first line of the error it carried.

    One place decides it, for every probe and check: 401/403 and LiteLLM's key errors are
    ``auth``, its budget-exceeded answer (429 or 422 by version) ``budget``, other 429s
    ``rate_limit``, 503/529 (overloaded upstream) ``overloaded``, other 5xx ``upstream``.
    """
    message, kind = error_message(body)
    if kind == "budget_exceeded" or "budget has been exceeded" in message.lower():
        reason: FailureReason = "budget"
    elif status in (401, 403) or kind in _AUTH_ERROR_TYPES or kind.endswith("_access_denied"):
        reason = "auth"
    elif status == 429:
        reason = "rate_limit"
    elif status in (503, 529):
        reason = "overloaded"
    elif status >= 500:
        reason = "upstream"
    else:
        reason = "http_status"
    return reason, message
