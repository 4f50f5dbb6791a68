"""The `load:` section of `monitoring.yaml`."""

from __future__ import annotations

from pydantic import Field

from slo.model import Duration, Fraction, StrictModel

__all__ = ["LoadSettings", "Thresholds"]


class Thresholds(StrictModel):
    """Limits for one Locust request name, or for the total. Unset percentiles are not gated."""

    p50: Duration | None = None
    p95: Duration | None = 2.0
    p99: Duration | None = None
    error_rate: Fraction = 0.05
    #: A P95 claim at 95 % confidence needs at least 59 samples (0.95**59 < 0.05).
    min_requests: int = Field(59, ge=1)


class LoadSettings(StrictModel):
    users: int = Field(10, ge=1)
    spawn_rate: float = Field(5, gt=0)
    duration: Duration = 30.0
    #: Requests during the first `warmup` seconds are excluded from the verdict.
    warmup: Duration = 0.0
    #: Relative weight of each user class in `load/locustfile.py`; 0 disables one.
    scenarios: dict[str, int] = Field(
        default_factory=lambda: {"api_health": 3, "sandbox_status": 1, "chat_completion": 1}
    )
    think_time_min: Duration = 0.1
    think_time_max: Duration = 0.5
    total: Thresholds = Thresholds()
    endpoints: dict[str, Thresholds] = Field(default_factory=dict)
