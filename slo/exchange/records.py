"""What one exchange leaves behind: its phases and a record of the request."""

from __future__ import annotations

from dataclasses import dataclass

from slo.exchange.reasons import FailureReason

__all__ = ["Phases", "RequestRecord"]


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
