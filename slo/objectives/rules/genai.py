"""Rules for the LLM layer the gateway probes measure: the probes' own spend per day, and a
deployment of a model group down while the group still serves.

Per-model availability and first-token SLOs need no rules of their own: they are ordinary
SLOs (``sli: {kind: probes, target: gateway, model: NAME}``, ``sli: {kind: first_token, ...}``)
and get the SLO rules and burn-rate alerts every SLO gets.
"""

from __future__ import annotations

from typing import Any

from slo.metric_names import GEN_AI_COST, GEN_AI_DEPLOYMENT_HEALTHY, value_metric
from slo.objectives.rules.maintenance import unless_in_maintenance
from slo.objectives.rules.names import promql_string

__all__ = ["gen_ai_group"]

SPEND_RECORD = "synthetic:gen_ai_probe_cost_usd:increase1d"


def gen_ai_group(probe_job: str, daily_spend_limit: float) -> dict[str, Any]:
    """`synthetic_gen_ai`: what the probes spent over the last day (``x-litellm-response-cost``),
    a warning over `probes.gateway.daily_spend_limit` (none without a limit), and a warning
    for a deployment its model group's health probe found down."""
    job = promql_string(probe_job)
    cost = f"{value_metric(GEN_AI_COST)}_total{{job={job}}}"
    rules: list[dict[str, Any]] = [
        {"record": SPEND_RECORD, "expr": f"sum by (environment, target, model) (increase({cost}[1d]))"},
        _deployment_down(job),
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


def _deployment_down(job: str) -> dict[str, Any]:
    """A deployment down while its group may still serve: the group's probes pass, so no SLO
    burns; this warning is what says one of its deployments is gone."""
    return {
        "alert": "SyntheticGatewayDeploymentDown",
        "expr": (
            "min by (environment, target, model, deployment) "
            f"({value_metric(GEN_AI_DEPLOYMENT_HEALTHY)}{{job={job}}}) == 0\n"
            f"{unless_in_maintenance(['environment', 'target'])}\n"
        ),
        "for": "5m",
        "labels": {"severity": "warning"},
        "annotations": {
            "summary": "A deployment of an LLM model group is down",
            "description": (
                "Deployment {{ $labels.deployment }} of model group {{ $labels.model }} in "
                "{{ $labels.environment }} failed its health check for 5 minutes; the group may "
                "still serve from its other deployments. The probe's warning has its first error line."
            ),
        },
    }
