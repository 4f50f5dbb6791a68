"""The deployment probes' alerts, evaluated by Debian's `promtool test rules`: each fires after
its `for` while a probe marked with its name fails, names the probe, and ignores the failure of
a probe that is not its business (a failing retention check is not a stale backup). A probe is
the alert's business by its ``alert`` label, so a user's probe in a file of its own, marked
like the shipped one, gets the same alert."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
import yaml
from probe_project import PROBES_DIR, make_probe_project
from prometheus_client.parser import text_string_to_metric_families

from devstack.daemons import Pushgateway
from slo import metric_names
from slo.config.objectives import Budgets
from slo.objectives.rules.features import alert_names
from slo.objectives.rules.generate import render, rule_file
from slo.objectives.rules.promtool import run_tests
from slo.objectives.rules.thresholds import deployment_group

pytest_plugins = ["pytester"]

JOB = "synthetic-probes"
LABELS = {"job": JOB, "environment": "production", "instance": "runner-1", "target": "", "slo": ""}
#: Per alert: the probe it is about (marked with the alert's name), and a neighbour that fails
#: too but must not fire it (no mark).
PROBES = {
    "BackupTooOld": (
        "test_backups.py::test_newest_backup_is_fresh",
        "test_backups.py::test_backup_retention",
    ),
    "BackupUnusable": (
        "test_backups.py::test_newest_backup_restores",
        "test_backups.py::test_newest_backup_manifest",
    ),
    "CacheHitRatioLow": (
        "test_cache.py::test_cache_evictions_and_hit_ratio",
        "test_cache.py::test_cache_ping",
    ),
    "UpstreamDown": (
        "test_load_balancer.py::test_upstream_health[api-2]",
        "test_load_balancer.py::test_tls_versions",
    ),
    "CertificateExpiringSoon": (
        "test_tls.py::test_certificate_expiry[api]",
        "test_tls.py::test_certificate_trusted[api]",
    ),
    "ErrorLogRateHigh": ("test_logs.py::test_error_count[files]", "test_logs.py::test_slow_requests[files]"),
}


def _series(probe: str, alert: str = "") -> str:
    labels = {**LABELS, "probe": f"probes/{probe}", **({"alert": alert} if alert else {})}
    return "synthetic_probe_success{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def _minutes(wait: str) -> int:
    assert wait.endswith("m")
    return int(wait[:-1])


def test_each_alert_fires_for_its_failing_probe_only(tmp_path: Path) -> None:
    group = deployment_group(JOB)
    (tmp_path / "rules.yml").write_text(render({"groups": [group]}), encoding="utf-8")
    input_series, cases = [], []
    for rule in group["rules"]:
        failing, unrelated = PROBES[rule["alert"]]
        input_series += [
            {"series": _series(failing, rule["alert"]), "values": "0x60"},
            {"series": _series(unrelated), "values": "0x60"},
        ]
        wait = _minutes(rule["for"])
        labels = {**LABELS, "probe": f"probes/{failing}", "severity": rule["labels"]["severity"]}
        del labels["target"], labels["slo"], labels["job"]  # aggregated away by the alert's `min by`
        description = (
            rule["annotations"]["description"]
            .replace("{{ $labels.probe }}", labels["probe"])
            .replace("{{ $labels.instance }}", labels["instance"])
            .replace("{{ $labels.environment }}", labels["environment"])
        )
        annotations = {**rule["annotations"], "description": description}
        cases += [
            {"eval_time": f"{wait - 1}m", "alertname": rule["alert"], "exp_alerts": []},
            {
                "eval_time": f"{wait + 1}m",
                "alertname": rule["alert"],
                "exp_alerts": [{"exp_labels": labels, "exp_annotations": annotations}],
            },
        ]
    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": input_series, "alert_rule_test": cases}],
    }
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests, sort_keys=False), encoding="utf-8")
    result = run_tests(tmp_path / "tests.yml")
    assert result.ok, result.output
    assert set(PROBES) == {rule["alert"] for rule in group["rules"]}


USER_PROBE = """\
import pytest


@pytest.mark.probe(alert="BackupTooOld")
def test_nightly_dump_is_recent():
    assert False, "the newest nightly dump is 3 days old"


def test_dump_bucket_is_versioned():
    assert False, "versioning is off"
