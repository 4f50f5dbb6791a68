"""The seed chapter's threshold alerts (names kept), from `budgets:`, and probe staleness.

The seed's expressions are kept in spirit but corrected where they could never fire or
fired on the wrong unit:

- rates are per second, so "100,000 tokens per hour" is ``increase(...[1h])`` and "10
  sandbox violations per minute" is ``rate(...[5m]) * 60``, not a per-second rate compared
  with a per-hour or per-minute limit;
- ratios and quantiles aggregate first (``sum``, ``sum by (le)``), because dividing series
  whose `status` labels differ matches nothing;
- memory divides the process's RSS by its own host's memory (matched on the host part of
  `instance`), because the process and node_exporter have different `job` and port.

Severity `page` is the seed's ``critical``, `ticket` its ``warning``; Alertmanager routes both
vocabularies (deploy/alertmanager.yml).
"""

from __future__ import annotations

from typing import Any

from slo.config.objectives import Budgets
from slo.metric_names import ALERT_LABEL, PROBE_SUCCESS
from slo.objectives.rules import features
from slo.objectives.rules.maintenance import in_maintenance, unless_in_maintenance
from slo.objectives.rules.names import promql_string
from slo.units import format_duration

__all__ = [
    "API_JOB",
    "API_TARGET",
    "IN_LOCATION",
    "RUNBOOKS",
    "deployment_group",
    "staleness_group",
    "threshold_group",
]

#: The seed's scrape job for the API service (its prometheus.yml and alert rules use it).
API_JOB = "claude-code-api"
#: The config's target that is that service: while a maintenance window covers it, none of the
#: seed's threshold alerts fires (their series carry no target or environment to match on).
API_TARGET = "api"


def _number(value: float) -> str:
    return format(value, ".12g")


#: What the person on call does first, per alert (the `runbook` annotation).
RUNBOOKS = {
    "ClaudeCodeServiceDown": (
        "Check the API process and its host (systemctl status, kubectl get pods); if it runs, "
        "check that Prometheus can reach its /metrics (the target's lastError on /targets)."
    ),
    "HighAPIErrorRate": (
        "Find the failing routes: sum by (path, status) (rate(claude_code_api_requests_total"
        '{status=~"5.."}[5m])); check the LLM gateway and recent deploys; roll back if it began with one.'
    ),
    "HighAPILatency": (
        "Compare the slow routes' latency with the gateway's; check CPU, memory and upstream "
        "model latency; shed load or scale out."
    ),
    "HighTokenUsage": (
        "Find the sessions or users behind the tokens (claude_code_tokens_used_total by model); "
        "check for a runaway agent loop; apply rate limits."
    ),
    "HighCostIncurred": (
        "Check claude_code_cost_usd by model and the gateway's spend logs; lower budgets or "
        "switch expensive models; tell the budget owner."
    ),
    "SandboxViolations": (
        "Look at the sandbox audit log for the violating sessions; suspend them; check for a "
        "compromised workspace or a policy change."
    ),
    "HighCPUUsage": "Check for a hot loop or load spike (the load gate's scenarios); scale out or profile.",
    "HighMemoryUsage": "Check for a leak (RSS growing without load); restart the process, then profile.",
    "SyntheticProbesStale": (
        "On the runner: systemctl status slo-probes.timer and journalctl -u slo-probes "
        "(or the CronJob's last Job); a push failure shows as a WARNING line in the run's output."
    ),
    "SyntheticProbesAbsent": (
        "Check that Prometheus scrapes the Pushgateway (honor_labels: true) and that the runner "
        "was ever started with --pushgateway or PUSHGATEWAY_URL."
    ),
}


def _alert(
    name: str, expr: str, wait: str, severity: str, summary: str, description: str, runbook: str = ""
) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": wait,
        "labels": {"severity": severity},
        "annotations": {
            "summary": summary,
            "description": description,
            "runbook": runbook or RUNBOOKS[name],
        },
    }


