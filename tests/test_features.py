"""The feature registry (`slo.objectives.rules.features`) is the one place a feature plugs in: its
config section exists, its alerts and panels reach `slo rules` and `slo dashboard` from there
alone, and dashboard queries select probes by labels, never by a file or test name."""

from __future__ import annotations

import json
from typing import Any

import pytest

from slo.config import Config
from slo.config.objectives import Budgets
from slo.objectives.dashboard import build_dashboard
from slo.objectives.rules import features
from slo.objectives.rules.generate import render, rule_file


def test_each_feature_names_a_section_of_the_config() -> None:
    for feature in features.FEATURES:
        model: Any = Config
        for key in feature.section.split("."):
            assert key in model.model_fields, f"{feature.name}: no config key {feature.section}"
            annotation = model.model_fields[key].annotation
            # `backups: BackupsSettings | None`: the section's model is the non-None member.
            model = next((a for a in getattr(annotation, "__args__", ()) if a is not type(None)), annotation)


def test_names_are_unique() -> None:
    assert len({f.name for f in features.FEATURES}) == len(features.FEATURES)
    assert len(set(features.alert_names())) == len(features.alert_names())


def test_a_registered_feature_reaches_rules_dashboard_and_markers(monkeypatch: pytest.MonkeyPatch) -> None:
    """One entry, nothing else edited: the alert is generated, selects its probes by label, the
    panel is drawn in the feature's row and a probe marker may name the alert."""
    alert = features.ProbeAlert(
        "QueueBacklogHigh", "10m", "ticket", "Backlog", "The queue grows", "Drain it."
    )
    queue = features.Feature(
        "queue",
        "probes",
        (alert,),
        row="Queue",
        panels=(features.probe_status_panel("Queue", (alert,)),),
    )
    monkeypatch.setattr(features, "FEATURES", (*features.FEATURES, queue))

    rules = [r for g in rule_file([], Budgets(), "synthetic-probes")["groups"] for r in g["rules"]]
    [rule] = [r for r in rules if r.get("alert") == "QueueBacklogHigh"]
    assert 'alert="QueueBacklogHigh"' in rule["expr"]
    assert rule["for"] == "10m"
    assert rule["labels"] == {"severity": "ticket"}

    model = build_dashboard([])
    rows = [p["title"] for p in model["panels"] if p["type"] == "row"]
    assert rows[-2] == "Queue"  # before the SLO row, after the shipped feature rows
    [panel] = [p for p in model["panels"] if p["type"] != "row" and p["title"] == "Queue"]
    assert 'alert=~"QueueBacklogHigh"' in panel["targets"][0]["expr"]

    from slo.markers import alert_problem

    assert alert_problem("QueueBacklogHigh") is None
    assert alert_problem("QueueBacklogHi") is not None


def test_no_rule_or_panel_names_a_test_file() -> None:
    assert ".py" not in render(rule_file([], Budgets(), "synthetic-probes"))
    assert ".py" not in json.dumps(build_dashboard([]))


def test_the_shipped_feature_panels_select_probes_by_alert_label() -> None:
    by_title = {p["title"]: p for p in build_dashboard([])["panels"] if p["type"] != "row"}
    assert 'alert=~"BackupTooOld|BackupUnusable"' in by_title["Backups"]["targets"][0]["expr"]
    assert 'alert=~"UpstreamDown"' in by_title["Load balancer"]["targets"][0]["expr"]
