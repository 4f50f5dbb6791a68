"""One final result per probe, folded from pytest's reports and their evidence.

Runs where every report arrives: the single process, or the xdist controller (workers forward
each `pytest_runtest_logreport`). What a probe gathered in its worker, with its failure reason
and message, comes decoded with its report (:mod:`slo.evidence`); nothing is read from the
report's text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from slo.evidence import MAX_NOTE, Evidence
from slo.exchange.failures import FAILURE_REASONS
from slo.outcomes import OUTCOMES, PROBE_KINDS, WORKED, Outcome

__all__ = ["ProbeResult", "ResultCollector"]


@dataclass(slots=True)  # kept for every probe to the end of the run: no __dict__ each
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
    #: Counter readings kept for the probe's next run.
    reading: dict[str, float | str] = field(default_factory=dict)
    #: What a passing probe said it measured.
    note: str = ""

    @property
    def counted(self) -> bool:
        """Skipped probes are not runs: they neither succeed nor fail."""
        return self.outcome != "skipped"

    @property
    def succeeded(self) -> bool:
        """It worked: passed, or degraded (slow is not down)."""
        return self.outcome in WORKED

    @property
    def degraded(self) -> bool:
        return self.outcome == "degraded"


class ResultCollector:
    """Folds setup/call/teardown reports (and reruns) into one result per probe."""

    def __init__(self) -> None:
        self.results: dict[str, ProbeResult] = {}

    def add(self, report: pytest.TestReport, evidence: Evidence | None) -> None:
        result = self.results.setdefault(report.nodeid, ProbeResult(report.nodeid))
        if evidence is not None:
            result.target = evidence.target or result.target
            result.slo = evidence.slo or result.slo
            result.kind = evidence.kind
            result.alert = evidence.alert or result.alert
            # Its own: the evidence was decoded for this report only, so nothing is copied.
            result.latencies = evidence.latencies
            result.phases = evidence.phases
        if str(report.outcome) == "rerun":
            # pytest-rerunfailures: this attempt failed and another follows; only the last counts.
            result.retries += 1
            result.outcome, result.reason, result.message = "passed", None, ""
            return
        if report.when == "call":
            found = evidence or Evidence()
            result.duration = report.duration if found.duration is None else found.duration
            result.reading = found.reading
            result.note = found.note
            if report.passed and found.degraded:
                result.outcome, result.message = "degraded", found.degraded
        if report.skipped and result.outcome == "passed":
            result.outcome = "skipped"
        elif report.failed:
            in_call = report.when == "call" and result.outcome != "error"
            if result.degraded:  # a teardown failed after a degraded call: the failure speaks
                result.message = ""
            result.outcome = "failed" if in_call else "error"
            reason = evidence.reason if evidence is not None else None
            result.message = result.message or (evidence.message if evidence is not None else "")
            result.reason = reason if reason in FAILURE_REASONS else "error"

    def add_collection_error(self, report: pytest.CollectReport) -> None:
        """A probe module that fails to import is a failed run of that module, never silence:
        otherwise a syntax error would look like a healthy runner with fewer probes. (No
        probe ran to say why: the last line of pytest's collection error is the message.)"""
        message = report.longreprtext.strip().splitlines()
        self.results[report.nodeid] = ProbeResult(
            report.nodeid,
            outcome="error",
            reason="error",
            message=(message[-1] if message else "")[:MAX_NOTE],
        )

    def outcome_counts(self) -> dict[Outcome, int]:
        # Every outcome, zero or not: a series that vanishes reads as no data.
        counts: dict[Outcome, int] = dict.fromkeys(OUTCOMES, 0)
        for result in self.results.values():
            counts[result.outcome] = counts.get(result.outcome, 0) + 1
        return counts
