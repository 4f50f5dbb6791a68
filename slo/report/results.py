"""One final result per probe, folded from pytest's reports.

Runs where every report arrives: the single process, or the xdist controller (workers forward
each `pytest_runtest_logreport`). The evidence a probe gathered in its worker travels in
`report.user_properties` under :data:`EVIDENCE_PROPERTY`, because that is what xdist forwards.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

from slo.conventions import EVIDENCE_PROPERTY
from slo.exchange.failures import FAILURE_REASONS

__all__ = [
    "EVIDENCE_PROPERTY",
    "NOTE_PROPERTY",
    "PROBE_KINDS",
    "READING_PROPERTY",
    "Outcome",
    "ProbeResult",
    "ResultCollector",
    "kind_problem",
    "probe_kind",
]

#: A budget probe's counter readings (name -> value), kept for its next run to judge the interval.
READING_PROPERTY = "slo_reading"
#: One line a passing probe reports about what it measured (a certificate's days left).
NOTE_PROPERTY = "slo_note"

Outcome = Literal["passed", "failed", "skipped", "error"]

#: What a probe measures (``@pytest.mark.probe(kind=...)``). Only `availability` probes make a
#: run of their target bad; `budget` probes judge a service's own counters (5xx ratio, tokens,
#: cost) and `resource` probes a host's disk and memory, which have their own alerts.
PROBE_KINDS = ("availability", "budget", "resource", "warning")


def probe_kind(item: pytest.Item) -> str:
    """The `kind` a probe declared on its ``probe`` markers; `availability` when it declares none
    (the plugin rejects any other value at collection: see :func:`kind_problem`)."""
    from slo.plugin import marker_setting

    kind = marker_setting(item, "kind")
    return kind if kind in PROBE_KINDS else PROBE_KINDS[0]


def kind_problem(kwargs: Mapping[str, Any]) -> str | None:
    """What is wrong with a ``probe`` marker's `kind`, or None."""
    kind = kwargs.get("kind")
    if kind is None or kind in PROBE_KINDS:
        return None
    return f"kind={kind!r} is not one of {', '.join(PROBE_KINDS)}"


@dataclass
class ProbeResult:
    probe: str
    outcome: Outcome = "passed"
    target: str = ""
    slo: str = ""
    kind: str = PROBE_KINDS[0]
    #: The alert its marker feeds (``@pytest.mark.probe(alert=...)``), or "".
    alert: str = ""
    #: Wall time of the test's call phase.
    duration: float = 0.0
    #: Every request the probe made, in seconds.
    latencies: list[float] = field(default_factory=list)
    #: Phases of the last request.
    phases: dict[str, float] = field(default_factory=dict)
    reason: str | None = None
    message: str = ""
    #: Attempts that failed and were rerun (pytest-rerunfailures).
    retries: int = 0
    #: A budget probe's counter readings, for its next run (see :data:`READING_PROPERTY`).
    reading: dict[str, float] = field(default_factory=dict)
    #: What a passing probe said it measured (see :data:`NOTE_PROPERTY`).
    note: str = ""

    @property
    def counted(self) -> bool:
        """Skipped probes are not runs: they neither succeed nor fail."""
        return self.outcome != "skipped"

    @property
    def succeeded(self) -> bool:
        return self.outcome == "passed"


def _property(report: pytest.TestReport, wanted: str) -> dict[str, Any]:
    for name, value in report.user_properties:
        if name == wanted:
            loaded: dict[str, Any] = json.loads(str(value))
            return loaded
    return {}


def _failure_message(report: pytest.TestReport) -> str:
    text = report.longreprtext.strip()
    lines = [line for line in text.splitlines() if line.startswith("E ")]
    line = lines[0][1:].strip() if lines else (text.splitlines()[-1] if text else "")
    return line[:300]


class ResultCollector:
    """Folds setup/call/teardown reports (and reruns) into one result per probe."""

    def __init__(self) -> None:
        self.results: dict[str, ProbeResult] = {}

    def add(self, report: pytest.TestReport) -> None:
        result = self.results.setdefault(report.nodeid, ProbeResult(report.nodeid))
        evidence = _property(report, EVIDENCE_PROPERTY)
        if evidence:
            result.target = evidence.get("target", result.target)
            result.slo = evidence.get("slo", result.slo)
            result.kind = evidence.get("kind", result.kind)
            result.alert = evidence.get("alert", result.alert)
            result.latencies = list(evidence.get("latencies", result.latencies))
            result.phases = dict(evidence.get("phases", result.phases))
        if str(report.outcome) == "rerun":
            # pytest-rerunfailures: this attempt failed and another follows; only the last counts.
            result.retries += 1
            result.outcome, result.reason, result.message = "passed", None, ""
            return
        if report.when == "call":
            result.duration = evidence.get("duration", report.duration)
            result.reading = {
                str(name): float(value) for name, value in _property(report, READING_PROPERTY).items()
            }
            result.note = str(_property(report, NOTE_PROPERTY).get("note", ""))[:300]
        if report.skipped and result.outcome == "passed":
            result.outcome = "skipped"
        elif report.failed:
            in_call = report.when == "call" and result.outcome != "error"
            result.outcome = "failed" if in_call else "error"
            result.message = result.message or _failure_message(report)
            reason = evidence.get("reason")
            result.reason = reason if reason in FAILURE_REASONS else "error"

    def add_collection_error(self, report: pytest.CollectReport) -> None:
        """A probe module that fails to import is a failed run of that module, never silence:
        otherwise a syntax error would look like a healthy runner with fewer probes."""
        message = report.longreprtext.strip().splitlines()
        self.results[report.nodeid] = ProbeResult(
            report.nodeid, outcome="error", reason="error", message=(message[-1] if message else "")[:300]
        )

    def outcome_counts(self) -> dict[Outcome, int]:
        counts: dict[Outcome, int] = {"passed": 0, "failed": 0, "skipped": 0, "error": 0}
        for result in self.results.values():
            counts[result.outcome] += 1
        return counts
