"""`slo dashboard`: the Grafana dashboard, built with Grafana's own typed SDK.

    slo dashboard -o deploy/grafana/slo-dashboard.json

Rows: the seed chapter's service panels (request rate, P95 latency, sessions, tokens,
cost, error rate, sandbox violations, CPU and memory), the synthetic probes (success per
target, latency, HTTP phases, age of the last run), the locations (good runs per location, a
probe x location matrix of last results) and the SLOs (budget remaining and burn
rate per SLO, read from the recorded series of `slo rules`). A ``datasource`` variable picks
the Prometheus, an ``environment`` variable the probe environment.

grafana-foundation-sdk is Grafana Labs' generated, typed builder library (grafanalib is
unmaintained): panels are checked by mypy instead of being hand-written dictionaries.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, DataTransformerConfig
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from slo import metric_names as m
from slo.cliargs import ArgumentParser, fail
from slo.config import ConfigError
from slo.config.objectives import SLO, Budgets
from slo.objectives.inputs import add_config_options, load_inputs
from slo.objectives.rules import features, names
from slo.options import parse_cli

__all__ = ["build_dashboard", "main"]

UID = "slo-probes"
_DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
_ENV = features.DASHBOARD_ENV
_PROBES_ROW = "Synthetic probes"


def _query(expr: str, legend: str = "") -> prometheus.Dataquery:
    query = prometheus.Dataquery().expr(expr).datasource(_DATASOURCE)
    return query.legend_format(legend) if legend else query


def _series(title: str, unit: str, *queries: prometheus.Dataquery, width: int = 8) -> timeseries.Panel:
    panel = timeseries.Panel().title(title).unit(unit).datasource(_DATASOURCE).span(width).height(8)
    for query in queries:
        panel = panel.with_target(query)
    return panel


def _stat(title: str, unit: str, query: prometheus.Dataquery, width: int = 4) -> stat.Panel:
    return (
        stat.Panel().title(title).unit(unit).datasource(_DATASOURCE).with_target(query).span(width).height(8)
    )


def _service_row(builder: dashboard.Dashboard) -> dashboard.Dashboard:
    builder = builder.with_row(dashboard.Row("Service"))
    requests = "claude_code_api_requests_total"
    latency = "claude_code_api_latency_seconds_bucket"
    return (
        builder.with_panel(
            _series(
                "API request rate",
                "reqps",
                _query(f"sum by (endpoint) (rate({requests}[5m]))", "{{endpoint}}"),
            )
        )
        .with_panel(
            _series(
                "API latency (P95)",
                "s",
                _query(f"histogram_quantile(0.95, sum by (le) (rate({latency}[5m])))", "P95"),
            )
        )
        .with_panel(_stat("Active sessions", "short", _query("sum(claude_code_active_sessions)", "Sessions")))
        .with_panel(
            _stat("Cumulative cost", "currencyUSD", _query("sum(claude_code_cost_usd)", "Cost (USD)"))
        )
        .with_panel(
            _series(
                "Tokens per hour",
                "short",
                _query(
                    "sum by (model, type) (increase(claude_code_tokens_used_total[1h]))",
                    "{{model}} - {{type}}",
                ),
            )
        )
        .with_panel(
            _series(
                "API error rate",
                "percentunit",
                _query(
                    f'sum(rate({requests}{{status=~"5.."}}[5m])) / (sum(rate({requests}[5m])) > 0)',
                    "Error rate",
                ),
            )
        )
        .with_panel(
            _series(
                "Sandbox violations per minute",
                "short",
                _query("sum(rate(claude_sandbox_violations_total[5m])) * 60", "Violations/min"),
            )
        )
        # One unit per axis: CPU as a share of one core (what HighCPUUsage compares), memory in bytes.
        .with_panel(
            _series(
                "API process CPU",
                "percentunit",
                _query('rate(process_cpu_seconds_total{job="claude-code-api"}[5m])', "{{instance}}"),
            )
        )
        .with_panel(
            _series(
                "API process memory",
                "bytes",
                _query('process_resident_memory_bytes{job="claude-code-api"}', "{{instance}}"),
            )
        )
    )


def _probes_row(builder: dashboard.Dashboard) -> dashboard.Dashboard:
    builder = builder.with_row(dashboard.Row(_PROBES_ROW))
    latency = f"{m.PROBE_LATENCY}_bucket"
    # Series of probes without a target (none declared) would plot as an unnamed line.
    probes = f'{_ENV},target!=""'
    runs = f'{probes},slo=""'
    by_target = "sum by (environment, target) "
    return (
        builder.with_panel(
            _series(
                "Good runs per target (15m)",
                "percentunit",
                _query(
                    f"1 - {by_target}(increase({m.TARGET_FAILED_RUNS}{{{runs}}}[15m]))"
                    f"\n  / ({by_target}(increase({m.TARGET_RUNS}{{{runs}}}[15m])) > 0)",
                    "{{environment}} {{target}}",
                ),
            )
        )
        .with_panel(
            _series(
                "Probe latency (P95)",
                "s",
                _query(
                    f"histogram_quantile(0.95, sum by (le, target) (rate({latency}{{{probes}}}[15m])))",
                    "{{target}}",
                ),
            )
        )
        .with_panel(
            _series(
                "HTTP phases of the last request",
                "s",
                _query(
                    f"max by (target, phase) ({m.PROBE_HTTP_PHASE}{{{probes}}})",
                    "{{target}} {{phase}}",
                ),
            )
        )
        .with_panel(
            _series(
                "Failing probes by kind",
                "short",
                _query(
                    f"count by (kind) ({m.PROBE_SUCCESS}{{{probes}}} == 0)",
                    "{{kind}}",
                ),
            )
        )
        .with_panel(
            _series(
                # Of the runs that worked (the `degraded` SLI's events): slow is not down.
                "Degraded runs per target (15m)",
                "percentunit",
                _query(
                    f"{by_target}(increase({m.TARGET_DEGRADED_RUNS}{{{runs}}}[15m]))"
                    f"\n  / ({by_target}(increase({m.TARGET_RUNS}{{{runs}}}[15m]))"
                    f"\n  - {by_target}(increase({m.TARGET_FAILED_RUNS}{{{runs}}}[15m])) > 0)",
                    "{{environment}} {{target}}",
                ),
            )
        )
        .with_panel(
            _series(
                "Age of the last probe run",
                "s",
                _query(
                    f"time() - max by (environment, instance) ({m.SUITE_LAST_RUN}{{{_ENV}}})",
                    "{{environment}} {{instance}}",
                ),
            )
        )
    )


def _locations_row(builder: dashboard.Dashboard, stale_after: float) -> dashboard.Dashboard:
    """Where the probes run: each location's availability, and which probe fails where (from
    runners that pushed within `stale_after`: a stopped runner's last results are not news)."""
    builder = builder.with_row(dashboard.Row("Locations"))
    runs = f'{_ENV},target!="",slo=""'
    by_location = "sum by (environment, location, target) "
    availability = _query(
        f"1 - {by_location}(increase({m.TARGET_FAILED_RUNS}{{{runs}}}[15m]))"
        f"\n  / ({by_location}(increase({m.TARGET_RUNS}{{{runs}}}[15m])) > 0)",
        "{{location}} {{target}}",
    )
    # One row per probe, one column per location: the worst last result of its runners there.
    last = (
        _query(
            f'min by (location, probe) ({m.PROBE_SUCCESS}{{{_ENV},target!=""}}'
            f"\n  and on (job, environment, instance) (time() - push_time_seconds < {stale_after:g}))"
        )
        .instant()
        .format(PromQueryFormat.TABLE)
    )
    matrix = DataTransformerConfig(
        id_val="groupingToMatrix",
        options={"columnField": "location", "rowField": "probe", "valueField": "Value"},
    )
    return builder.with_panel(
        _series("Good runs per location (15m)", "percentunit", availability, width=12)
    ).with_panel(
        table.Panel()
        .title("Last result: probe x location (1 passed, 0 failed)")
        .datasource(_DATASOURCE)
        .with_target(last)
        .with_transformation(matrix)
        .unit("short")
        .span(12)
        .height(8)
    )


