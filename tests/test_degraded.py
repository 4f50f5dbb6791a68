"""Slow is not down: a probe that worked but too slowly (or said so itself) ends degraded.

It passes in pytest (its JUnit case passes, with the reason as a property), prints DEGRADED,
pushes `synthetic_probe_degraded` 1 and advances `synthetic_target_degraded_runs_total`, and
is a good event of the availability SLI: never a failed run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import yaml
from eventually import value_of, wait_for
from loopback import capture_server

from devstack.daemons import Prometheus, Pushgateway
from slo.config import Check, Target
from slo.config.objectives import SLO, Budgets, DegradedSLI
from slo.evidence import EVIDENCE_PROPERTY, MAX_NOTE, Evidence
from slo.exchange.records import Phases, RequestRecord
from slo.htmlreport.probes import probes_section
from slo.junit import read_cases
from slo.objectives.budget import main as budget_main
from slo.objectives.gate import junit_conditions
from slo.objectives.promql import PrometheusClient
from slo.objectives.rules.cli import explain
from slo.objectives.rules.generate import degraded_probes, render, slo_groups
from slo.objectives.rules.promtool import run_tests
from slo.objectives.rules.promtool_tests import scenario_files
from slo.objectives.rules.sli import sli_query
from slo.probe.run import slow_request
from slo.report.exposition import SuiteRun, probe_families
from slo.report.reporter import _count_target_runs
from slo.report.results import ProbeResult, ResultCollector
from slo.report.state import ProbeState, TargetState
from slo.validate import main as validate_main

pytest_plugins = ["pytester"]


def _record(elapsed: float, status: int | None = 200, url: str = "/health?token=x") -> RequestRecord:
    return RequestRecord("api", "GET", url, status, elapsed, Phases())


def _report(when: str, outcome: str, evidence: Evidence | None) -> SimpleNamespace:
    properties = [] if evidence is None else [(EVIDENCE_PROPERTY, evidence.encode())]
    return SimpleNamespace(
        nodeid="probes/test_x.py::test_x",
        when=when,
        outcome=outcome,
        passed=outcome == "passed",
        failed=outcome == "failed",
        skipped=outcome == "skipped",
        duration=0.3,
        user_properties=properties,
    )


# --- the rule ---------------------------------------------------------------------------------


def test_an_answer_slower_than_degraded_after_degrades_and_says_how_slow() -> None:
    assert slow_request(_record(0.3), 0.1) == "api GET /health took 300 ms, over degraded_after 100 ms"
    assert slow_request(_record(0.1), 0.1) is None, "at the threshold is not over it"
    assert slow_request(_record(0.3), None) is None, "no degraded_after, no degraded"
    assert slow_request(_record(0.3, status=None), 0.1) is None, "no answer is a failure, not slowness"


def test_the_first_reason_stands_one_line_capped_and_it_survives_the_encoding() -> None:
    evidence = Evidence()
    evidence.degrade("\n  queue deep: 140 jobs\nsecond line")
    evidence.degrade("a later reason")
    assert evidence.degraded == "queue deep: 140 jobs"
    assert Evidence.decode(evidence.encode()).degraded == "queue deep: 140 jobs"
    long = Evidence()
    long.degrade("x" * 1000)
    assert len(long.degraded) == MAX_NOTE


# --- config -----------------------------------------------------------------------------------


def test_degraded_after_must_be_below_what_fails() -> None:
    assert Target.model_validate({"url": "http://a", "degraded_after": "100ms"}).degraded_after == 0.1
    with pytest.raises(ValueError, match=r"degraded_after \(5s\) must be below timeout \(5s\)"):
        Target.model_validate({"url": "http://a", "degraded_after": "5s"})
    check = {"name": "c", "target": "api", "latency": "1s"}
    assert Check.model_validate({**check, "degraded_after": "500ms"}).degraded_after == 0.5
    with pytest.raises(ValueError, match=r"must be below latency \(1s\)"):
        Check.model_validate({**check, "degraded_after": "2s"})


def test_a_degraded_after_that_would_fail_is_one_line_naming_the_key_exit_4(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "monitoring.yaml"
    config.write_text(
        "version: 1\nenvironments:\n  local:\n    targets:\n"
        '      api: {url: "http://127.0.0.1:9", timeout: 1s, degraded_after: 2s}\n',
        encoding="utf-8",
    )
    assert validate_main(["--config", str(config)]) == 4
    assert capsys.readouterr().err.strip() == (
        f"{config}: environments.local.targets.api: degraded_after (2s) must be below timeout (1s): "
        "an answer that slow fails, it cannot be degraded"
    )


def test_the_degraded_sli_kind_is_a_probe_selection() -> None:
    slo = SLO.model_validate(
        {"name": "fast", "objective": 95, "sli": {"kind": "degraded", "target": "api", "probe": "*health*"}}
    )
    assert isinstance(slo.sli, DegradedSLI)
    assert slo.sli.narrowed
    assert slo.sli.selects("probes/test_health.py::test_api_health")


# --- results and counters -------------------------------------------------------------------


def test_a_passing_call_with_a_degraded_reason_is_a_degraded_result_that_worked() -> None:
    evidence = Evidence(target="api", degraded="api GET /health took 300 ms, over degraded_after 100 ms")
    collector = ResultCollector()
    collector.add(_report("setup", "passed", None), None)  # type: ignore[arg-type]
    collector.add(_report("call", "passed", evidence), evidence)  # type: ignore[arg-type]
    collector.add(_report("teardown", "passed", None), None)  # type: ignore[arg-type]
    [result] = collector.results.values()
    assert (result.outcome, result.message, result.succeeded) == ("degraded", evidence.degraded, True)
    assert collector.outcome_counts()["degraded"] == 1


def test_a_teardown_failing_after_a_degraded_call_is_an_error_with_its_own_message() -> None:
    evidence = Evidence(target="api", degraded="slow")
    failure = Evidence(target="api", reason="error", message="fixture broke")
    collector = ResultCollector()
    collector.add(_report("call", "passed", evidence), evidence)  # type: ignore[arg-type]
    collector.add(_report("teardown", "failed", failure), failure)  # type: ignore[arg-type]
    [result] = collector.results.values()
    assert (result.outcome, result.message) == ("error", "fixture broke")


def _result(name: str, outcome: str, kind: str = "availability") -> ProbeResult:
    return ProbeResult(f"probes/test_x.py::{name}", outcome=outcome, target="api", kind=kind)  # type: ignore[arg-type]


def test_a_run_is_degraded_only_when_none_of_its_availability_probes_failed() -> None:
    targets: dict[str, TargetState] = {}
    runs = [
        [_result("a", "degraded"), _result("b", "passed")],  # degraded
        [_result("a", "degraded"), _result("b", "failed")],  # failed, not also degraded
        [_result("a", "passed"), _result("b", "passed"), _result("c", "degraded", kind="budget")],
    ]
    # A `degraded` SLO that narrows the probes to `b` counts only b's runs.
    narrowed = SLO.model_validate(
        {"name": "fast-b", "objective": 95, "sli": {"kind": "degraded", "target": "api", "probe": "*::b"}}
    )
    assert isinstance(narrowed.sli, DegradedSLI)
    for results in runs:
        _count_target_runs(targets, results, 1.0, {"fast-b": narrowed.sli})
    state = targets["api"]
    assert (state.runs, state.failed_runs, state.degraded_runs) == (3, 1, 1)
    only_b = targets["api\nfast-b"]
    assert (only_b.slo, only_b.runs, only_b.failed_runs, only_b.degraded_runs) == ("fast-b", 3, 1, 0)


def test_degraded_is_pushed_per_probe_and_per_target() -> None:
    probes = {
        "p::slow": ProbeState(target="api", runs=1, last_success=1.0, last_degraded=1.0),
        "p::fast": ProbeState(target="api", runs=1, last_success=1.0, last_degraded=0.0),
        # A state file of an older version has no last_degraded: the probe was not degraded.
        "p::old": ProbeState(target="api", runs=1, last_success=0.0),
    }
    targets = {"api": TargetState(target="api", runs=4, failed_runs=1, degraded_runs=2)}
    families = {f.name: f for f in probe_families(probes, SuiteRun(0.0, 1.0, {}), targets)}
    degraded = {dict(labels)["probe"]: value for labels, value in families["synthetic_probe_degraded"].series}
    assert degraded == {"p::slow": 1.0, "p::fast": 0.0, "p::old": 0.0}
    assert families["synthetic_target_degraded_runs_total"].series == [((("slo", ""), ("target", "api")), 2)]
    assert families["synthetic_target_degraded_runs_total"].type == "counter"


# --- a real run -------------------------------------------------------------------------------

PROBES = """
import pytest

