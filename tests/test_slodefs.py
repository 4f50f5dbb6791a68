"""`slos:` and `budgets:` validation, and OpenSLO input: every mistake is one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from slo.config import ConfigError, load_config
from slo.config.objectives import CALENDAR_MONTH, EventsSLI, HistogramSLI, ProbesSLI
from slo.objectives.openslo import load_openslo

ROOT = Path(__file__).resolve().parent.parent


def load_slos(tmp_path: Path, slos: str) -> None:
    path = tmp_path / "monitoring.yaml"
    path.write_text(f"environments: {{local: {{targets: {{}}}}}}\nslos:\n{slos}", encoding="utf-8")
    load_config(path, "local")


def test_shipped_slos_from_the_seed() -> None:
    config = load_config(ROOT / "monitoring.yaml", "local")
    by_name = {slo.name: slo for slo in config.slos}
    assert set(by_name) == {
        "api-availability",
        "gateway-availability",
        "sandbox-availability",
        "api-latency",
        "api-probe-latency",
        "api-error-rate",
    }
    assert by_name["api-availability"].error_budget == pytest.approx(0.001)
    assert isinstance(by_name["sandbox-availability"].sli, ProbesSLI)
    assert by_name["sandbox-availability"].sli.probe == ["*sandbox*"]
    latency = by_name["api-latency"].sli
    assert isinstance(latency, HistogramSLI)
    assert latency.threshold == 2.0
    assert isinstance(by_name["api-error-rate"].sli, EventsSLI)
    assert config.budgets.tokens_per_hour == 100_000
    assert config.budgets.sandbox_violations_per_minute == 10
    assert (config.budgets.cpu, config.budgets.memory) == (0.8, 0.8)


@pytest.mark.parametrize(
    ("slo", "message"),
    [
        (
            "{name: a, objective: 100, sli: {kind: probes, target: api}}",
            "slos[0].objective: objective must be above 0 and below 100",
        ),
        (
            "{name: a, objective: 99, window: 2h, sli: {kind: probes, target: api}}",
            "slos[0].window: window must be whole days",
        ),
        ("{name: a, objective: 99, window: 120d, sli: {kind: probes, target: api}}", "(got 120d)"),
        ("{name: a, objective: 99, sli: {kind: probes}}", "slos[0].sli.target: required key is missing"),
        ("{name: a, objective: 99, sli: {kind: nope}}", "slos[0].sli"),
        ("{name: A!, objective: 99, sli: {kind: probes, target: api}}", "slos[0].name"),
        (
            "{name: a, objective: 99, sli: {kind: events, error_query: 'sum(rate(x[5m]))', "
            "total_query: 'sum(rate(y[{{window}}]))'}}",
            "must contain the {{window}} placeholder",
        ),
        (
            "{name: a, objective: 99, sli: {kind: events, error_query: 'sum(increase(x[{{window}}]))', "
            "total_query: 'sum(rate(y[{{window}}]))'}}",
            "must return per-second rates",
        ),
        (
            "{name: a, objective: 99, sli: {kind: events, total_query: 'sum(rate(y[{{window}}]))'}}",
            "give exactly one of error_query or good_query",
        ),
        (
            "{name: a, objective: 99, sli: {kind: histogram, metric: x_seconds_bucket}}",
            "without _bucket (e.g. 'x_seconds')",
        ),
        (
            "{name: a, objective: 99, sli: {kind: histogram, metric: x, selector: 'job=api'}}",
            "invalid label matchers",
        ),
        (
            "{name: a, objective: 99, sli: {kind: histogram, metric: x, threshold: 0s}}",
            "slos[0].sli.threshold",
        ),
        (
            "{name: a, objective: 99, alerting: {labels: {severity: x}}, sli: {kind: probes, target: api}}",
            "label 'severity' is set by the generated rules",
        ),
        (
            "{name: a, objective: 99, alerting: {min_bad_events: 0}, sli: {kind: probes, target: api}}",
            "slos[0].alerting.min_bad_events",
        ),
        (
            "{name: a, objective: 99, alerting: {pages: true}, sli: {kind: probes, target: api}}",
            "slos[0].alerting.pages: unknown key",
        ),
        (
            "{name: a, objective: 99, sli: {kind: probes, target: api, probe: ''}}",
            "probe patterns must not be empty",
        ),
    ],
)
def test_slo_mistakes_are_one_line(tmp_path: Path, slo: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_slos(tmp_path, f"  - {slo}\n")
    text = str(error.value)
    assert "\n" not in text
    assert text.startswith(str(tmp_path / "monitoring.yaml"))
    assert message in text


def test_windows_and_probe_patterns(tmp_path: Path) -> None:
    path = tmp_path / "monitoring.yaml"
    path.write_text(
        "environments: {local: {targets: {}}}\nslos:\n"
        "  - {name: a, objective: 99.5, window: 7d,\n"
        "     sli: {kind: probes, target: api, probe: ['*x*', '*y*']}}\n"
        "  - {name: b, objective: 99.5, window: calendar-month, sli: {kind: probes, target: api}}\n",
        encoding="utf-8",
    )
    a, b = load_config(path, "local").slos
    assert (a.window_name, a.window_seconds) == ("7d", 7 * 86400)
    assert (b.window_name, b.window_seconds) == (CALENDAR_MONTH, 30 * 86400)


OPENSLO = """\
apiVersion: openslo/v1
kind: Service
metadata: {name: checkout}
spec: {description: Checkout}
---
apiVersion: openslo/v1
kind: SLI
metadata: {name: checkout-errors}
spec:
  ratioMetric:
    counter: true
    bad: {metricSource: {type: Prometheus, spec: {query: 'http_requests_total{code=~"5.."}'}}}
    total: {metricSource: {type: Prometheus, spec: {query: 'sum(rate(http_requests_total[{{.window}}]))'}}}
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: checkout-availability
  annotations: {runbook_url: 'https://runbooks.example.com/checkout'}