def threshold_group(budgets: Budgets) -> dict[str, Any]:
    """The seed's `claude_code_alerts` group, thresholds taken from `budgets`."""
    job = f"job={promql_string(API_JOB)}"
    percent = _number(budgets.api_error_rate * 100)
    host = '"host", "$1", "instance", "(.*):[0-9]+"'
    rules = [
        _alert(
            "ClaudeCodeServiceDown",
            f"up{{{job}}} == 0",
            "1m",
            "page",
            "Claude Code API is down",
            "Prometheus cannot scrape the Claude Code API ({{ $labels.instance }}) for over a minute.",
        ),
        _alert(
            "HighAPIErrorRate",
            'sum(rate(claude_code_api_requests_total{status=~"5.."}[5m]))\n'
            "  / (sum(rate(claude_code_api_requests_total[5m])) > 0)\n"
            f"  > {_number(budgets.api_error_rate)}\n",
            "5m",
            "ticket",
            "API error rate is high",
            f"More than {percent} % of API requests fail with a 5xx "
            "(now {{ $value | humanizePercentage }}).",
        ),
        _alert(
            "HighAPILatency",
            "histogram_quantile(0.95, sum by (le) (rate(claude_code_api_latency_seconds_bucket[5m])))\n"
            f"  > {_number(budgets.api_p95_latency)}\n",
            "5m",
            "ticket",
            "API latency is high",
            f"API P95 latency is over {format_duration(budgets.api_p95_latency)} "
            "(now {{ $value | humanizeDuration }}).",
        ),
        _alert(
            "HighTokenUsage",
            f"sum(increase(claude_code_tokens_used_total[1h]))\n  > {_number(budgets.tokens_per_hour)}\n",
            "10m",
            "ticket",
            "Token usage is high",
            f"More than {_number(budgets.tokens_per_hour)} tokens in the last hour "
            "(now {{ $value | humanize }}).",
        ),
        _alert(
            "HighCostIncurred",
            f"sum(claude_code_cost_usd) > {_number(budgets.cost_usd)}",
            "1h",
            "ticket",
            "Cost is over budget",
            f'Cumulative cost is over ${_number(budgets.cost_usd)} (now ${{{{ $value | printf "%.2f" }}}}).',
        ),
        _alert(
            "SandboxViolations",
            "sum(rate(claude_sandbox_violations_total[5m])) * 60\n"
            f"  > {_number(budgets.sandbox_violations_per_minute)}\n",
            "5m",
            "page",
            "Sandbox violations are frequent",
            f"More than {_number(budgets.sandbox_violations_per_minute)} sandbox violations "
            'per minute (now {{ $value | printf "%.1f" }}).',
        ),
        _alert(
            "HighCPUUsage",
            f"rate(process_cpu_seconds_total{{{job}}}[5m]) > {_number(budgets.cpu)}",
            "10m",
            "ticket",
            "CPU usage is high",
            f"The API process uses over {_number(budgets.cpu * 100)} % of a CPU "
            "(now {{ $value | humanizePercentage }}).",
        ),
        _alert(
            "HighMemoryUsage",
            f"label_replace(process_resident_memory_bytes{{{job}}}, {host})\n"
            f"  / on (host) group_left ()\n"
            f"  max by (host) (label_replace(node_memory_MemTotal_bytes, {host}))\n"
            f"  > {_number(budgets.memory)}\n",
            "10m",
            "ticket",
            "Memory usage is high",
            f"The API process uses over {_number(budgets.memory * 100)} % of its host's memory "
            "(now {{ $value | humanizePercentage }}).",
        ),
    ]
    for rule in rules:
        rule["expr"] = f"{rule['expr'].rstrip()}\n{unless_in_maintenance([], API_TARGET)}\n"
    return {"name": "claude_code_alerts", "rules": rules}


#: Names the stopped runner's location, when its pushes carry one other than the instance (the
#: default). Its other runners' (and locations') series go on feeding the SLIs: a location
#: without runs does not count.
IN_LOCATION = (
    "{{ if and $labels.location (ne $labels.location $labels.instance) }} in {{ $labels.location }}{{ end }}"
)


def staleness_group(budgets: Budgets, probe_job: str) -> dict[str, Any]:
    """`SyntheticProbesStale`: a runner stopped pushing; `SyntheticProbesAbsent`: no results.

    The Pushgateway keeps a stopped runner's last push forever, so its series never go
    stale by themselves: the age of ``push_time_seconds`` is what shows it.
    """
    stale_after = budgets.probes_stale_after
    selector = f"push_time_seconds{{job={promql_string(probe_job)}}}"
    description = (
        "No probe results pushed by {{ $labels.instance }}"
        f"{IN_LOCATION} ({{{{ $labels.environment }}}}) for "
        "{{ $value | humanizeDuration }}: the probe timer or runner stopped, so the SLOs "
        "fed by it are blind."
    )
    return {
        "name": "synthetic-probes",
        "rules": [
            {
                "alert": "SyntheticProbesStale",
                "expr": (
                    f"time() - max by (job, environment, instance, location) ({selector})\n"
                    f"  > {_number(stale_after)}\n"
                    # A runner whose targets are in a window may be down with them.
                    f"{unless_in_maintenance(['job', 'environment', 'instance', 'location'])}\n"
                ),
                "labels": {"severity": "ticket"},
                "annotations": {
                    "summary": "Synthetic probes stopped reporting",
                    "description": description,
                    "runbook": RUNBOOKS["SyntheticProbesStale"],
                },
            },
            {
                # A separate name: one alert name with two rules and equal labels is ambiguous.
                "alert": "SyntheticProbesAbsent",
                "expr": f"absent({selector})",
                "for": format_duration(stale_after),
                "labels": {"severity": "ticket"},
                "annotations": {
                    "summary": "No synthetic probe results at all",
                    "description": (
                        f"Prometheus has no {selector}: the probes never pushed, or it does "
                        "not scrape the Pushgateway (honor_labels: true)."
                    ),
                    "runbook": RUNBOOKS["SyntheticProbesAbsent"],
                },
            },
        ],
    }


def deployment_group(probe_job: str) -> dict[str, Any]:
    """`claude_code_deployment_alerts`: every feature's probe alerts (backups, cache, load
    balancer, certificates, logs), each selecting the probes marked with its name."""
    rules = []
    for alert in (alert for feature in features.FEATURES for alert in feature.alerts):
        labels = f"job={promql_string(probe_job)}, {ALERT_LABEL}={promql_string(alert.name)}"
        rule = _alert(
            alert.name,
            f"min by (environment, instance, probe) (\n  {PROBE_SUCCESS}{{{labels}}}\n"
            f"  unless on (job, environment, instance, location, target) {in_maintenance()}\n) == 0\n",
            alert.wait,
            alert.severity,
            alert.summary,
            f"{alert.failed}: {{{{ $labels.probe }}}} fails on {{{{ $labels.instance }}}} "
            "({{ $labels.environment }}).",
            alert.runbook,
        )
        rules.append(rule)
    return {"name": "claude_code_deployment_alerts", "rules": rules}