@pytest.mark.probe(target="api")
def test_slow_answer(probe):
    probe.http().get("/health").raise_for_status()

@pytest.mark.probe(target="api")
def test_deep_queue(probe):
    probe.degrade("140 jobs queued, over 100")
    assert True

@pytest.mark.probe(target="fast")
def test_fast_answer(probe):
    probe.http().get("/health").raise_for_status()

@pytest.mark.probe(target="fast")
def test_degraded_then_failed(probe):
    probe.degrade("first slow")
    assert False, "then broken"
"""


@pytest.fixture
def slow_api() -> Iterator[str]:
    with capture_server(hold=0.3) as server:
        yield server.url


@pytest.fixture
def pushgateway() -> Iterator[Pushgateway]:
    with Pushgateway() as gateway:
        yield gateway


def _series(gateway_url: str, name: str) -> dict[tuple[str, ...], float]:
    """One family from the Pushgateway's API: (probe or target, slo) -> value."""
    found: dict[tuple[str, ...], float] = {}
    for group in httpx.get(f"{gateway_url}/api/v1/metrics", timeout=5).json()["data"]:
        for metric in group.get(name, {}).get("metrics", []):
            labels = metric["labels"]
            key = (
                (labels["probe"].split("::")[-1],) if "probe" in labels else (labels["target"], labels["slo"])
            )
            found[key] = float(metric["value"])
    return found