spec:
  service: checkout
  indicatorRef: checkout-errors
  timeWindow: [{duration: 28d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{displayName: good, target: 0.995}]
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: checkout-monthly}
spec:
  indicator:
    metadata: {name: inline}
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {type: Prometheus, spec: {query: 'sum(rate(ok_total[{{window}}]))'}}}
        total: {metricSource: {type: Prometheus, spec: {query: 'sum(rate(all_total[{{window}}]))'}}}
  timeWindow: [{duration: 1M, isRolling: false, calendar: {startTime: '2024-01-01 00:00:00', timeZone: UTC}}]
  budgetingMethod: Occurrences
  objectives: [{targetPercent: 99}]
"""


def test_openslo_documents_become_slos(tmp_path: Path) -> None:
    path = tmp_path / "slos.yaml"
    path.write_text(OPENSLO, encoding="utf-8")
    rolling, monthly = load_openslo([path])
    assert rolling.name == "checkout-availability"
    assert rolling.objective == pytest.approx(0.995)
    assert rolling.window_name == "28d"
    assert rolling.runbook == "https://runbooks.example.com/checkout"
    assert isinstance(rolling.sli, EventsSLI)
    assert rolling.sli.error_query == 'sum(rate(http_requests_total{code=~"5.."}[{{window}}]))'
    assert rolling.sli.total_query == "sum(rate(http_requests_total[{{window}}]))"
    assert monthly.window == CALENDAR_MONTH
    assert isinstance(monthly.sli, EventsSLI)
    assert monthly.sli.good_query.startswith("sum(rate(ok_total")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("budgetingMethod: Occurrences", "budgetingMethod: Timeslices"),
            "SLO checkout-availability: budgetingMethod",
        ),
        (
            ("indicatorRef: checkout-errors", "indicatorRef: nope"),
            "indicatorRef 'nope' names no SLI document",
        ),
        (("counter: true\n    bad", "counter: false\n    bad"), "ratioMetric.counter must be true"),
        (("{duration: 28d, isRolling: true}", "{duration: 4w, isRolling: true}"), "must be whole days"),
        (("kind: Service", "kind: AlertPolicy"), "kind 'AlertPolicy' is not supported"),
        (
            ("apiVersion: openslo/v1\nkind: Service", "apiVersion: openslo/v2\nkind: Service"),
            "apiVersion must be openslo/v1",
        ),
        (
            (
                "objectives: [{displayName: good, target: 0.995}]",
                "objectives: [{target: 0.9}, {target: 0.99}]",
            ),
            "objectives",
        ),
        (
            ("query: 'sum(rate(http_requests_total[{{.window}}]))'", "query: 'sum(rate(x[5m]))'"),
            "must be a metric selector or contain",
        ),
    ],
)
def test_openslo_mistakes_are_one_line(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    assert change[0] in OPENSLO
    path = tmp_path / "slos.yaml"
    path.write_text(OPENSLO.replace(*change), encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_openslo([path])
    assert "\n" not in str(error.value)
    assert str(error.value).startswith(str(path))
    assert message in str(error.value)


def test_openslo_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read OpenSLO file"):
        load_openslo([tmp_path / "missing.yaml"])
    (tmp_path / "bad.yaml").write_text("a: [", encoding="utf-8")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_openslo([tmp_path / "bad.yaml"])


def test_probe_patterns_select_node_ids_like_the_rules_do() -> None:
    sli = ProbesSLI(kind="probes", target="api", probe=["*sandbox*", "probes/test_x.py::test[a]"])
    assert sli.selects("probes/test_checks.py::test_check[sandbox-status]")
    assert sli.selects("probes/test_x.py::test[a]")
    assert not sli.selects("probes/test_x.py::testa"), "[ is literal, not a character class"
    assert ProbesSLI(kind="probes", target="api").selects("anything")
