"""Settings of the shipped probe modules (`probes:` in the config)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from slo.config.fields import Duration, Fraction, StrictModel

__all__ = [
    "METRIC_PRESETS",
    "GatewayModel",
    "GatewayProbe",
    "LatencyEndpoint",
    "LatencyProbe",
    "MetricNames",
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


#: The least ``max_tokens`` a reasoning model is asked for: below it the reasoning eats the
#: whole allowance and the answer is empty, a false failure (LiteLLM #26987 at max_tokens 1);
#: 1024 is also Anthropic's minimum thinking budget.
REASONING_MAX_TOKENS = 1024

GatewayApi = Literal["chat", "messages"]


class GatewayModel(StrictModel):
    """One model group probed on its own; unset fields take `probes.gateway`'s."""

    name: str = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    #: A reasoning model: asked for at least :data:`REASONING_MAX_TOKENS`.
    reasoning: bool = False
    completion_budget: Duration | None = None
    first_token_budget: Duration | None = None
    max_token_gap: Duration | None = None


#: The longest gap between streamed tokens, by default, in first-token budgets: a model that
#: may take 2 s to start may pause 10 s mid-answer, not longer, before a user gives up on it.
TOKEN_GAP_IN_FIRST_TOKEN_BUDGETS = 5


class GatewayProbe(StrictModel):
    target: str = "gateway"
    prompt: str = "Reply with the word pong."
    max_tokens: int = Field(8, ge=1)
    completion_budget: Duration = 10.0
    first_token_budget: Duration = 2.0
    #: The longest wait between two streamed content tokens before a stream fails (a stall
    #: mid-answer); unset: :data:`TOKEN_GAP_IN_FIRST_TOKEN_BUDGETS` first-token budgets.
    max_token_gap: Duration | None = None
    #: How long ``GET /health?model=`` may take (capped at the target's timeout): LiteLLM calls
    #: each deployment live and retries a throttled one after its Retry-After, for minutes.
    health_timeout: Duration = 5.0
    #: At most this many model groups are probed under ``models: discover`` (the rest are
    #: cut, with a warning): each costs real completions on every run.
    max_models: int = Field(20, ge=1)
    #: USD one run of the LLM probes may be estimated to cost (from the cost headers of past
    #: runs) before they refuse to start (skipped, saying why); unset: no ceiling.
    max_run_cost: float | None = Field(None, ge=0)
    #: An answer from a fallback model (LiteLLM's ``x-litellm-attempted-fallbacks``, or a
    #: model group other than the one asked for) fails the chat probes unless this is true.
    allow_fallbacks: bool = False
    #: Model groups probed one by one (health, chat, streaming): names or mappings
    #: (:class:`GatewayModel`), or ``discover`` to read them from ``/v1/models`` when the probes
    #: are collected; empty: the target's model.
    models: list[GatewayModel] | Literal["discover"] = Field(default_factory=list)
    #: The APIs the chat probes speak: OpenAI ``chat`` completions, Anthropic ``messages``.
    apis: list[GatewayApi] = Field(default_factory=lambda: list[GatewayApi](["chat"]), min_length=1)
    #: The tool-use round trip probes (per API in `apis`): a tool offered, a well-formed call
    #: back, its result sent, a final text answer.
    tool_use: bool = False
    #: Probe spend per UTC day (``x-litellm-response-cost``) above which the run warns; 0: off.
    daily_spend_limit: float = Field(0.0, ge=0)
    #: Rate-limit headroom (``x-ratelimit-remaining-requests`` / ``-tokens``) below which the
    #: headroom probe fails; 0: only recorded.
    min_remaining_requests: int = Field(0, ge=0)
    min_remaining_tokens: int = Field(0, ge=0)
    #: USD left of the target key's LiteLLM budget and its team's (``/key/info``, ``/team/info``:
    #: LiteLLM needs its database for them) below which the budget probe fails; 0 fails only
    #: an exhausted budget; unset: no budget probe.
    min_remaining_budget: float | None = Field(None, ge=0)

    @field_validator("models", mode="before")
    @classmethod
    def _names_or_mappings(cls, value: object) -> object:
        if isinstance(value, list):
            return [{"name": item} if isinstance(item, str) else item for item in value]
        return value

    def probed_models(self, default: str, discovered: list[str] | None = None) -> list[GatewayModel]:
        """The models probed one by one, settings resolved: `models`, the `discovered` ones
        (``models: discover``), or `default` (the target's model)."""
        if self.models == "discover":
            models = [GatewayModel(name=name) for name in (discovered or [])[: self.max_models]]
        else:
            models = self.models or [GatewayModel(name=default)]
        return [self.model_settings(model) for model in models]

    def model_settings(self, model: GatewayModel) -> GatewayModel:
        """`model` with every unset field taken from these settings, and the reasoning floor."""
        max_tokens = model.max_tokens or self.max_tokens
        if model.reasoning:
            max_tokens = max(max_tokens, REASONING_MAX_TOKENS)
        first_token_budget = model.first_token_budget or self.first_token_budget
        gap = (
            model.max_token_gap or self.max_token_gap or TOKEN_GAP_IN_FIRST_TOKEN_BUDGETS * first_token_budget
        )
        return model.model_copy(
            update={
                "max_tokens": max_tokens,
                "completion_budget": model.completion_budget or self.completion_budget,
                "first_token_budget": first_token_budget,
                "max_token_gap": gap,
            }
        )


