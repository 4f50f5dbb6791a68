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
from slo.metric_names import GEN_AI_BUDGET_REMAINING as BUDGET_REMAINING
from slo.metric_names import GEN_AI_BUDGET_RESET as BUDGET_RESET
from slo.metric_names import GEN_AI_COST as COST
from slo.metric_names import GEN_AI_DEPLOYMENT_HEALTHY as DEPLOYMENT_HEALTHY
from slo.metric_names import GEN_AI_FIRST_TOKEN as FIRST_TOKEN
from slo.metric_names import GEN_AI_MAX_GAP as MAX_GAP
from slo.metric_names import GEN_AI_OPERATION_DURATION as OPERATION_DURATION
from slo.metric_names import GEN_AI_RATELIMIT_REMAINING as RATELIMIT_REMAINING
from slo.metric_names import GEN_AI_TIME_PER_TOKEN as TIME_PER_TOKEN
from slo.metric_names import GEN_AI_TOKENS as TOKENS
from slo.metric_names import GEN_AI_TOKENS_PER_SECOND as TOKENS_PER_SECOND
from slo.metric_names import last_gauge
from slo.report.values import grown_today

__all__ = [
    "BUDGET_REMAINING",
    "BUDGET_RESET",
    "COST",
    "DEPLOYMENT_HEALTHY",
    "FIRST_TOKEN",
    "MAX_GAP",
    "OPERATION_DURATION",
    "RATELIMIT_REMAINING",
    "TIME_PER_TOKEN",
    "TIMINGS",
    "TOKENS",
    "TOKENS_PER_SECOND",
    "last_gauge",
    "spend_warnings",
]

#: Streaming timings, each pushed as a histogram and as a ``gen_ai_last_*`` gauge.
TIMINGS = (FIRST_TOKEN, TIME_PER_TOKEN, MAX_GAP, TOKENS_PER_SECOND, OPERATION_DURATION)


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
