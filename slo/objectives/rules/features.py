"""The features of the deployment, each registered once: its config section, its alerts, its
dashboard panels and any rules of its own.

A feature (backups, cache, load balancer, TLS, logs, the LLM layer) is one :class:`Feature` in
:data:`FEATURES`; `slo rules`, `slo dashboard` and the probe marker check read this list, so a
new feature is one entry here, not an edit in every layer (pytest-xdist's ``newhooks.py`` and
sloth's shared conventions are the models).

An alert of a feature selects its probes by the ``alert`` label their marker gives them
(``@pytest.mark.probe(alert="BackupTooOld")``), never by a file or test name: a probe in any
file of any project, marked so, feeds the alert exactly as the shipped probe does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slo import metric_names as m
from slo.objectives.rules.genai import gen_ai_group
from slo.objectives.rules.names import promql_string

__all__ = [
    "DASHBOARD_ENV",
    "FEATURES",
    "Feature",
    "Panel",
    "ProbeAlert",
    "RuleInputs",
    "alert_names",
    "probe_status_panel",
]

#: The dashboard's environment variable as a matcher (every feature panel filters by it).
DASHBOARD_ENV = 'environment=~"$environment"'


@dataclass(frozen=True)
class ProbeAlert:
    """An alert that fires while a probe marked ``alert=<name>`` fails for `wait`."""

    name: str
    wait: str
    severity: str
    summary: str
    #: What failed, the description's first words (the probe and instance follow).
    failed: str
    #: What the person on call does first.
    runbook: str


@dataclass(frozen=True)
class Panel:
    """A Grafana time series panel: `queries` are (PromQL, legend) pairs."""

    title: str
    unit: str
    queries: tuple[tuple[str, str], ...]
    width: int = 8


@dataclass(frozen=True)
class RuleInputs:
    """What a feature's own rules may depend on."""

    probe_job: str
    daily_spend_limit: float = 0.0


@dataclass(frozen=True)
class Feature:
    """One feature of the deployment and everything it contributes."""

    name: str
    #: Where its settings live in monitoring.yaml (a top-level key or ``probes.<name>``).
    section: str
    alerts: tuple[ProbeAlert, ...] = ()
    #: The dashboard row its panels join (rows appear in the order features first name them).
    row: str = ""
    panels: tuple[Panel, ...] = ()
    #: A rule group of its own beyond its probe alerts.
    rules: Callable[[RuleInputs], dict[str, Any]] | None = None


def probe_status_panel(title: str, alerts: tuple[ProbeAlert, ...]) -> Panel:
    """The last result (1 passing) of every probe that feeds one of `alerts`."""
    names = "|".join(alert.name for alert in alerts)
    selector = f"{m.PROBE_SUCCESS}{{{DASHBOARD_ENV},{m.ALERT_LABEL}=~{promql_string(names)}}}"
    return Panel(title, "short", ((f"min by (probe) ({selector})", "{{probe}}"),), width=6)


_DEPLOYMENT_ROW = "Backups, cache, load balancer, logs"
_LLM_ROW = "LLM gateway: models, first token, spend, headroom"

_BACKUP_ALERTS = (
    ProbeAlert(
        "BackupTooOld",
        "15m",
        "ticket",
        "The newest backup is too old",
        "No backup younger than backups.max_age",
        "Check the backup job's timer and its last log (backup.sh); run it by hand and watch it finish.",
    ),
    ProbeAlert(
        "BackupUnusable",
        "15m",
        "page",
        "The newest backup cannot be restored",
        "The newest backup misses a file, holds an unreadable archive or does not restore",
        "Read the probe's failure line; take a fresh backup now and keep the broken one for analysis.",
    ),
)
_CACHE_ALERTS = (
    ProbeAlert(
        "CacheHitRatioLow",
        "30m",
        "ticket",
        "The Redis cache evicts keys or misses too often",
        "Evictions over cache.max_evictions or a hit ratio under cache.min_hit_ratio since the previous run",
        "Compare used_memory with maxmemory (INFO memory); raise maxmemory or shorten TTLs.",
    ),
)
_BALANCER_ALERTS = (
    ProbeAlert(
        "UpstreamDown",
        "5m",
        "ticket",
        "An API server behind the load balancer is down",
        "An upstream does not answer its health path directly",
        "Restart the failing API server or take it out of the nginx upstream; check the others' load.",
    ),
)
_TLS_ALERTS = (
    ProbeAlert(
        "CertificateExpiringSoon",
        "30m",
        "ticket",
        "A TLS certificate is due for renewal",
        "A certificate has fewer days left than probes.tls.min_days_left",
        "Renew it (certbot renew, or your CA) and reload the server; find out why automatic renewal did not.",
    ),
)
_LOG_ALERTS = (
    ProbeAlert(
        "ErrorLogRateHigh",
        "15m",
        "ticket",
        "Too many errors in the logs",
        "More ERROR entries over logs.window than logs.max_errors",
        "Search the logs for level ERROR in the window; the newest release is the first suspect.",
    ),
)