@pytest.mark.slow
@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_a_300ms_answer_with_degraded_after_100ms_passes_degraded_and_is_pushed(
    pytester: pytest.Pytester,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    slow_api: str,
    pushgateway: Pushgateway,
    workers: list[str],
) -> None:
    pytester.makefile(
        ".yaml",
        monitoring=f"""
version: 1
environments:
  local:
    targets:
      api: {{url: "{slow_api}", timeout: 2s, degraded_after: 100ms}}
      fast: {{url: "{slow_api}", timeout: 2s}}
checks:
  - {{name: slow-check, target: fast, path: /health, latency: 1s, degraded_after: 100ms}}
  - {{name: patient-check, target: fast, path: /health, latency: 1s}}
  - {{name: inherited-check, target: api, path: /health}}
slos:
  - {{name: api-availability, objective: 99.9, sli: {{kind: probes, target: api}}}}
  - {{name: api-fast-enough, objective: 95, sli: {{kind: degraded, target: api}}}}
""",
    )
    pytester.makeini("[pytest]\nslo_probe_paths = .\naddopts = -p no:locust -p no:cacheprovider\n")
    pytester.makepyfile(test_run=PROBES)
    checks = Path(__file__).resolve().parents[1] / "probes" / "test_checks.py"
    pytester.makepyfile(test_checks=checks.read_text())
    monkeypatch.setenv("SLO_STATE_FILE", str(tmp_path / "state.json"))
    monkeypatch.setenv("SLO_INSTANCE", "runner-1")
    result = pytester.runpytest_subprocess("--pushgateway", pushgateway.url, "-rA", *workers, timeout=120)
    result.assert_outcomes(passed=6, failed=1)
    result.stdout.fnmatch_lines(
        [
            "DEGRADED [[]api[]] *test_run.py::test_slow_answer  3*ms",
            "        api GET /health took 3* ms, over degraded_after 100 ms",
        ],
        consecutive=True,
    )
    result.stdout.fnmatch_lines(["DEGRADED [[]api[]] *test_deep_queue*", "        140 jobs queued, over 100"])
    result.stdout.fnmatch_lines(["DEGRADED [[]fast[]] *test_check[[]slow-check[]]*"])
    result.stdout.fnmatch_lines(["PASSED   [[]fast[]] *test_check[[]patient-check[]]*"])
    result.stdout.fnmatch_lines(["DEGRADED [[]api[]] *test_check[[]inherited-check[]]*"])
    result.stdout.fnmatch_lines(["FAILED   [[]fast[]] *test_degraded_then_failed*", "        then broken"])

    # JUnit: the degraded cases pass, with the reason as a property.
    cases = {case.name: case for case in read_cases(pytester.path / "reports" / "junit.xml")}
    assert cases["test_slow_answer"].outcome == "passed"
    assert cases["test_slow_answer"].degraded.startswith("api GET /health took 3")
    assert (cases["test_deep_queue"].outcome, cases["test_deep_queue"].degraded) == (
        "passed",
        "140 jobs queued, over 100",
    )
    assert cases["test_fast_answer"].degraded == ""
    assert (cases["test_degraded_then_failed"].outcome, cases["test_degraded_then_failed"].degraded) == (
        "failed",
        "",
    )

    # Pushed: the probe gauge, and the target's degraded run, which is not a failed run.
    degraded = _series(pushgateway.url, "synthetic_probe_degraded")
    assert degraded == {
        ("test_slow_answer",): 1.0,
        ("test_deep_queue",): 1.0,
        ("test_fast_answer",): 0.0,
        ("test_degraded_then_failed",): 0.0,
        ("test_check[slow-check]",): 1.0,
        ("test_check[patient-check]",): 0.0,
        ("test_check[inherited-check]",): 1.0,  # a check without its own takes the target's
    }
    assert _series(pushgateway.url, "synthetic_probe_success")[("test_slow_answer",)] == 1.0
    assert _series(pushgateway.url, "synthetic_target_runs_total") == {("api", ""): 1.0, ("fast", ""): 1.0}
    assert _series(pushgateway.url, "synthetic_target_failed_runs_total") == {
        ("api", ""): 0.0,
        ("fast", ""): 1.0,
    }
    assert _series(pushgateway.url, "synthetic_target_degraded_runs_total") == {
        ("api", ""): 1.0,
        ("fast", ""): 0.0,
    }, "a run with a failed probe is a failed run, not also a degraded one"
    assert _series_by(pushgateway.url, "synthetic_suite_probes")["degraded"] == 4.0

    # The next run adds to the counters kept in the state file.
    again = pytester.runpytest_subprocess("--pushgateway", pushgateway.url, *workers, timeout=120)
    again.assert_outcomes(passed=6, failed=1)
    assert _series(pushgateway.url, "synthetic_target_degraded_runs_total")[("api", "")] == 2.0
    assert _series(pushgateway.url, "synthetic_target_runs_total")[("api", "")] == 2.0
    assert _series(pushgateway.url, "synthetic_target_failed_runs_total")[("api", "")] == 0.0

    # The run file keeps the outcome and its reason for the report.
    document = json.loads((pytester.path / "reports" / "probes.json").read_text())
    entries = {entry["probe"].split("::")[-1]: entry for entry in document["probes"]}
    assert entries["test_deep_queue"]["outcome"] == "degraded"
    assert entries["test_deep_queue"]["message"] == "140 jobs queued, over 100"
    assert document["counts"]["degraded"] == 4


