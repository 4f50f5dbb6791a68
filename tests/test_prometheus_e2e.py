"""End to end on the real binaries: pushed probe counters -> Pushgateway -> Prometheus scrape
-> generated rules -> `slo budget`.

The Pushgateway is filled by PUTting the contract's exposition text directly, so this test
does not depend on the probe plugin; `pytest probes/ --pushgateway URL` fills it the same way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from eventually import rules_evaluated_after, value_of, wait_for

from devstack.daemons import Prometheus, Pushgateway
from slo.config import Config, load_config
from slo.objectives.budget import main as budget_main
from slo.objectives.gate import main as gate_main
from slo.objectives.promql import PrometheusClient
from slo.objectives.rules.generate import render, rule_file

#: Slow: a real Prometheus evaluating every rule.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
GROUP = "/metrics/job/synthetic-probes/environment/local/instance/test"


def exposition(runs: int, failures: int, slow: int) -> str:
    """The probe plugin's metric set for one api probe, gateway probe and latency histogram,
    with the per-target run counters the availability SLIs count."""
    lines = [
        "# TYPE synthetic_probe_runs_total counter",
        "# TYPE synthetic_probe_failures_total counter",
        "# TYPE synthetic_target_runs_total counter",
        "# TYPE synthetic_target_failed_runs_total counter",
        "# TYPE synthetic_probe_latency_seconds histogram",
    ]
    for target, slo in (("api", ""), ("api", "sandbox-availability"), ("gateway", "")):
        labels = f'target="{target}",slo="{slo}"'
        lines += [
            f"synthetic_target_runs_total{{{labels}}} {runs}",
            f"synthetic_target_failed_runs_total{{{labels}}} {failures if target == 'api' else 0}",
        ]
    for probe, target in (
        ("probes/test_health.py::test_api", "api"),
        ("probes/test_gw.py::test_ready", "gateway"),
    ):
        labels = f'probe="{probe}",target="{target}",slo=""'
        lines += [
            f"synthetic_probe_runs_total{{{labels}}} {runs}",
            f"synthetic_probe_failures_total{{{labels}}} {failures if target == 'api' else 0}",
        ]
    labels = 'probe="probes/test_latency.py::test_p95[api]",target="api",slo="api-probe-latency"'
    lines += [
        f'synthetic_probe_latency_seconds_bucket{{{labels},le="0.5"}} {runs - slow}',
        f'synthetic_probe_latency_seconds_bucket{{{labels},le="2.0"}} {runs - slow}',
        f'synthetic_probe_latency_seconds_bucket{{{labels},le="+Inf"}} {runs}',
        f"synthetic_probe_latency_seconds_count{{{labels}}} {runs}",
        f"synthetic_probe_latency_seconds_sum{{{labels}}} {runs * 0.1}",
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(ROOT / "monitoring.yaml", "local")


@pytest.fixture(scope="module")
def prometheus(
    config: Config, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, PrometheusClient]]:
    rules = tmp_path_factory.mktemp("rules") / "slo-rules.yml"
    rules.write_text(render(rule_file(config.slos, config.budgets, config.pushgateway.job)), encoding="utf-8")
    with (
        Pushgateway() as gateway,
        httpx.Client(trust_env=False, timeout=5.0) as http,
        Prometheus(scrape_targets={"pushgateway": gateway.url}, rule_files=[rules]) as prometheus,
        PrometheusClient(prometheus.url) as client,
    ):
        # Counters start at 0, as the plugin's state file does, so increase() sees every event.
        http.put(gateway.url + GROUP, content=exposition(0, 0, 0)).raise_for_status()
        wait_for(lambda: client.query("synthetic_probe_runs_total"), "the first scrape")
        http.put(gateway.url + GROUP, content=exposition(100, 10, 5)).raise_for_status()
        wait_for(
            lambda: client.query('slo:sli_error:ratio{slo="api-availability",window="30d"} > 0'),
            "the rules to see the failures",
        )
        yield prometheus.url, client


def test_every_generated_rule_evaluates_without_error(prometheus: tuple[str, PrometheusClient]) -> None:
    _, client = prometheus
    rules_evaluated_after(client, time.time())  # the SLO-window groups included
    rules = [rule for group in client.rule_groups() for rule in group["rules"]]
    assert len(rules) > 200
    broken = [(rule["name"], rule.get("lastError")) for rule in rules if rule["health"] != "ok"]
    assert broken == []


def test_recording_rules_give_the_pushed_ratio(prometheus: tuple[str, PrometheusClient]) -> None:
    _, client = prometheus
    # Each series is waited for itself: its rule group evaluates on its own timer.
    ratio = value_of(client, 'slo:sli_error:ratio{slo="api-availability",window="1h"}', 0.1)
    assert ratio.labels["environment"] == "local"
    value_of(client, 'slo:burn_rate:ratio{slo="api-availability",window="1h"}', 100)
    value_of(client, 'slo:sli_error:ratio{slo="api-probe-latency",window="5m"}', 0.05)
    # The gateway probe never failed: a ratio of 0, not an absent series.
    value_of(client, 'slo:sli_error:ratio{slo="gateway-availability",window="5m"}', 0)


def test_ten_failures_in_a_hundred_runs_page(prometheus: tuple[str, PrometheusClient]) -> None:
    _, client = prometheus
    alerts = wait_for(
        lambda: client.query(
            'ALERTS{alertname="ErrorBudgetBurn",alertstate="firing",slo="api-availability"}'
        ),
        "the page",
    )
    assert {(a.labels["severity"], a.labels["long"]) for a in alerts} >= {("page", "1h"), ("page", "6h")}
    assert not client.query('ALERTS{alertname="ErrorBudgetBurn",slo="gateway-availability"}')


def test_slo_budget_reports_what_the_counters_imply(
    prometheus: tuple[str, PrometheusClient], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = prometheus
    assert budget_main(["--config", str(ROOT / "monitoring.yaml"), "--prometheus", url, "--json"]) == 0
    rows = {row["slo"]: row for row in json.loads(capsys.readouterr().out)}
    api = rows["api-availability"]
    assert api["environment"] == "local"
    assert api["sli"] == pytest.approx(0.9)
    assert api["budget_remaining"] == pytest.approx(1 - 0.1 / 0.001)
    assert api["burn_rates"]["1h"] == pytest.approx(100)
    assert api["exhaustion_seconds"] == 0
    # The window's evidence: data for the last few seconds only, and the overspend.
    assert time.time() - 120 < api["data_since"] <= time.time()
    assert 0 <= api["coverage"] < 0.001
    assert api["overspent"] == pytest.approx(0.1 / 0.001 - 1)
    assert rows["gateway-availability"]["budget_remaining"] == 1
    assert rows["gateway-availability"]["exhaustion_seconds"] is None
    assert rows["api-probe-latency"]["budget_remaining"] == pytest.approx(0, abs=1e-9)
    # No service metrics in this Prometheus: reported, not invented.
    assert rows["api-error-rate"]["sli"] is None
    assert rows["api-error-rate"]["note"] == "no events in the window"

    assert budget_main(["--config", str(ROOT / "monitoring.yaml"), "--prometheus", url]) == 0
    table = capsys.readouterr().out
    assert "api-availability" in table
    assert "exhausted, 9900.0% over" in table


def test_slo_gate_on_the_budget_in_prometheus(
    prometheus: tuple[str, PrometheusClient], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = prometheus
    base = ["--config", str(ROOT / "monitoring.yaml"), "--prometheus", url, "--min-budget", "0.25"]
    output = str(tmp_path / "gate.json")
    assert gate_main([*base, "--slo", "gateway-availability", "--output", output]) == 1
    assert "INSUFFICIENT DATA  insufficient data: data for 0.0% of the 30d window" in capsys.readouterr().out
    base += ["--min-coverage", "0", "--min-events", "0"]
    assert gate_main([*base, "--slo", "gateway-availability", "--output", output]) == 0
    assert gate_main([*base, "--slo", "api-availability", "--output", output]) == 1
    out = capsys.readouterr().out
    assert "budget  api-availability  FAIL" in out
    assert "-9900.0% of the 30d budget left (need 25%)" in out