def _feature_panels(builder: dashboard.Dashboard, row: str) -> dashboard.Dashboard:
    """The panels the registered features (`slo.objectives.rules.features`) put in `row`."""
    for feature in features.FEATURES:
        if feature.row != row:
            continue
        for panel in feature.panels:
            queries = (_query(expr, legend) for expr, legend in panel.queries)
            builder = builder.with_panel(_series(panel.title, panel.unit, *queries, width=panel.width))
    return builder


def _feature_rows(builder: dashboard.Dashboard) -> dashboard.Dashboard:
    """A row per feature row name (backups, cache, balancer and logs share one; the LLM layer
    has its own), in the order the features are registered."""
    rows = dict.fromkeys(
        feature.row for feature in features.FEATURES if feature.row and feature.row != _PROBES_ROW
    )
    for row in rows:
        builder = _feature_panels(builder.with_row(dashboard.Row(row)), row)
    return builder


def _slo_row(builder: dashboard.Dashboard, slos: Sequence[SLO]) -> dashboard.Dashboard:
    builder = builder.with_row(dashboard.Row("SLOs and error budgets"))
    slo_names = "|".join(slo.name for slo in slos)
    # Service SLIs have no environment label: `|` keeps them whatever environment is picked.
    matchers = f'slo=~"{slo_names}",environment=~"$environment|"'
    long = "1h"
    return builder.with_panel(
        _series(
            "Error budget remaining",
            "percentunit",
            _query(f"{names.BUDGET_REMAINING}{{{matchers}}}", "{{slo}} {{environment}}"),
            width=12,
        )
    ).with_panel(
        _series(
            f"Burn rate over {long} (1 = budget spent exactly over the window)",
            "short",
            _query(f'{names.BURN_RATE}{{{matchers},window="{long}"}}', "{{slo}} {{environment}}"),
            width=12,
        )
    )