def _series_by(gateway_url: str, name: str) -> dict[str, float]:
    """A suite family by its `outcome` label."""
    found = {}
    for group in httpx.get(f"{gateway_url}/api/v1/metrics", timeout=5).json()["data"]:
        for metric in group.get(name, {}).get("metrics", []):
            found[metric["labels"]["outcome"]] = float(metric["value"])
    return found


# --- JUnit: read back by the one reader, and by the gate ---------------------------------------

DEGRADED_JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="2">
<testcase classname="probes.test_health" name="test_api_health">
<properties>
<property name="degraded" value="api GET /health took 301 ms, over degraded_after 100 ms"/>
</properties>
</testcase>
<testcase classname="probes.test_health" name="test_gateway_health"/>
</testsuite></testsuites>
"""


def test_a_degraded_case_passes_with_its_reason_and_the_gate_passes_saying_so(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(DEGRADED_JUNIT, encoding="utf-8")
    slow, fine = read_cases(path)
    assert (slow.outcome, slow.degraded) == (
        "passed",
        "api GET /health took 301 ms, over degraded_after 100 ms",
    )
    assert (fine.outcome, fine.degraded) == ("passed", "")
    [condition] = junit_conditions(path)
    assert condition.passed
    assert condition.evidence == "2 tests: 0 failed, 0 errors, 0 skipped, 1 passed degraded"


def test_the_html_report_shows_a_degraded_probe_with_its_reason() -> None:
    html = probes_section(
        {
            "probes": [
                {"probe": "p::fast", "target": "api", "outcome": "passed"},
                {"probe": "p::slow", "target": "api", "outcome": "degraded", "message": "took 301 ms"},
            ]
        }
    )
    assert '<span class="badge degraded">DEGRADED</span>' in html
    assert "took 301 ms" in html
    assert html.index("p::slow") < html.index("p::fast"), "degraded before passed"


# --- rules: a "fast enough" SLO, and an availability SLO that degraded runs never burn ----------

AVAILABILITY = SLO.model_validate(
    {"name": "api-availability", "objective": 99.9, "sli": {"kind": "probes", "target": "api"}}
)
FAST_ENOUGH = SLO.model_validate(
    {"name": "api-fast-enough", "objective": 95, "sli": {"kind": "degraded", "target": "api"}}
)


def test_the_degraded_sli_counts_degraded_runs_among_the_runs_that_worked() -> None:
    query = sli_query(FAST_ENOUGH)
    assert query.total("1h") == (
        'sum by (environment) (increase(synthetic_target_runs_total{target="api",slo=""}[1h]))'
        ' - sum by (environment) (increase(synthetic_target_failed_runs_total{target="api",slo=""}[1h]))'
    )
    assert query.bad("1h") == (
        'sum by (environment) (increase(synthetic_target_degraded_runs_total{target="api",slo=""}[1h]))'
    )
    assert degraded_probes(FAST_ENOUGH) == (
        '{{ range printf `synthetic_probe_degraded{environment="%s",target="api",kind="availability"} == 1` '
        '$labels.environment | query | sortByLabel "probe" }}{{ .Labels.probe }} on {{ .Labels.instance }}\n'
        "{{ else }}no probe is degraded now\n{{ end }}"
    )
    assert degraded_probes(AVAILABILITY) is None
    narrowed = SLO.model_validate(
        {
            "name": "fast-health",
            "objective": 95,
            "sli": {"kind": "degraded", "target": "api", "probe": "*health*"},
        }
    )
    assert 'slo="fast-health"' in sli_query(narrowed).bad("5m"), "a narrowed SLI has run counters of its own"


def test_the_explained_policy_of_a_fast_enough_slo() -> None:
    assert explain([FAST_ENOUGH]).splitlines()[0] == (
        "api-fast-enough: 95 % over 30d, min 3 bad events; every run degraded pages after 44 min "
        "at 1 run of the target/min"
    )


@pytest.mark.slow
def test_fast_enough_scenarios_pass_on_promtool(tmp_path: Path) -> None:
    for name, text in scenario_files([FAST_ENOUGH], Budgets(), "synthetic-probes").items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    result = run_tests(tmp_path / "api-fast-enough.test.yml")
    assert result.ok, result.output
    document = yaml.safe_load((tmp_path / "api-fast-enough.test.yml").read_text())
    titles = [test["name"] for test in document["tests"]]
    assert "api-fast-enough: every run degraded pages after 44 minutes" in titles
    # The page names the degraded availability probes (not the degraded budget probe fed beside).
    [outage] = [test for test in document["tests"] if test["name"].endswith("pages after 44 minutes")]
    paged = outage["alert_rule_test"][-1]["exp_alerts"]
    assert {alert["exp_annotations"]["degraded"] for alert in paged} == {
        "probes/test_checks.py::test_check[health] on runner-1\n"
        "probes/test_health.py::test_api_health on runner-1\n"
    }
    assert "api-fast-enough: fresh deploy: one bad run raises nothing" in titles
    assert "api-fast-enough: every run failed: no events of this SLI, nothing fires" in titles


@pytest.mark.slow
def test_an_availability_sli_that_counted_degraded_runs_would_fail_its_scenario(tmp_path: Path) -> None:
    """Every run degraded raises nothing for an availability SLO, on promtool; and the
    scenario can fail: rules whose bad events read the degraded counter page on it."""
    files = scenario_files([AVAILABILITY], Budgets(), "synthetic-probes")
    document = yaml.safe_load(files["api-availability.test.yml"])
    # Only that scenario: the others read the failed-runs counter and would fail too.
    document["tests"] = [test for test in document["tests"] if "every run degraded" in test["name"]]
    (tmp_path / "api-availability.test.yml").write_text(yaml.safe_dump(document), encoding="utf-8")
    rules = files["rules-api-availability.yml"]
    for counter, passes in (("failed", True), ("degraded", False)):
        counting = rules.replace(
            "synthetic_target_failed_runs_total", f"synthetic_target_{counter}_runs_total"
        )
        (tmp_path / "rules-api-availability.yml").write_text(counting, encoding="utf-8")
        result = run_tests(tmp_path / "api-availability.test.yml")
        assert result.ok is passes, result.output
    assert "every run degraded: good events, nothing fires" in result.output


@pytest.mark.slow
def test_a_secret_in_a_degraded_reason_never_reaches_an_output(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_TOKEN", "s3cret-token-4711")
    pytester.makefile(
        ".yaml",
        monitoring="""
