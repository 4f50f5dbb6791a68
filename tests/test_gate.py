"""`slo gate`: every input fails closed, one table, a JSON verdict, exit 0 only on all pass."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devstack.daemons import free_port
from slo.config import load_config
from slo.objectives.budget import BudgetRow
from slo.objectives.gate import budget_conditions, junit_conditions, load_conditions, main

ROOT = Path(__file__).resolve().parent.parent
CONFIG = load_config(ROOT / "monitoring.yaml", "local")

PASSING_JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="3" failures="0" errors="0" skipped="1">
<testcase classname="probes.test_health" name="test_api" time="0.1"/>
<testcase classname="probes.test_health" name="test_gateway" time="0.1"/>
<testcase classname="probes.test_tls" name="test_cert" time="0"><skipped message="http"/></testcase>
</testsuite></testsuites>
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_summary(
    verdict: str, *thresholds: tuple[str, str], environment: str = "local", started: str | None = None
) -> str:
    return json.dumps(
        {
            "verdict": verdict,
            "environment": environment,
            "started": started or datetime.now(UTC).isoformat(),
            "duration_s": 10.0,
            "thresholds": [
                {
                    "name": name,
                    "verdict": v,
                    "observed": 1.2,
                    "threshold": 2.0,
                    "reason": "" if v == "pass" else "why",
                }
                for name, v in thresholds
            ],
        }
    )


def test_junit_pass_fail_and_nothing_ran(tmp_path: Path) -> None:
    [ok] = junit_conditions(write(tmp_path, "ok.xml", PASSING_JUNIT))
    assert ok.passed
    assert ok.evidence == "3 tests: 0 failed, 0 errors, 1 skipped"
    failing = PASSING_JUNIT.replace('time="0.1"/>', 'time="0.1"><failure message="boom"/></testcase>', 1)
    [bad] = junit_conditions(write(tmp_path, "bad.xml", failing))
    assert not bad.passed
    assert "1 failed" in bad.evidence
    assert "probes.test_health::test_api" in bad.evidence
    [error] = junit_conditions(write(tmp_path, "err.xml", PASSING_JUNIT.replace("<skipped", "<error")))
    assert not error.passed
    assert "1 errors" in error.evidence
    [empty] = junit_conditions(write(tmp_path, "empty.xml", '<testsuite tests="0"></testsuite>'))
    assert not empty.passed
    assert "nothing ran" in empty.evidence
    only_skipped = '<testsuite><testcase name="a"><skipped/></testcase></testsuite>'
    assert not junit_conditions(write(tmp_path, "skip.xml", only_skipped))[0].passed


def test_junit_missing_or_corrupt_fails_closed(tmp_path: Path) -> None:
    [missing] = junit_conditions(tmp_path / "nope.xml")
    assert (missing.passed, missing.evidence) == (False, "file not found")
    [corrupt] = junit_conditions(write(tmp_path, "c.xml", "<testsuite"))
    assert not corrupt.passed
    assert corrupt.evidence.startswith("not a JUnit XML file")
    [html] = junit_conditions(write(tmp_path, "h.xml", "<html></html>"))
    assert html.evidence == "not a JUnit XML file: root element <html>"


def test_load_summary_only_pass_passes(tmp_path: Path) -> None:
    passing = load_conditions(
        write(tmp_path, "p.json", load_summary("pass", ("p95", "pass"), ("error_rate", "pass")))
    )
    assert [c.passed for c in passing] == [True, True, True]
    assert passing[0].evidence == "pass: observed 1.2, threshold 2"
    inconclusive = load_conditions(
        write(tmp_path, "i.json", load_summary("inconclusive", ("samples", "inconclusive")))
    )
    assert [c.passed for c in inconclusive] == [False, False]
    assert inconclusive[-1].evidence == "inconclusive (not enough evidence is not a pass)"
    failing = load_conditions(write(tmp_path, "f.json", load_summary("fail", ("p95", "fail"))))
    assert failing[0].evidence == "fail: observed 1.2, threshold 2 (why)"


@pytest.mark.parametrize("text", ["{", "[]", '{"verdict": 1}', '{"verdict": "pass", "thresholds": "x"}'])
def test_load_summary_corrupt_fails_closed(tmp_path: Path, text: str) -> None:
    [condition] = load_conditions(write(tmp_path, "s.json", text))
    assert not condition.passed
    assert condition.evidence.startswith("not a load summary")


def row(
    slo: str,
    environment: str,
    remaining: float | None,
    note: str = "",
    events: float = 43200,
    coverage: float | None = 1.0,
) -> BudgetRow:
    """A budget row; by default a full 30-day window of one run a minute."""
    sli = None if remaining is None else 1 - (1 - remaining) * 0.001
    return BudgetRow(
        slo, environment, 0.999, "30d", events, 0, sli, remaining, {}, None, note, coverage=coverage
    )


def test_budget_conditions() -> None:
    slos = [CONFIG.slo("api-availability"), CONFIG.slo("api-latency")]
    rows = [
        row("api-availability", "staging", 0.3),
        row("api-availability", "prod", 0.1),
        row("api-latency", "", 0.9),
    ]
    conditions = budget_conditions(rows, slos, 0.25, "staging")
    assert [(c.name, c.passed) for c in conditions] == [("api-availability", True), ("api-latency", True)]
    assert conditions[0].evidence == "30.0% of the 30d budget left (need 25%), SLI 99.930%"
    assert [c.passed for c in budget_conditions(rows, slos, 0.25, "prod")] == [False, True]
    [absent, _] = budget_conditions(rows, slos, 0.25, "qa")
    assert absent.evidence == "no data for environment 'qa'"
    [no_data] = budget_conditions(
        [row("api-latency", "", None, "no events in the window")], slos[1:], 0.25, "x"
    )
    assert (no_data.passed, no_data.evidence) == (False, "no events in the window")


def test_too_little_data_is_insufficient_data_and_fails() -> None:
    slos = [CONFIG.slo("api-availability")]
    # Twenty minutes after a deploy: a healthy budget, on 0.05 % of the window and 20 events.
    [thin] = budget_conditions(
        [row("api-availability", "prod", 1.0, events=20, coverage=0.0005)], slos, 0.25, "prod"
    )
    assert (thin.passed, thin.insufficient_data) == (False, True)
    assert thin.evidence.startswith(
        "insufficient data: data for 0.1% of the 30d window (need 10%); 20 events (need 1000); "
    )
    # Enough of the window but too few events (a 99.9 % SLO needs 1000 for one bad event).
    [few] = budget_conditions([row("api-availability", "prod", 1.0, events=999)], slos, 0.25, "prod")
    assert few.insufficient_data
    assert "999 events (need 1000)" in few.evidence
    # Both thresholds are settable; at zero any data is judged.
    [judged] = budget_conditions(
        [row("api-availability", "prod", 1.0, events=20, coverage=0.0005)], slos, 0.25, "prod", 0.0, 0
    )
    assert (judged.passed, judged.insufficient_data) == (True, False)
    # An exhausted budget on too little data is still insufficient data, not a verdict.
    [spent] = budget_conditions(
        [row("api-availability", "prod", -3.0, events=20, coverage=0.0005)], slos, 0.25, "prod"
    )
    assert spent.insufficient_data
    assert not spent.passed


def test_cli_verdict_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junit = write(tmp_path, "j.xml", PASSING_JUNIT)
    load = write(tmp_path, "s.json", load_summary("pass", ("p95", "pass")))
    output = tmp_path / "out" / "gate.json"
    assert main(["--junit", str(junit), "--load", str(load), "--output", str(output)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["SOURCE", "CONDITION", "RESULT", "EVIDENCE"]
    assert "gate: PASS (3/3 conditions pass)" in out
    verdict = json.loads(output.read_text(encoding="utf-8"))
    assert verdict["verdict"] == "pass"
    assert len(verdict["conditions"]) == 3

    assert main(["--junit", str(tmp_path / "missing.xml"), "--load", str(load), "--output", str(output)]) == 1
    assert "gate: FAIL (2/3 conditions pass)" in capsys.readouterr().out
    assert json.loads(output.read_text(encoding="utf-8"))["verdict"] == "fail"


def test_cli_usage_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PROMETHEUS_URL", raising=False)
    assert main(["--output", str(tmp_path / "g.json")]) == 4
    assert "give at least one of --junit, --load, --min-budget" in capsys.readouterr().err
    assert main(["--min-budget", "0.25"]) == 4
    assert "--min-budget needs --prometheus URL" in capsys.readouterr().err
    assert main(["--min-budget", "25", "--prometheus", "http://127.0.0.1:1"]) == 4
    assert "between 0 and 1" in capsys.readouterr().err
    assert not (tmp_path / "g.json").exists()


def test_cli_unreachable_prometheus_fails_the_gate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    args = ["--config", str(ROOT / "monitoring.yaml"), "--prometheus", url, "--min-budget", "0.25"]
    assert main([*args, "--output", str(tmp_path / "g.json")]) == 1
    assert "budget  prometheus  FAIL" in capsys.readouterr().out


def test_a_load_summary_of_another_environment_is_refused_in_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, "s.json", load_summary("pass", ("p95", "pass"), environment="mine"))
    [condition] = load_conditions(path, "local")
    assert not condition.passed
    assert condition.evidence == f"{path} is a load run of environment mine, not 'local' (--env)"
    assert load_conditions(path, "mine")[-1].passed


def test_inputs_older_than_max_age_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    load = write(tmp_path, "s.json", load_summary("pass", ("p95", "pass"), started=two_days_ago.isoformat()))
    junit = write(
        tmp_path,
        "j.xml",
        PASSING_JUNIT.replace(
            '<testsuite name="pytest"', f'<testsuite timestamp="{two_days_ago.isoformat()}" name="pytest"'
        ),
    )
    output = str(tmp_path / "gate.json")
    assert main(["--junit", str(junit), "--load", str(load), "--output", output]) == 1
    out = capsys.readouterr().out
    assert f"{load} is 2d old, over --max-age 1d: run it again" in out
    assert f"{junit} is 2d old, over --max-age 1d: run it again" in out
    assert main(["--junit", str(junit), "--load", str(load), "--max-age", "3d", "--output", output]) == 0
    capsys.readouterr()
    # A JUnit file without its own time is as old as the file.
    plain = write(tmp_path, "plain.xml", PASSING_JUNIT)
    old = two_days_ago.timestamp()
    os.utime(plain, (old, old))
    [condition] = junit_conditions(plain, max_age=86400)
    assert condition.name == "age"
    assert main(["--junit", str(plain), "--max-age", "soon", "--output", output]) == 4
    assert "slo gate: --max-age: invalid duration 'soon'" in capsys.readouterr().err


def test_a_probe_run_of_another_environment_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    properties = '<properties><property name="slo_environment" value="mine"/></properties>'
    junit = write(tmp_path, "j.xml", PASSING_JUNIT.replace('skipped="1">', f'skipped="1">{properties}', 1))
    [condition] = junit_conditions(junit, "local")
    assert (condition.name, condition.passed) == ("environment", False)
    assert condition.evidence == f"{junit} is a probe run of environment mine, not 'local' (--env)"
    assert junit_conditions(junit, "mine")[0].passed
    # A report that names no environment (not written by a probe run) is judged on its tests.
    assert junit_conditions(write(tmp_path, "plain.xml", PASSING_JUNIT), "local")[0].passed
