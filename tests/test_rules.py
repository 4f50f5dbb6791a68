"""`slo rules`: the generated file's shape, promtool's verdict, the CLI and the checked-in copy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from slo.config import Config, load_config
from slo.config.objectives import SLO
from slo.objectives.rules.cli import main
from slo.objectives.rules.generate import render, rule_file, slo_groups
from slo.objectives.rules.promtool import check_rules
from slo.objectives.rules.simulate import minutes_to_page
from slo.objectives.rules.sli import glob_regex, le_regex, sli_query
from slo.objectives.rules.windows import burn_windows

ROOT = Path(__file__).resolve().parent.parent
SEED_ALERTS = {
    "ClaudeCodeServiceDown",
    "HighAPIErrorRate",
    "HighAPILatency",
    "HighTokenUsage",
    "HighCostIncurred",
    "SandboxViolations",
    "HighCPUUsage",
    "HighMemoryUsage",
}


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(ROOT / "monitoring.yaml", "local")


def make_slo(**fields: Any) -> SLO:
    return SLO.model_validate(
        {"name": "api", "objective": 99.9, "sli": {"kind": "probes", "target": "api"}, **fields}
    )


def rules_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_generated_file_passes_promtool_check(config: Config, tmp_path: Path) -> None:
    path = tmp_path / "rules.yml"
    path.write_text(render(rule_file(config.slos, config.budgets, "synthetic-probes")), encoding="utf-8")
    result = check_rules(path)
    assert result.ok, result.output
    # 245 for the SLOs, thresholds and deployment alerts, 1 probe-spend record (no limit set),
    # 1 alert on a model group's deployment down, and 72 per-location records: 3 per window
    # (7 alert windows and the SLO window) for each of the 3 `probes` SLOs, and the notice
    # that a maintenance window is open.
    assert "SUCCESS: 321 rules found" in result.output


def test_every_slo_has_the_workbook_burn_alerts(config: Config) -> None:
    alerts = [
        r
        for r in rules_of(rule_file(config.slos, config.budgets, "j"))
        if r.get("alert") == "ErrorBudgetBurn"
    ]
    for slo in config.slos:
        mine = {
            (a["labels"]["severity"], a["labels"]["long"], a["labels"]["short"])
            for a in alerts
            if a["labels"]["slo"] == slo.name
        }
        assert mine == {
            ("page", "1h", "5m"),
            ("page", "6h", "30m"),
            ("ticket", "1d", "2h"),
            ("ticket", "3d", "6h"),
        }
    page = next(
        a
        for a in alerts
        if a["labels"] == {"severity": "page", "slo": "api-availability", "long": "1h", "short": "5m"}
    )
    assert '{slo="api-availability",window="1h"} > 14.4' in page["expr"]
    assert '{slo="api-availability",window="5m"} > 14.4' in page["expr"]
    assert 'slo:sli_bad_events:increase{slo="api-availability",window="1h"} >= 3' in page["expr"]
    assert page["annotations"]["runbook"]


def test_seed_threshold_alerts_and_staleness_are_generated(config: Config) -> None:
    names = {r.get("alert") for r in rules_of(rule_file(config.slos, config.budgets, "synthetic-probes"))}
    assert names >= SEED_ALERTS
    assert {"SyntheticProbesStale", "SyntheticProbesAbsent"} <= names


def test_thresholds_come_from_budgets(config: Config) -> None:
    budgets = config.budgets.model_copy(
        update={"tokens_per_hour": 5000.0, "sandbox_violations_per_minute": 2.0}
    )
    alerts = {r["alert"]: r for r in rules_of(rule_file([], budgets, "j")) if "alert" in r}
    assert "sum(increase(claude_code_tokens_used_total[1h]))\n  > 5000" in alerts["HighTokenUsage"]["expr"]
    assert "* 60\n  > 2" in alerts["SandboxViolations"]["expr"]


def test_every_ratio_is_guarded_against_zero_traffic(config: Config) -> None:
    ratios = [
        r
        for r in rules_of(rule_file(config.slos, config.budgets, "j"))
        if r.get("record") == "slo:sli_error:ratio"
    ]
    assert ratios
    for rule in ratios:
        assert rule["expr"].endswith("> 0)"), rule["expr"]


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        ("30d", [("1h", "5m"), ("6h", "30m"), ("1d", "2h"), ("3d", "6h")]),
        ("28d", [("56m", "5m"), ("336m", "28m"), ("1344m", "112m"), ("4032m", "336m")]),
        ("7d", [("14m", "5m"), ("84m", "7m"), ("336m", "28m"), ("1008m", "84m")]),
        ("calendar-month", [("1h", "5m"), ("6h", "30m"), ("1d", "2h"), ("3d", "6h")]),
    ],
)
def test_windows_scale_with_the_slo_window(window: str, expected: list[tuple[str, str]]) -> None:
    windows = burn_windows(make_slo(window=window))
    assert [(w.long_name, w.short_name) for w in windows] == expected
    assert [w.factor for w in windows] == [14.4, 6.0, 3.0, 1.0]


def test_paging_can_be_turned_off_and_labels_added() -> None:
    slo = make_slo(alerting={"page": False, "labels": {"team": "sre"}})
    alerts = [r for g in slo_groups(slo) for r in g["rules"] if r.get("alert") == "ErrorBudgetBurn"]
    assert {a["labels"]["severity"] for a in alerts} == {"ticket"}
    assert all(a["labels"]["team"] == "sre" for a in alerts)
    assert minutes_to_page(slo, 1.0) is None


def test_calendar_month_records_month_to_date(tmp_path: Path) -> None:
    slo = make_slo(window="calendar-month")
    window_rules = slo_groups(slo)[1]["rules"]
    events = next(r for r in window_rules if r["record"] == "slo:sli_events:increase")
    assert events["labels"]["window"] == "calendar-month"
    assert "[31d:5m]" in events["expr"]
    assert "month() % 3 == 2" in events["expr"]
    path = tmp_path / "rules.yml"
    path.write_text(render({"groups": slo_groups(slo)}), encoding="utf-8")
    assert check_rules(path).ok


def test_selectors() -> None:
    assert glob_regex(["*sandbox*", "probes/test_x.py::test[a]"]) == (
        r"(?:.*sandbox.*)|(?:probes/test_x\.py::test\[a\])"
    )
    assert le_regex(2.0) == r"2|2\.0"
    assert le_regex(0.25) == r"0\.25"
    query = sli_query(make_slo(sli={"kind": "histogram", "metric": "m_seconds", "selector": 'job="api"'}))
    assert query.total("5m") == 'sum (increase(m_seconds_count{job="api"}[5m]))'
    assert 'm_seconds_bucket{job="api",le=~"2|2\\\\.0"}' in query.bad("5m")


def test_total_outage_page_time(config: Config) -> None:
    # One probe a minute, 99.9 %: the third failed run pages (the minimum-events guard).
    assert minutes_to_page(config.slo("api-availability"), 1.0) == 3
    # 95 %: a 1h window at over 72 % errors, i.e. 2 % of a 30-day budget, takes 44 minutes.
    assert minutes_to_page(config.slo("api-latency"), 1000.0) == 44
    assert minutes_to_page(make_slo(alerting={"min_bad_events": 1}), 1.0) == 1


def test_cli_writes_checks_and_explains(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "out" / "rules.yml"
    assert main(["--config", str(ROOT / "monitoring.yaml"), "-o", str(output), "--check"]) == 0
    assert yaml.safe_load(output.read_text(encoding="utf-8"))["groups"]
    assert main(["--config", str(ROOT / "monitoring.yaml"), "--explain"]) == 0
    out = capsys.readouterr().out
    assert "api-availability: 99.9 % over 30d, min 3 bad events; total outage pages after 3 min" in out


def test_cli_check_rejects_bad_promql(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "monitoring.yaml"
    config.write_text(
        "environments: {local: {targets: {}}}\n"
        "slos:\n"
        "  - name: broken\n"
        "    objective: 99\n"
        "    sli:\n"
        "      kind: events\n"
        "      error_query: 'sum(rate(x[{{window}}])'\n"
        "      total_query: 'sum(rate(y[{{window}}]))'\n",
        encoding="utf-8",
    )
    assert main(["--config", str(config), "-o", str(tmp_path / "r.yml"), "--check"]) == 1
    assert "parse error" in capsys.readouterr().err


def test_cli_config_error_is_one_line_exit_4(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "monitoring.yaml"
    config.write_text(
        "environments: {local: {targets: {}}}\n"
        "slos: [{name: a, objective: 99.9, window: 45m, sli: {kind: probes, target: api}}]\n",
        encoding="utf-8",
    )
    assert main(["--config", str(config)]) == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "slos[0].window: window must be whole days from 1d to 90d, or calendar-month (got 45m)" in err


def test_cli_usage_errors_exit_4(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--no-such-option"])
    assert exit_info.value.code == 4
    assert main(["--config", str(ROOT / "monitoring.yaml"), "--check"]) == 4
    assert "--check needs -o FILE" in capsys.readouterr().err


def test_checked_in_rules_are_up_to_date(tmp_path: Path) -> None:
    # deploy/rules/ is an example users copy: it must be exactly what the generator writes.
    assert (
        main(
            [
                "--config",
                str(ROOT / "monitoring.yaml"),
                "-o",
                str(tmp_path / "slo-rules.yml"),
                "--tests",
                str(tmp_path / "tests"),
            ]
        )
        == 0
    )
    deployed = ROOT / "deploy" / "rules"
    assert (deployed / "slo-rules.yml").read_text(encoding="utf-8") == (tmp_path / "slo-rules.yml").read_text(
        encoding="utf-8"
    )
    expected = {p.name: p.read_text(encoding="utf-8") for p in (tmp_path / "tests").iterdir()}
    actual = {p.name: p.read_text(encoding="utf-8") for p in (deployed / "tests").iterdir()}
    assert actual == expected, (
        "regenerate with: slo rules -o deploy/rules/slo-rules.yml --tests deploy/rules/tests"
    )


def test_deployment_alerts_select_probes_by_their_alert_label() -> None:
    """Each deployment alert selects the probes marked with its name, never a file or test name
    (a renamed probe keeps its alert; tests/test_deployment_alerts.py checks a shipped probe
    names each one)."""
    from slo.objectives.rules.thresholds import deployment_group

    for rule in deployment_group("synthetic-probes")["rules"]:
        assert f'alert="{rule["alert"]}"' in rule["expr"], rule["alert"]
        assert "probe=~" not in rule["expr"], rule["alert"]
        assert ".py" not in rule["expr"], rule["alert"]
        assert rule["annotations"]["runbook"]
