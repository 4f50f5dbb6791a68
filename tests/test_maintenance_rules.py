"""The whole generated rule file, with every target in maintenance and everything failing:
no alert fires but the maintenance notice. The same input without the window fires them all,
so the test cannot pass for want of input.

Judged by `promtool test rules` on the rules `slo rules` writes for the shipped config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from slo import metric_names as m
from slo.config import load_config
from slo.config.objectives import ProbesSLI
from slo.objectives.rules.generate import render, rule_file
from slo.objectives.rules.maintenance import NOTICE
from slo.objectives.rules.promtool import run_tests

ROOT = Path(__file__).resolve().parent.parent
RUNNER = 'job="synthetic-probes",environment="production",instance="runner-1",location="eu-west"'
MINUTES = 60
#: What the input makes fire when no window is open (the SLO burns, the runner is stale, a
#: probe alert, the gateway's deployment and the seed's threshold alert on the API).
FIRING = [
    "ClaudeCodeServiceDown",
    "ErrorBudgetBurn",
    "SyntheticGatewayDeploymentDown",
    "SyntheticProbesStale",
    "UpstreamDown",
]


def inputs(maintenance: float) -> list[dict[str, str]]:
    """A runner of production whose api and gateway fail every run and stopped pushing ten
    minutes ago (its last push said `maintenance`), the API unscrapable."""
    config = load_config(ROOT / "monitoring.yaml", "local", secrets=False)
    series = []
    for slo in config.slos:
        sli = slo.sli
        if isinstance(sli, ProbesSLI):
            labels = f'{RUNNER},target="{sli.target}",slo="{slo.name if sli.narrowed else ""}"'
            series += [
                (f"{m.TARGET_RUNS}{{{labels}}}", "0+1x60"),
                (f"{m.TARGET_FAILED_RUNS}{{{labels}}}", "0+1x60"),
            ]
    for target in ("api", "gateway"):
        series += [
            (f'{m.MAINTENANCE}{{{RUNNER},target="{target}"}}', f"{maintenance:g}x60"),
            (f'{m.MAINTENANCE_END}{{{RUNNER},target="{target}"}}', "1e10x60"),
        ]
    probe = (
        f'{RUNNER},alert="UpstreamDown",kind="availability",probe="probes/test_up.py::test_up",target="api"'
    )
    deployment = f'{RUNNER},target="gateway",model="claude-sonnet-4",deployment="anthropic/claude"'
    series += [
        (f"{m.PROBE_SUCCESS}{{{probe}}}", "0x60"),
        (f"{m.value_metric(m.GEN_AI_DEPLOYMENT_HEALTHY)}{{{deployment}}}", "0x60"),
        ('up{job="claude-code-api",instance="api:8080"}', "0x60"),
        (f"push_time_seconds{{{RUNNER}}}", "0x60"),
    ]
    return [{"series": name, "values": values} for name, values in series]


def scenario(maintenance: float, firing: list[str]) -> dict[str, Any]:
    return {
        "name": f"synthetic_maintenance {maintenance:g}",
        "interval": "1m",
        "input_series": inputs(maintenance),
        "promql_expr_test": [
            {
                "expr": 'group by (alertname) (ALERTS{alertstate="firing"})',
                "eval_time": f"{MINUTES}m",
                "exp_samples": [{"labels": f'{{alertname="{name}"}}', "value": 1} for name in firing],
            }
        ],
    }


@pytest.mark.parametrize(("maintenance", "firing"), [(1, [NOTICE]), (0, FIRING)])
def test_in_a_window_the_rules_raise_only_the_notice(
    maintenance: float, firing: list[str], tmp_path: Path
) -> None:
    config = load_config(ROOT / "monitoring.yaml", "local", secrets=False)
    (tmp_path / "rules.yml").write_text(
        render(rule_file(config.slos, config.budgets, "synthetic-probes")), encoding="utf-8"
    )
    test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [scenario(maintenance, firing)],
    }
    path = tmp_path / "maintenance.test.yml"
    path.write_text(yaml.safe_dump(test, sort_keys=False), encoding="utf-8")
    result = run_tests(path)
    assert result.ok, result.output