def build_dashboard(slos: Sequence[SLO], budgets: Budgets | None = None) -> dict[str, Any]:
    """The dashboard as Grafana's JSON model (a dict); `budgets` (the defaults when None) says
    when a runner counts as stopped."""
    builder = (
        dashboard.Dashboard("Claude Code SLOs and synthetic probes")
        .uid(UID)
        .tags(["slo", "synthetic-probes", "claude-code"])
        .refresh("1m")
        .time("now-6h", "now")
        .timezone("browser")
        .with_variable(dashboard.DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
        .with_variable(
            dashboard.QueryVariable("environment")
            .label("Environment")
            .datasource(_DATASOURCE)
            .query(f"label_values({m.SUITE_LAST_RUN}, environment)")
            .include_all(True)
            .multi(True)
        )
    )
    builder = _service_row(builder)
    builder = _feature_panels(_probes_row(builder), _PROBES_ROW)
    builder = _locations_row(builder, (budgets or Budgets()).probes_stale_after)
    builder = _feature_rows(builder)
    builder = _slo_row(builder, slos)
    builder = builder.annotation(
        dashboard.AnnotationQuery()
        .name("Maintenance windows")
        .datasource(_DATASOURCE)
        .enable(True)
        .icon_color("rgba(138, 184, 255, 0.4)")
        .expr(_MAINTENANCE)
    )
    model: dict[str, Any] = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    _number_panels(model)
    _shade_windows(model)
    return model


#: Each target's maintenance windows: Grafana shades the stretches where the query has a value.
_MAINTENANCE = f"max by (environment, target) ({m.MAINTENANCE}{{{_ENV}}}) == 1"


def _shade_windows(model: dict[str, Any]) -> None:
    # The SDK's AnnotationQuery has no fields for the Prometheus annotation's step and texts.
    for annotation in model["annotations"]["list"]:
        if annotation.get("expr") == _MAINTENANCE:
            annotation.update(
                step="60s",
                titleFormat="Maintenance: {{target}}",
                textFormat="{{target}} ({{environment}}) in a maintenance window: runs not counted",
                tagKeys="target,environment",
            )


def _number_panels(model: dict[str, Any]) -> None:
    # Grafana wants unique panel ids (links and alerts point at them) and a refId per query;
    # the SDK leaves both to the caller. Stable numbering keeps regenerated files diffable.
    for panel_id, panel in enumerate(model["panels"], start=1):
        panel["id"] = panel_id
        for index, target in enumerate(panel.get("targets", [])):
            target["refId"] = chr(ord("A") + index)


def _parser() -> ArgumentParser:
    parser = ArgumentParser(prog="slo dashboard", description=__doc__.split("\n\n")[0])
    add_config_options(parser)
    parser.add_argument("-o", "--output", metavar="FILE", help="file to write (default: stdout)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_cli(_parser(), argv)
    try:
        inputs = load_inputs(args, secrets=False)
    except ConfigError as exc:
        return fail(str(exc))
    text = json.dumps(build_dashboard(inputs.slos, inputs.config.budgets), indent=2) + "\n"
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        path = Path(args.output)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        return fail(f"slo dashboard: cannot write {args.output}: {exc.strerror}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
