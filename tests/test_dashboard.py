"""The Grafana dashboard's structure, and that every query is valid PromQL (promtool)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from slo.config import load_config
from slo.objectives.dashboard import build_dashboard, main
from slo.objectives.rules.promtool import check_rules

ROOT = Path(__file__).resolve().parent.parent
CONFIG = load_config(ROOT / "monitoring.yaml", "local")


@pytest.fixture(scope="module")
def model() -> dict[str, Any]:
    return build_dashboard(CONFIG.slos)


def panels(model: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in model["panels"] if p["type"] != "row"]


def test_seed_and_suite_panels_are_present(model: dict[str, Any]) -> None:
    titles = {p["title"] for p in panels(model)}
    assert {
        "API request rate",
        "API latency (P95)",
        "Active sessions",
        "Tokens per hour",
        "Cumulative cost",
        "API error rate",
        "Sandbox violations per minute",
        "API process CPU",
        "API process memory",
        "Good runs per target (15m)",
        "Degraded runs per target (15m)",
        "Failing probes by kind",
        "Probe latency (P95)",
        "HTTP phases of the last request",
        "Age of the last probe run",
        "Error budget remaining",
    } <= titles
    assert any(title.startswith("Burn rate") for title in titles)
    assert [p["title"] for p in model["panels"] if p["type"] == "row"] == [
        "Service",
        "Synthetic probes",
        "Locations",
        "Backups, cache, load balancer, logs",
        "LLM gateway: models, first token, spend, headroom",
        "SLOs and error budgets",
    ]
    assert {
        "Gateway probe success per model",
        "Time to first token (P95 over 1h)",
        "Probe spend over the last day",
        "Rate-limit headroom (probes)",
    } <= titles


def test_one_unit_per_panel_and_no_series_without_a_target(model: dict[str, Any]) -> None:
    by_title = {p["title"]: p for p in panels(model)}
    # CPU cores and gigabytes once shared an axis: each has its panel and its unit now.
    assert by_title["API process CPU"]["fieldConfig"]["defaults"]["unit"] == "percentunit"
    assert by_title["API process memory"]["fieldConfig"]["defaults"]["unit"] == "bytes"
    for panel in panels(model):
        for query in panel.get("targets", []):
            # A series per target: one without a target would plot as an unnamed line.
            if "{{target}}" in query.get("legendFormat", ""):
                assert 'target!=""' in query["expr"], panel["title"]


def test_variables_and_datasources(model: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in model["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["environment"]["type"] == "query"
    for panel in panels(model):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_grid_ids_and_ref_ids(model: dict[str, Any]) -> None:
    ids = [p["id"] for p in model["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in model["panels"]:
        pos = panel["gridPos"]
        assert 0 <= pos["x"] <= pos["x"] + pos["w"] <= 24, panel["title"]
        mine = {
            (x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & mine, f"{panel['title']} overlaps another panel"
        cells |= mine
        refs = [t["refId"] for t in panel.get("targets", [])]
        assert len(refs) == len(set(refs))
        assert all(refs)


def test_every_query_is_valid_promql(model: dict[str, Any], tmp_path: Path) -> None:
    # promtool parses rule expressions: each query becomes one recording rule.
    exprs = [t["expr"].replace("$environment", "local") for p in panels(model) for t in p["targets"]]
    rules = {
        "groups": [
            {"name": "dashboard", "rules": [{"record": f"q{i}", "expr": e} for i, e in enumerate(exprs)]}
        ]
    }
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    result = check_rules(path)
    assert result.ok, result.output


def test_locations_show_availability_and_a_probe_by_location_matrix(model: dict[str, Any]) -> None:
    by_title = {p["title"]: p for p in panels(model)}
    availability = by_title["Good runs per location (15m)"]["targets"][0]
    assert "sum by (environment, location, target)" in availability["expr"]
    matrix = by_title["Last result: probe x location (1 passed, 0 failed)"]
    assert matrix["type"] == "table"
    [query] = matrix["targets"]
    assert query["instant"] is True
    assert query["format"] == "table"
    assert query["expr"].startswith("min by (location, probe) (synthetic_probe_success{")
    # A stopped runner's frozen last results are left out (default probes_stale_after: 300 s).
    assert query["expr"].endswith("and on (job, environment, instance) (time() - push_time_seconds < 300))")
    [transformation] = matrix["transformations"]
    assert transformation == {
        "id": "groupingToMatrix",
        "options": {"columnField": "location", "rowField": "probe", "valueField": "Value"},
    }


def test_budget_panels_read_the_recorded_series(model: dict[str, Any]) -> None:
    budget = next(p for p in panels(model) if p["title"] == "Error budget remaining")
    expr = budget["targets"][0]["expr"]
    assert expr.startswith("slo:error_budget:remaining{")
    for slo in CONFIG.slos:
        assert slo.name in expr


def test_cli_writes_json(tmp_path: Path) -> None:
    output = tmp_path / "grafana" / "dashboard.json"
    assert main(["--config", str(ROOT / "monitoring.yaml"), "-o", str(output)]) == 0
    assert json.loads(output.read_text(encoding="utf-8"))["uid"] == "slo-probes"