class MetricNames(StrictModel):
    """Which series of a `/metrics` the budget probes read (see :data:`METRIC_PRESETS`)."""

    #: Families that must be present.
    required: list[str]
    #: Request counter, and its label holding the HTTP status (the 5xx ratio).
    requests: str
    status_label: str
    #: Token counter (the token rate since its ``_created``).
    tokens: str
    #: Cost in USD, summed over its series (a gauge or a counter).
    cost: str


#: The seed's API metrics, and a LiteLLM proxy's (``litellm_settings.callbacks: ["prometheus"]``).
METRIC_PRESETS: dict[str, MetricNames] = {
    "claude_code": MetricNames(
        required=[
            "claude_code_api_requests_total",
            "claude_code_api_latency_seconds",
            "claude_code_active_sessions",
            "claude_code_tokens_used_total",
            "claude_code_cost_usd",
        ],
        requests="claude_code_api_requests_total",
        status_label="status",
        tokens="claude_code_tokens_used_total",
        cost="claude_code_cost_usd",
    ),
    "litellm": MetricNames(
        required=[
            "litellm_proxy_total_requests_metric_total",
            "litellm_proxy_failed_requests_metric_total",
            "litellm_spend_metric_total",
            "litellm_total_tokens_metric_total",
        ],
        requests="litellm_proxy_total_requests_metric_total",
        status_label="status_code",
        tokens="litellm_total_tokens_metric_total",
        cost="litellm_spend_metric_total",
    ),
}


class MetricsProbe(StrictModel):
    """One `/metrics` to check: a target, a preset of metric names, optional overrides.

    ``{target: gateway, preset: litellm}``; ``names`` replaces the preset's fields one by one.
    """

    target: str = "api"
    path: str = "/metrics"
    #: The SLO its results are labelled with (the `slo` label); empty: none.
    slo: str = ""
    preset: Literal["claude_code", "litellm"] = "claude_code"
    required: list[str] | None = None
    requests: str | None = None
    status_label: str | None = None
    tokens: str | None = None
    cost: str | None = None

    @property
    def names(self) -> MetricNames:
        overrides = {
            key: value
            for key in ("required", "requests", "status_label", "tokens", "cost")
            if (value := getattr(self, key)) is not None
        }
        return METRIC_PRESETS[self.preset].model_copy(update=overrides)


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
    #: One `/metrics` (a mapping) or several (a list), each probed on its own.
    metrics: list[MetricsProbe] = Field(default_factory=lambda: [MetricsProbe()])
    resources: ResourcesProbe = ResourcesProbe()
    tls: TlsProbe = TlsProbe()

    @field_validator("metrics", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, dict) else value
