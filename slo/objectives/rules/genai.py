"""Rules for the LLM layer the gateway probes measure: the probes' own spend per day.

Per-model availability and first-token SLOs need no rules of their own: they are ordinary
SLOs (``sli: {kind: probes, target: gateway, model: NAME}``, ``sli: {kind: first_token, ...}``)
and get the SLO rules and burn-rate alerts every SLO gets.
"""

from __future__ import annotations

from typing import Any

from slo.objectives.rules.names import promql_string

__all__ = ["gen_ai_group"]

SPEND_RECORD = "synthetic:gen_ai_probe_cost_usd:increase1d"


def gen_ai_group(probe_job: str, daily_spend_limit: float) -> dict[str, Any]:
    """`synthetic_gen_ai`: what the probes spent over the last day (``x-litellm-response-cost``),
    and a warning over `probes.gateway.daily_spend_limit` (none without a limit)."""
    cost = f"synthetic_gen_ai_probe_cost_usd_total{{job={promql_string(probe_job)}}}"
    rules: list[dict[str, Any]] = [
        {"record": SPEND_RECORD, "expr": f"sum by (environment, target, model) (increase({cost}[1d]))"}
    ]
    if daily_spend_limit > 0:
        limit = f"{daily_spend_limit:g}"
        rules.append(
            {
                "alert": "SyntheticProbeSpendOverDailyLimit",
                "expr": f"sum by (environment) ({SPEND_RECORD}) > {limit}",
                "for": "5m",
                "labels": {"severity": "warning"},
                "annotations": {
                    "summary": "The synthetic probes spend more than budgeted",
                    "description": (
                        'The gateway probes spent ${{ $value | printf "%.4f" }} in the last day in '
                        f"{{{{ $labels.environment }}}}, over probes.gateway.daily_spend_limit ${limit}: "
                        "fewer models, a smaller max_tokens or a longer probe interval."
                    ),
                },
            }
        )
    return {"name": "synthetic_gen_ai", "rules": rules}