"""
SHIPPED = "probes/test_backups.py::test_newest_backup_is_fresh"
USER = "probes/test_our_dumps.py::test_nightly_dump_is_recent"
UNMARKED = "probes/test_our_dumps.py::test_dump_bucket_is_versioned"


def _pushed_success(text: str) -> dict[str, dict[str, str]]:
    """The pushed ``synthetic_probe_success`` series by probe, with every label Prometheus
    would scrape from the Pushgateway (honor_labels keeps them)."""
    series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == metric_names.PROBE_SUCCESS:
                series[sample.labels["probe"]] = dict(sample.labels)
    return series


@pytest.mark.slow
def test_a_probe_in_a_new_file_marked_like_the_shipped_one_gets_the_same_alert(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """The shipped freshness probe and a user's own probe in a new file, both marked
    ``alert="BackupTooOld"`` and both failing, are pushed to a real Pushgateway; the generated
    rules, fed exactly the series Prometheus would scrape, fire BackupTooOld for each, and not
    for an unmarked probe of the same file that fails too."""
    backups = pytester.path / "backups"
    backups.mkdir()  # empty: the shipped probe finds no fresh backup
    with Pushgateway() as gateway:
        make_probe_project(
            pytester,
            None,
            backups={"directory": str(backups)},
            pushgateway={"url": gateway.url, "state_file": str(pytester.path / "state.json")},
        )
        (pytester.path / "probes" / "test_our_dumps.py").write_text(USER_PROBE, encoding="utf-8")
        result = pytester.runpytest_subprocess(SHIPPED, "probes/test_our_dumps.py", timeout=120)
        pushed = httpx.get(f"{gateway.url}/metrics", timeout=10, trust_env=False).text
    result.assert_outcomes(failed=3)
    success = _pushed_success(pushed)
    assert success[SHIPPED]["alert"] == success[USER]["alert"] == "BackupTooOld"
    assert "alert" not in success[UNMARKED]  # fails too, but is not the alert's business

    rules = rule_file([], Budgets(), JOB)
    text = render(rules)
    assert ".py" not in text  # no rule names a test file
    (tmp_path / "rules.yml").write_text(text, encoding="utf-8")
    [alert] = [r for g in rules["groups"] for r in g["rules"] if r.get("alert") == "BackupTooOld"]
    wait = _minutes(alert["for"])
    expected = []
    for probe in (SHIPPED, USER):
        labels = success[probe]
        kept = {name: labels[name] for name in ("environment", "instance", "probe")}
        description = (
            alert["annotations"]["description"]
            .replace("{{ $labels.probe }}", labels["probe"])
            .replace("{{ $labels.instance }}", labels["instance"])
            .replace("{{ $labels.environment }}", labels["environment"])
        )
        expected.append(
            {
                "exp_labels": {**kept, "severity": alert["labels"]["severity"]},
                "exp_annotations": {**alert["annotations"], "description": description},
            }
        )
    input_series = [
        {
            "series": metric_names.PROBE_SUCCESS
            + "{"
            + ",".join(f'{k}="{v}"' for k, v in labels.items())
            + "}",
            "values": "0x60",
        }
        for labels in success.values()
    ]
    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": input_series,
                "alert_rule_test": [
                    {"eval_time": f"{wait - 1}m", "alertname": "BackupTooOld", "exp_alerts": []},
                    {"eval_time": f"{wait + 1}m", "alertname": "BackupTooOld", "exp_alerts": expected},
                ],
            }
        ],
    }
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests, sort_keys=False), encoding="utf-8")
    outcome = run_tests(tmp_path / "tests.yml")
    assert outcome.ok, outcome.output


def test_every_registered_alert_is_fed_by_a_shipped_probe() -> None:
    """A registered alert no shipped probe names would never fire on the shipped suite."""
    named = set()
    for path in PROBES_DIR.glob("test_*.py"):
        named |= set(re.findall(r'alert="(\w+)"', path.read_text(encoding="utf-8")))
    assert named == set(alert_names())


def test_an_alert_no_feature_registers_stops_the_run(pytester: pytest.Pytester) -> None:
    make_probe_project(pytester, None)
    (pytester.path / "probes" / "test_typo.py").write_text(
        USER_PROBE.replace("BackupTooOld", "BackupToOld"), encoding="utf-8"
    )
    result = pytester.runpytest_subprocess("--no-push", "probes/test_typo.py", timeout=120)
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        [
            "*test_typo.py::test_nightly_dump_is_recent: @pytest.mark.probe: unknown alert 'BackupToOld' "
            "(did you mean 'BackupTooOld'?*`slo rules` generates no such alert*"
        ]
    )
