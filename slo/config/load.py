"""The `load:` section of `monitoring.yaml`.

>>> settings = LoadSettings.model_validate({"users": 20, "total": {"p95": "1500ms"}})
>>> settings.total.p95, settings.total.error_rate, settings.total.min_requests
(1.5, 0.05, 59)

Thresholds default to the seed chapter's SLOs: P95 under 2 s and fewer than 5 % errors for
the whole run. Per-endpoint thresholds are keyed by the endpoint as Locust names it,
``"METHOD name"``, e.g. ``"GET /health"`` or ``"POST /v1/chat/completions"``.

Streamed answers (the `chat_stream` scenario) have two more measures with thresholds of their
own: the time to first token (``ttft_p50/p95/p99``, lower is better) and output tokens per
second (``tokens_per_second_p5/p50``, higher is better: p5 is the slow end users notice).

>>> chat = Thresholds.model_validate({"ttft_p95": "2s", "tokens_per_second_p50": 20})
>>> chat.first_token_limits(), chat.token_rate_limits()
({'ttft_p95': 2.0}, {'tokens_per_second_p50': 20.0})
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Literal, TypeVar

from pydantic import Field, ValidationInfo, field_validator, model_validator

from slo.config.fields import Duration, Fraction, StrictModel

__all__ = [
    "FIRST_TOKEN_PERCENTILES",
    "PERCENTILES",
    "TOKEN_RATE_PERCENTILES",
    "BaselineSettings",
    "FirstTokenName",
    "LoadSettings",
    "PercentileName",
    "Thresholds",
    "TokenRateName",
]

PercentileName = Literal["p50", "p95", "p99"]
#: The percentile thresholds a :class:`Thresholds` may set, with the quantile each gates.
PERCENTILES: dict[PercentileName, float] = {"p50": 0.50, "p95": 0.95, "p99": 0.99}
FirstTokenName = Literal["ttft_p50", "ttft_p95", "ttft_p99"]
#: Time-to-first-token thresholds, with the quantile each gates.
FIRST_TOKEN_PERCENTILES: dict[FirstTokenName, float] = {"ttft_p50": 0.50, "ttft_p95": 0.95, "ttft_p99": 0.99}
TokenRateName = Literal["tokens_per_second_p5", "tokens_per_second_p50"]
#: Output-tokens-per-second thresholds (minimums), with the quantile each gates.
TOKEN_RATE_PERCENTILES: dict[TokenRateName, float] = {
    "tokens_per_second_p5": 0.05,
    "tokens_per_second_p50": 0.50,
}

_Name = TypeVar("_Name", bound=str)

_ENDPOINT_KEY = re.compile(r"^\S+ \S.*$")


class Thresholds(StrictModel):
    """Limits for one endpoint, or for the total. Unset percentiles are not gated."""

    p50: Duration | None = None
    p95: Duration | None = 2.0
    p99: Duration | None = None
    error_rate: Fraction = 0.05
    #: Fewer requests than this can never pass (a P95 claim at 95 % confidence needs 59);
    #: for the streamed measures, fewer streamed answers.
    min_requests: int = Field(default=59, ge=1)
    #: Maximum time to the first content token of a streamed answer.
    ttft_p50: Duration | None = None
    ttft_p95: Duration | None = None
    ttft_p99: Duration | None = None
    #: Minimum output tokens per second of a streamed answer.
    tokens_per_second_p5: Annotated[float, Field(gt=0)] | None = None
    tokens_per_second_p50: Annotated[float, Field(gt=0)] | None = None

    def _set(self, names: Iterable[_Name]) -> dict[_Name, float]:
        limits = {name: getattr(self, name) for name in names}
        return {name: limit for name, limit in limits.items() if limit is not None}

    def percentile_limits(self) -> dict[PercentileName, float]:
        """The latency percentile thresholds that are set, in seconds, e.g. ``{"p95": 2.0}``."""
        return self._set(PERCENTILES)

    def first_token_limits(self) -> dict[FirstTokenName, float]:
        """The time-to-first-token thresholds that are set, in seconds."""
        return self._set(FIRST_TOKEN_PERCENTILES)

    def token_rate_limits(self) -> dict[TokenRateName, float]:
        """The output-tokens-per-second thresholds that are set (minimums)."""
        return self._set(TOKEN_RATE_PERCENTILES)


def _sensible_confidence(confidence: float) -> float:
    if not 0.5 <= confidence < 1:
        raise ValueError("confidence must be at least 50 and below 100 (percent)")
    return confidence


class BaselineSettings(StrictModel):
    """How a run is compared with a baseline run (`slo load --baseline`).

    >>> BaselineSettings.model_validate({"noise": "10%"}).noise
    0.1
    """

    #: Changes smaller than this share are noise: a regression is an interval wholly past it.
    noise: Fraction = 0.05
    #: Two-sided confidence of every comparison's interval.
    confidence: Fraction = 0.95

    _confidence_below_one = field_validator("confidence")(_sensible_confidence)

    @field_validator("noise")
    @classmethod
    def _noise_below_one(cls, noise: float) -> float:
        if noise >= 1:
            raise ValueError("noise must be below 100 (percent)")
        return noise


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
    #: A streamed answer (the `chat_stream` scenario) not finished this long after its request
    #: was sent is a failed request; each wait for the next byte has the target's `timeout`.
    stream_timeout: Duration = 60.0
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
    baseline: BaselineSettings = BaselineSettings()

    @field_validator("duration", "stream_timeout")
    @classmethod
    def _positive_duration(cls, duration: float, info: ValidationInfo) -> float:
        if duration <= 0:
            raise ValueError(f"{info.field_name} must be more than 0s")
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

    _confidence_below_one = field_validator("confidence")(_sensible_confidence)

    @model_validator(mode="after")
    def _consistent(self) -> LoadSettings:
        if self.think_time_min > self.think_time_max:
            raise ValueError("think_time_min must not exceed think_time_max")
        if self.scenarios and not any(self.scenarios.values()):
            raise ValueError("scenarios: at least one scenario needs a weight above 0")
        return self
