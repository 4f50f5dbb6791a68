"""Settings of the shipped probe modules (`probes:` in the config)."""

from __future__ import annotations

from pydantic import Field

from slo.config.fields import Duration, Fraction, StrictModel

__all__ = [
    "GatewayProbe",
    "LatencyEndpoint",
    "LatencyProbe",
    "MetricsProbe",
    "Probes",
    "ResourcesProbe",
    "TlsProbe",
]


class LatencyEndpoint(StrictModel):
    target: str
    path: str = "/health"
    #: The `probe_latency` SLO this endpoint proves; its threshold and objective are used.
    slo: str = ""


class LatencyProbe(StrictModel):
    samples: int = Field(60, ge=1)
    #: Total time budget for all samples of one endpoint, so a hung target costs one timeout.
    deadline: Duration = 30.0
    #: Used when an endpoint links no SLO.
    threshold: Duration = 2.0
    quantile: Fraction = 0.95
    confidence: Fraction = 0.95
    endpoints: list[LatencyEndpoint] = Field(default_factory=lambda: [LatencyEndpoint(target="api")])


class GatewayProbe(StrictModel):
    target: str = "gateway"
    prompt: str = "Reply with the word pong."
    max_tokens: int = Field(8, ge=1)
    completion_budget: Duration = 10.0
    first_token_budget: Duration = 2.0


class MetricsProbe(StrictModel):
    target: str = "api"
    path: str = "/metrics"
    required: list[str] = Field(
        default_factory=lambda: [
            "claude_code_api_requests_total",
            "claude_code_api_latency_seconds",
            "claude_code_active_sessions",
            "claude_code_tokens_used_total",
            "claude_code_cost_usd",
        ]
    )


class ResourcesProbe(StrictModel):
    """The seed's health-check thresholds for the runner host and node_exporter targets."""

    disk: Fraction = 0.9
    memory: Fraction = 0.9
    disk_path: str = "/"


class TlsProbe(StrictModel):
    min_days_left: int = Field(14, ge=0)


class Probes(StrictModel):
    latency: LatencyProbe = LatencyProbe()
    gateway: GatewayProbe = GatewayProbe()
    metrics: MetricsProbe = MetricsProbe()
    resources: ResourcesProbe = ResourcesProbe()
    tls: TlsProbe = TlsProbe()
