"""The generated `promtool test rules` scenarios pass on the real promtool, and can fail."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from slo.config import load_config
from slo.config.objectives import SLO
from slo.objectives.rules.generate import render, slo_groups
from slo.objectives.rules.promtool import run_tests
from slo.objectives.rules.promtool_tests import scenario_files
from slo.objectives.rules.simulate import firing_alerts
from slo.objectives.rules.thresholds import staleness_group

ROOT = Path(__file__).resolve().parent.parent
CONFIG = load_config(ROOT / "monitoring.yaml", "local")


def write(files: dict[str, str], directory: Path) -> None:
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")


@pytest.mark.slow
@pytest.mark.parametrize("name", [slo.name for slo in CONFIG.slos])
def test_scenarios_pass_on_promtool(name: str, tmp_path: Path) -> None:
    slo = CONFIG.slo(name)
    write(scenario_files([slo], CONFIG.budgets, CONFIG.pushgateway.job), tmp_path)
    result = run_tests(tmp_path / f"{name}.test.yml")
    assert result.ok, result.output
    tests = yaml.safe_load((tmp_path / f"{name}.test.yml").read_text(encoding="utf-8"))["tests"]
    titles = [test["name"] for test in tests]
    assert any("total outage pages after" in t for t in titles)
    assert any("burn rate 5: tickets, no page" in t for t in titles)
    assert any("single bad event" in t for t in titles)
    assert any("zero traffic" in t for t in titles)


def test_probe_slo_scenarios_state_the_outage_page_time_and_staleness() -> None:
    files = scenario_files([CONFIG.slo("api-availability")], CONFIG.budgets, "synthetic-probes")
    tests = yaml.safe_load(files["api-availability.test.yml"])["tests"]
    outage = next(t for t in tests if "total outage" in t["name"])
    assert outage["name"] == "api-availability: total outage pages after 3 minutes"
    before, at = outage["alert_rule_test"]
    assert before["exp_alerts"] == []
    # Six hours of clean history make the day-long ticket windows fire too: only pages matter.
    assert ("page", "1h") in {
        (a["exp_labels"]["severity"], a["exp_labels"]["long"]) for a in at["exp_alerts"]
    }
    assert any("stale probes" in t["name"] for t in tests)


def test_a_burn_rate_of_five_tickets_without_paging() -> None:
    files = scenario_files([CONFIG.slo("api-availability")], CONFIG.budgets, "synthetic-probes")
    test = next(
        t for t in yaml.safe_load(files["api-availability.test.yml"])["tests"] if "burn rate 5" in t["name"]
    )
    [check] = test["alert_rule_test"]
    assert {(a["exp_labels"]["severity"], a["exp_labels"]["long"]) for a in check["exp_alerts"]} == {
        ("ticket", "1d"),
        ("ticket", "3d"),
    }


@pytest.mark.slow
def test_without_the_guard_a_single_blip_pages(tmp_path: Path) -> None:
    """The scenario tests can fail: with min_bad_events 1 one failed run after two clean
    hours pages, on the model and on promtool, where "no alert" is then violated."""
    slo = CONFIG.slo("api-availability")
    unguarded = slo.model_copy(update={"alerting": slo.alerting.model_copy(update={"min_bad_events": 1})})
    total = [float(m) for m in range(131)]
    bad = [0.0] * 121 + [1.0] * 10
    assert "page" in {f.window.severity for f in firing_alerts(unguarded, total, bad, 121)}
    assert firing_alerts(slo, total, bad, 121) == []

    labels = 'job="synthetic-probes",environment="test",instance="r",target="api",slo=""'
    test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": f"synthetic_target_runs_total{{{labels}}}", "values": "0+1x130"},
                    {"series": f"synthetic_target_failed_runs_total{{{labels}}}", "values": "0+0x120 1+0x9"},
                ],
                "alert_rule_test": [{"eval_time": "121m", "alertname": "ErrorBudgetBurn", "exp_alerts": []}],
            }
        ],
    }
    (tmp_path / "blip.test.yml").write_text(yaml.safe_dump(test), encoding="utf-8")
    for policy, passes in ((slo, True), (unguarded, False)):
        (tmp_path / "rules.yml").write_text(render({"groups": slo_groups(policy)}), encoding="utf-8")
        result = run_tests(tmp_path / "blip.test.yml")
        assert result.ok is passes, result.output
    assert 'severity="page"' in result.output


def test_service_slos_are_fed_their_real_metrics_or_swapped_visibly() -> None:
    files = scenario_files(CONFIG.slos, CONFIG.budgets, "synthetic-probes")
    latency = files["api-latency.test.yml"]
    assert 'claude_code_api_latency_seconds_bucket{le="2"}' in latency
    assert "synthetic_probe_latency_seconds_bucket{" in files["api-probe-latency.test.yml"]
    assert 'le="2.0"' in files["api-probe-latency.test.yml"]
    # events SLIs are arbitrary PromQL: their test rules use slo_test_* counters instead.
    assert "slo_test_bad_events_total" in files["rules-api-error-rate.yml"]
    assert "claude_code_api_requests_total" not in files["rules-api-error-rate.yml"]


def _quorum_slo(quorum: int) -> SLO:
    return CONFIG.slo("api-availability").model_copy(update={"quorum": quorum})


def _alerts_at(test: dict[str, Any], alertname: str) -> list[list[dict[str, Any]]]:
    return [check["exp_alerts"] for check in test["alert_rule_test"] if check["alertname"] == alertname]


def test_with_a_quorum_of_two_one_failing_location_is_named_without_a_page() -> None:
    files = scenario_files([_quorum_slo(2)], CONFIG.budgets, "synthetic-probes")
    tests = {t["name"]: t for t in yaml.safe_load(files["api-availability.test.yml"])["tests"]}
    alone = next(t for name, t in tests.items() if "quorum 2, runs from us-east fail: no page" in name)
    assert alone["name"].endswith("SLOLocationFailing names it after 3 minutes")
    assert all(alerts == [] for alerts in _alerts_at(alone, "ErrorBudgetBurn"))
    before, at = _alerts_at(alone, "SLOLocationFailing")
    assert before == []
    assert {(a["exp_labels"]["location"], a["exp_labels"]["severity"]) for a in at} == {("us-east", "ticket")}
    both = tests["api-availability: quorum 2, runs from eu-west and us-east fail: pages after 3 minutes"]
    page = [a for a in _alerts_at(both, "ErrorBudgetBurn")[1] if a["exp_labels"]["long"] == "1h"]
    assert page[0]["exp_annotations"]["locations"] == (
        "eu-west: 5% of runs failed over 1h\nus-east: 5% of runs failed over 1h\n"
    )


def test_a_stopped_runner_is_named_by_instance_and_location() -> None:
    files = scenario_files([_quorum_slo(2)], CONFIG.budgets, "synthetic-probes")
    tests = yaml.safe_load(files["api-availability.test.yml"])["tests"]
    lost = next(t for t in tests if "stops" in t["name"])
    [named] = _alerts_at(lost, "SyntheticProbesStale")[1]
    assert (named["exp_labels"]["instance"], named["exp_labels"]["location"]) == ("runner-1", "eu-west")
    assert "runner-1 in eu-west" in named["exp_annotations"]["description"]
    assert all(alerts == [] for alerts in _alerts_at(lost, "ErrorBudgetBurn"))


@pytest.mark.slow
@pytest.mark.parametrize("quorum", [2, 3])
def test_quorum_scenarios_pass_on_promtool(quorum: int, tmp_path: Path) -> None:
    write(scenario_files([_quorum_slo(quorum)], CONFIG.budgets, CONFIG.pushgateway.job), tmp_path)
    result = run_tests(tmp_path / "api-availability.test.yml")
    assert result.ok, result.output


@pytest.mark.slow
def test_a_quorum_rule_that_pools_the_locations_fails_the_scenarios(tmp_path: Path) -> None:
    """The quorum scenarios can fail: the same tests against the pooled rules (quorum 1's) break."""
    write(scenario_files([_quorum_slo(2)], CONFIG.budgets, CONFIG.pushgateway.job), tmp_path)
    pooled = render({"groups": slo_groups(CONFIG.slo("api-availability"))})
    rules = tmp_path / "rules-api-availability.yml"
    quorum_rules = yaml.safe_load(rules.read_text(encoding="utf-8"))
    quorum_rules["groups"][:2] = yaml.safe_load(pooled)["groups"]
    rules.write_text(render(quorum_rules), encoding="utf-8")
    result = run_tests(tmp_path / "api-availability.test.yml")
    assert not result.ok
    assert "SLOLocationFailing" in result.output


def test_a_stopped_runner_whose_location_is_its_instance_is_named_once(tmp_path: Path) -> None:
    """The default location is the instance: the stale ticket does not say "runner-1 in runner-1"."""
    group = 'job="synthetic-probes",environment="test",instance="runner-1",location="runner-1"'
    test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": f"push_time_seconds{{{group}}}", "values": "0+60x10 600+0x10"}],
                "alert_rule_test": [
                    {
                        "eval_time": "20m",
                        "alertname": "SyntheticProbesStale",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "ticket",
                                    "job": "synthetic-probes",
                                    "environment": "test",
                                    "instance": "runner-1",
                                    "location": "runner-1",
                                },
                                "exp_annotations": {
                                    **staleness_group(CONFIG.budgets, "synthetic-probes")["rules"][0][
                                        "annotations"
                                    ],
                                    "description": (
                                        "No probe results pushed by runner-1 (test) for 10m 0s: the probe "
                                        "timer or runner stopped, so the SLOs fed by it are blind."
                                    ),
                                },
                            }
                        ],
                    }
                ],
            }
        ],
    }
    (tmp_path / "rules.yml").write_text(
        render({"groups": [staleness_group(CONFIG.budgets, "synthetic-probes")]}), encoding="utf-8"
    )
    (tmp_path / "stale.test.yml").write_text(yaml.safe_dump(test), encoding="utf-8")
    result = run_tests(tmp_path / "stale.test.yml")
    assert result.ok, result.output
