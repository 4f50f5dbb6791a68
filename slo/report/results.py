"""One final result per probe, folded from pytest's reports.

Runs where every report arrives: the single process, or the xdist controller (workers forward
each `pytest_runtest_logreport`). The evidence a probe gathered in its worker travels in
`report.user_properties` under :data:`EVIDENCE_PROPERTY`, because that is what xdist forwards.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

from slo.conventions import EVIDENCE_PROPERTY
from slo.probe.failures import FAILURE_REASONS

__all__ = ["EVIDENCE_PROPERTY", "Outcome", "ProbeResult", "ResultCollector"]

Outcome = Literal["passed", "failed", "skipped", "error"]


@dataclass
class ProbeResult:
    probe: str
    outcome: Outcome = "passed"
    target: str = ""
    slo: str = ""
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

    @property
    def counted(self) -> bool:
        """Skipped probes are not runs: they neither succeed nor fail."""
        return self.outcome != "skipped"

    @property
    def succeeded(self) -> bool:
        return self.outcome == "passed"


def _evidence(report: pytest.TestReport) -> dict[str, Any]:
    for name, value in report.user_properties:
        if name == EVIDENCE_PROPERTY:
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
        evidence = _evidence(report)
        if evidence:
            result.target = evidence.get("target", result.target)
            result.slo = evidence.get("slo", result.slo)
            result.latencies = list(evidence.get("latencies", result.latencies))
            result.phases = dict(evidence.get("phases", result.phases))
        if str(report.outcome) == "rerun":
            # pytest-rerunfailures: this attempt failed and another follows; only the last counts.
            result.retries += 1
            result.outcome, result.reason, result.message = "passed", None, ""
            return
        if report.when == "call":
            result.duration = evidence.get("duration", report.duration)
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