version: 1
environments:
  local:
    targets:
      api: {url: "http://127.0.0.1:9", token: "${API_TOKEN}"}
""",
    )
    pytester.makeini("[pytest]\nslo_probe_paths = .\naddopts = -p no:locust -p no:cacheprovider\n")
    pytester.makepyfile(
        test_run="""
import os
import pytest

@pytest.mark.probe(target="api")
def test_echoes(probe):
    probe.degrade("the API echoed " + os.environ["API_TOKEN"])
"""
    )
    monkeypatch.setenv("SLO_STATE_FILE", str(tmp_path / "state.json"))
    result = pytester.runpytest_subprocess("--no-push", "-rA", timeout=120)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["DEGRADED *test_echoes*", "        the API echoed ***"])
    reports = pytester.path / "reports"
    written = "\n".join((reports / name).read_text() for name in ("junit.xml", "probes.json"))
    assert "the API echoed ***" in written
    assert "s3cret-token-4711" not in result.stdout.str() + result.stderr.str() + written


# --- on the real binaries: Pushgateway -> Prometheus -> the generated rules -> slo budget ------

RUN_GROUP = "/metrics/job/synthetic-probes/environment/local/instance/test"


def _runs(runs: int, failed: int, degraded: int) -> str:
    labels = 'target="api",slo=""'
    return (
        "# TYPE synthetic_target_runs_total counter\n"
        "# TYPE synthetic_target_failed_runs_total counter\n"
        "# TYPE synthetic_target_degraded_runs_total counter\n"
        f"synthetic_target_runs_total{{{labels}}} {runs}\n"
        f"synthetic_target_failed_runs_total{{{labels}}} {failed}\n"
        f"synthetic_target_degraded_runs_total{{{labels}}} {degraded}\n"
    )


@pytest.mark.slow
def test_degraded_runs_burn_the_fast_enough_budget_and_never_the_availability_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "monitoring.yaml"
    config.write_text(
        "version: 1\nenvironments:\n  local:\n    targets:\n"
        '      api: {url: "http://127.0.0.1:9", degraded_after: 500ms}\n'
        "slos:\n"
        "  - {name: api-availability, objective: 99.9, sli: {kind: probes, target: api}}\n"
        "  - {name: api-fast-enough, objective: 95, sli: {kind: degraded, target: api}}\n",
        encoding="utf-8",
    )
    rules = tmp_path / "slo-rules.yml"
    rules.write_text(render({"groups": [g for s in (AVAILABILITY, FAST_ENOUGH) for g in slo_groups(s)]}))
    with (
        Pushgateway() as gateway,
        httpx.Client(trust_env=False, timeout=5.0) as http,
        Prometheus(scrape_targets={"pushgateway": gateway.url}, rule_files=[rules]) as prometheus,
        PrometheusClient(prometheus.url) as client,
    ):
        # From zero, as the state file starts, so increase() sees every run: 100 runs, 10 of
        # them failed (an outage) and 45 of the 90 that worked degraded.
        http.put(gateway.url + RUN_GROUP, content=_runs(0, 0, 0)).raise_for_status()
        wait_for(lambda: client.query("synthetic_target_runs_total"), "the first scrape")
        http.put(gateway.url + RUN_GROUP, content=_runs(100, 10, 45)).raise_for_status()
        value_of(client, 'slo:sli_error:ratio{slo="api-fast-enough",window="1h"}', 0.5)
        value_of(client, 'slo:sli_error:ratio{slo="api-availability",window="1h"}', 0.1)
        wait_for(
            lambda: client.query('ALERTS{alertname="ErrorBudgetBurn",slo="api-fast-enough",severity="page"}'),
            "the fast-enough page",
        )
        assert budget_main(["--config", str(config), "--prometheus", prometheus.url, "--json"]) == 0
    rows = {row["slo"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["api-fast-enough"]["sli"] == pytest.approx(0.5), "45 degraded of the 90 runs that worked"
    assert rows["api-availability"]["sli"] == pytest.approx(0.9), "the 45 degraded runs are good events"