_PROBES = f'{DASHBOARD_ENV},target!=""'


def _value(name: str, suffix: str = "") -> str:
    """A probe value's series (a histogram's `_bucket`, a counter's `_total`) in the environment."""
    return f"{m.value_metric(name)}{suffix}{{{DASHBOARD_ENV}}}"


# The gateway's per-model probes are parametrised by model: the parameter id names it.
_PER_MODEL = (
    f'label_replace({m.PROBE_SUCCESS}{{{DASHBOARD_ENV},kind="availability",target="gateway",'
    'probe=~".+\\\\[.+\\\\]"}, "model", "$1", "probe", ".*\\\\[(.*)\\\\]")'
)
_LLM_PANELS = (
    Panel(
        "Gateway probe success per model", "percentunit", ((f"avg by (model) ({_PER_MODEL})", "{{model}}"),)
    ),
    Panel(
        "Time to first token (P95 over 1h)",
        "s",
        (
            (
                "histogram_quantile(0.95, sum by (le, model, api) "
                f"(rate({_value(m.GEN_AI_FIRST_TOKEN, '_bucket')}[1h])))",
                "{{model}} {{api}}",
            ),
        ),
    ),
    Panel(
        "Output tokens per second (last stream)",
        "short",
        (
            (
                f"max by (model, api) ({_value(m.last_gauge(m.GEN_AI_TOKENS_PER_SECOND))})",
                "{{model}} {{api}}",
            ),
        ),
    ),
    Panel(
        "Probe spend over the last day",
        "currencyUSD",
        (
            (
                f"sum by (model) (increase({_value(m.GEN_AI_COST, '_total')}[1d]))",
                "{{model}}",
            ),
        ),
    ),
    Panel(
        "Rate-limit headroom (probes)",
        "short",
        (
            (
                f"min by (model, resource) ({_value(m.GEN_AI_RATELIMIT_REMAINING)})",
                "{{model}} {{resource}}",
            ),
        ),
    ),
    Panel(
        "Key and team budget left (LiteLLM /key/info, /team/info)",
        "currencyUSD",
        (
            (
                f"min by (scope, name) ({_value(m.GEN_AI_BUDGET_REMAINING)})",
                "{{scope}} {{name}}",
            ),
        ),
    ),
    Panel(
        "LiteLLM: deployment state (0 healthy, 1 partial, 2 outage) and remaining requests",
        "short",
        (
            ("max by (litellm_model_name) (litellm_deployment_state)", "state {{litellm_model_name}}"),
            (
                "min by (model_group) (litellm_remaining_requests_metric)",
                "remaining requests {{model_group}}",
            ),
        ),
    ),
)


def _gen_ai_rules(inputs: RuleInputs) -> dict[str, Any]:
    return gen_ai_group(inputs.probe_job, inputs.daily_spend_limit)


#: Every feature, in the order its rules and panels appear.
FEATURES: tuple[Feature, ...] = (
    Feature(
        "backups",
        "backups",
        _BACKUP_ALERTS,
        _DEPLOYMENT_ROW,
        (probe_status_panel("Backups", _BACKUP_ALERTS),),
    ),
    Feature(
        "cache", "cache", _CACHE_ALERTS, _DEPLOYMENT_ROW, (probe_status_panel("Redis cache", _CACHE_ALERTS),)
    ),
    Feature(
        "balancer",
        "balancer",
        _BALANCER_ALERTS,
        _DEPLOYMENT_ROW,
        (probe_status_panel("Load balancer", _BALANCER_ALERTS),),
    ),
    Feature(
        "tls",
        "probes.tls",
        _TLS_ALERTS,
        row="Synthetic probes",
        panels=(
            Panel(
                "TLS certificate days left",
                "d",
                ((f"min by (target) ({m.value_metric(m.TLS_DAYS_LEFT)}{{{_PROBES}}})", "{{target}}"),),
            ),
        ),
    ),
    Feature("logs", "logs", _LOG_ALERTS, _DEPLOYMENT_ROW, (probe_status_panel("Logs", _LOG_ALERTS),)),
    Feature("llm", "probes.gateway", row=_LLM_ROW, panels=_LLM_PANELS, rules=_gen_ai_rules),
)


def alert_names() -> list[str]:
    """Every alert a probe marker may name (``@pytest.mark.probe(alert=...)``)."""
    return [alert.name for feature in FEATURES for alert in feature.alerts]
