"""The LLM metrics the gateway probes push, named after OpenTelemetry's gen-ai conventions.

Each is a probe value (:mod:`slo.report.values`), pushed as ``synthetic_<name>`` with the
labels ``model`` (the model group asked for) and ``api`` (``chat`` or ``messages``):

==============================================  =========  ===================================
``gen_ai_time_to_first_token_seconds``          histogram  OTel ``gen_ai.server.time_to_first_token``
``gen_ai_time_per_output_token_seconds``        histogram  mean gap between streamed tokens
                                                           (OTel ``gen_ai.server.time_per_output_token``)
``gen_ai_max_time_between_tokens_seconds``      histogram  the worst gap: a stall mid-answer
``gen_ai_output_tokens_per_second``             histogram  decode speed after the first token
``gen_ai_operation_duration_seconds``           histogram  the whole stream
                                                           (OTel ``gen_ai.client.operation.duration``)
``gen_ai_last_*``                               gauge      the last streaming probe's value of each
``gen_ai_tokens``                               counter    usage by ``type`` (input, output)
                                                           (OTel ``gen_ai.client.token.usage``)
``gen_ai_probe_cost_usd``                       counter    each answer's ``x-litellm-response-cost``
``gen_ai_ratelimit_remaining``                  gauge      ``x-ratelimit-remaining-*`` by ``resource``
``gen_ai_budget_remaining_usd``                 gauge      a LiteLLM key's or team's budget left, by
                                                           ``scope`` (key, team) and ``name``
``gen_ai_budget_reset_timestamp_seconds``       gauge      when that budget resets
``gen_ai_deployment_healthy``                   gauge      1/0 per ``deployment`` of a model group,
                                                           as its health probe last found it
==============================================  =========  ===================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from slo.config import Config
from slo.report.values import grown_today

__all__ = [
    "BUDGET_REMAINING",
    "BUDGET_RESET",
    "COST",
    "DEPLOYMENT_HEALTHY",
    "FIRST_TOKEN",
    "OPERATION_DURATION",
    "RATELIMIT_REMAINING",
    "TIMINGS",
    "TOKENS",
    "spend_warnings",
]

FIRST_TOKEN = "gen_ai_time_to_first_token_seconds"
TIME_PER_TOKEN = "gen_ai_time_per_output_token_seconds"
MAX_GAP = "gen_ai_max_time_between_tokens_seconds"
TOKENS_PER_SECOND = "gen_ai_output_tokens_per_second"
OPERATION_DURATION = "gen_ai_operation_duration_seconds"
#: Streaming timings, each pushed as a histogram and as a ``gen_ai_last_*`` gauge.
TIMINGS = (FIRST_TOKEN, TIME_PER_TOKEN, MAX_GAP, TOKENS_PER_SECOND, OPERATION_DURATION)
TOKENS = "gen_ai_tokens"
COST = "gen_ai_probe_cost_usd"
RATELIMIT_REMAINING = "gen_ai_ratelimit_remaining"
BUDGET_REMAINING = "gen_ai_budget_remaining_usd"
BUDGET_RESET = "gen_ai_budget_reset_timestamp_seconds"
DEPLOYMENT_HEALTHY = "gen_ai_deployment_healthy"


def last_gauge(name: str) -> str:
    return name.replace("gen_ai_", "gen_ai_last_", 1)


def spend_warnings(config: Config, section: Mapping[str, Any], now: float) -> list[str]:
    """One line when the probes' spend this UTC day is over `probes.gateway.daily_spend_limit`."""
    limit = config.probes.gateway.daily_spend_limit
    spent = grown_today(section, COST, now)
    if not limit or spent <= limit:
        return []
    return [
        f"probe spend today is ${spent:.4f} (x-litellm-response-cost), over "
        f"probes.gateway.daily_spend_limit ${limit:.4f}: the probes cost more than budgeted"
    ]
