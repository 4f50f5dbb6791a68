"""The deployment probes' alerts, evaluated by Debian's `promtool test rules`: each fires after
its `for` while its probe fails, names the probe, and ignores the failure of a probe that is
not its business (a failing retention check is not a stale backup)."""

from __future__ import annotations

from pathlib import Path

import yaml

from slo.objectives.rules.generate import render
from slo.objectives.rules.promtool import run_tests
from slo.objectives.rules.thresholds import deployment_group

JOB = "synthetic-probes"
LABELS = {"job": JOB, "environment": "production", "instance": "runner-1", "target": "", "slo": ""}
#: Per alert: the probe it is about, and a neighbour that fails too but must not fire it.
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


def _series(probe: str) -> str:
    labels = {**LABELS, "probe": f"probes/{probe}"}
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
            {"series": _series(failing), "values": "0x60"},
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
