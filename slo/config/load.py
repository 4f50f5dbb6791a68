"""The `load:` section of `monitoring.yaml`.

>>> settings = LoadSettings.model_validate({"users": 20, "total": {"p95": "1500ms"}})
>>> settings.total.p95, settings.total.error_rate, settings.total.min_requests
(1.5, 0.05, 59)

Thresholds default to the seed chapter's SLOs: P95 under 2 s and fewer than 5 % errors for
the whole run. Per-endpoint thresholds are keyed by the endpoint as Locust names it,
``"METHOD name"``, e.g. ``"GET /health"`` or ``"POST /v1/chat/completions"``.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from slo.config.fields import Duration, Fraction, StrictModel

__all__ = ["PERCENTILES", "LoadSettings", "PercentileName", "Thresholds"]

PercentileName = Literal["p50", "p95", "p99"]
#: The percentile thresholds a :class:`Thresholds` may set, with the quantile each gates.
PERCENTILES: dict[PercentileName, float] = {"p50": 0.50, "p95": 0.95, "p99": 0.99}

_ENDPOINT_KEY = re.compile(r"^\S+ \S.*$")


class Thresholds(StrictModel):
    """Limits for one endpoint, or for the total. Unset percentiles are not gated."""

    p50: Duration | None = None
    p95: Duration | None = 2.0
    p99: Duration | None = None
    error_rate: Fraction = 0.05
    #: Fewer requests than this can never pass (a P95 claim at 95 % confidence needs 59).
    min_requests: int = Field(default=59, ge=1)

    def percentile_limits(self) -> dict[PercentileName, float]:
        """The percentile thresholds that are set, in seconds, e.g. ``{"p95": 2.0}``."""
        limits: dict[PercentileName, float | None] = {
            "p50": self.p50,
            "p95": self.p95,
            "p99": self.p99,
        }
        return {name: limit for name, limit in limits.items() if limit is not None}


class LoadSettings(StrictModel):
    users: int = Field(default=10, ge=1)
    spawn_rate: float = Field(default=5, gt=0)
    #: How long the measured part of the run lasts, after the warm-up.
    duration: Duration = 30.0
    #: Requests finishing in the first `warmup` seconds are left out of the verdict (and of
    #: Locust's own statistics): cold caches and the ramp-up are not the steady state.
    warmup: Duration = 0.0
    #: Relative weight of each scenario (user class) in the locustfile; 0 disables one.
    scenarios: dict[str, Annotated[int, Field(ge=0)]] = Field(
        default_factory=lambda: {"api_health": 3, "sandbox_status": 1, "chat_completion": 1}
    )
    think_time_min: Duration = 0.1
    think_time_max: Duration = 0.5
    #: One-sided confidence of every bound: on percentiles and on error ratios.
    confidence: Fraction = 0.95
    #: What a load generator that ran out of CPU (over 90 %, as Locust warns) does to the
    #: verdict: `warn` states it beside the verdict; `inconclusive` also refuses a pass,
    #: because a saturated generator measures its own queueing and offers less load.
    cpu_saturation: Literal["warn", "inconclusive"] = "warn"
    total: Thresholds = Thresholds()
    endpoints: dict[str, Thresholds] = Field(default_factory=dict)

    @field_validator("duration")
    @classmethod
    def _positive_duration(cls, duration: float) -> float:
        if duration <= 0:
            raise ValueError("duration must be more than 0s")
        return duration

    @field_validator("endpoints")
    @classmethod
    def _endpoint_keys(cls, endpoints: dict[str, Thresholds]) -> dict[str, Thresholds]:
        for key in endpoints:
            if not _ENDPOINT_KEY.match(key):
                raise ValueError(
                    f"endpoint {key!r}: write it as Locust names it, 'METHOD name' (e.g. 'GET /health')"
                )
        return endpoints

    @field_validator("confidence")
    @classmethod
    def _confidence_below_one(cls, confidence: float) -> float:
        if not 0.5 <= confidence < 1:
            raise ValueError("confidence must be at least 50 and below 100 (percent)")
        return confidence

    @model_validator(mode="after")
    def _consistent(self) -> LoadSettings:
        if self.think_time_min > self.think_time_max:
            raise ValueError("think_time_min must not exceed think_time_max")
        if self.scenarios and not any(self.scenarios.values()):
            raise ValueError("scenarios: at least one scenario needs a weight above 0")
        return self
