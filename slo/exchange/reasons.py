"""The closed vocabulary of failure reasons: each labels pushed series and has its line in
docs/metrics.md, so the set is small and fixed."""

from __future__ import annotations

from typing import Literal

__all__ = ["FAILURE_REASONS", "FailureReason"]

FailureReason = Literal[
    "dns", "connect", "tls", "timeout",
    "http_status", "auth", "rate_limit", "budget", "overloaded", "upstream",
    "assertion", "stream", "fallback",
    "error",
]  # fmt: skip
FAILURE_REASONS: tuple[FailureReason, ...] = (
    "dns", "connect", "tls", "timeout",
    "http_status", "auth", "rate_limit", "budget", "overloaded", "upstream",
    "assertion", "stream", "fallback",
    "error",
)  # fmt: skip
