"""The baseline of a load run: what a later run is compared with, kept only from a run that passed.

Every `summary.json` carries its run's ``evidence``: the exact histograms and counts of each
endpoint, the environment, a hash of the load plan, the suite's version and when it ran.
``slo load --save-baseline PATH`` writes that evidence, with the verdict, to a file of its own,
and only when the run passed. ``--baseline PATH`` (and ``slo gate --baseline``) reads either
that file or a passing run's summary.

Anything that makes the comparison meaningless fails closed: each problem is one line, and the
comparison is ``inconclusive`` for that reason (see :mod:`slo.loadgate.comparison` for the
statistics).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from slo.config.load import LoadSettings
from slo.conventions import MAX_ARTIFACT_BYTES
from slo.loadgate import comparison
from slo.loadgate.comparison import Comparison
from slo.loadgate.samples import EndpointRecord, RunResults
from slo.loadgate.verdict import TOTAL

__all__ = [
    "EVIDENCE_FORMAT",
    "VERDICT_CASE",
    "BaselineError",
    "compare_with",
    "config_hash",
    "evidence",
    "planned_comparisons",
    "save_baseline",
]

#: The test case (and gate row) that holds the comparison's own verdict.
VERDICT_CASE = "baseline verdict"

#: Bumped when the evidence changes incompatibly: an old baseline is then inconclusive.
EVIDENCE_FORMAT = 1
#: The load plan's settings that shape the traffic: a baseline with other values measured
#: another load. The duration is left out (a longer run draws more samples of the same
#: distribution), and so are thresholds, confidence and the noise floor (they judge, not load).
_PLAN = ("users", "spawn_rate", "warmup", "scenarios", "think_time_min", "think_time_max", "stream_timeout")
_DISTRIBUTION = "slo-probes"
#: The row of a comparison that could not start (no baseline, another environment...).
_EVIDENCE_ENDPOINT, _EVIDENCE_MEASURE = "baseline", "evidence"


class BaselineError(Exception):
    """The baseline cannot be saved (one line: what and where)."""


def config_hash(settings: LoadSettings) -> str:
    """A short hash of the load plan (:data:`_PLAN`): equal plans, equal hashes."""
    plan = {name: getattr(settings, name) for name in _PLAN}
    text = json.dumps(plan, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _version() -> str:
    try:
        return metadata.version(_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"


def evidence(results: RunResults, environment: str, settings: LoadSettings) -> dict[str, Any]:
    """What a later comparison needs of this run: the ``evidence`` key of its summary."""
    return {
        "format": EVIDENCE_FORMAT,
        "environment": environment,
        "config_hash": config_hash(settings),
        "version": _version(),
        "started": datetime.fromtimestamp(results.started, UTC).isoformat(timespec="seconds"),
        "endpoints": [record.to_json() for record in results.endpoints.values()],
    }


def save_baseline(path: Path, summary: Mapping[str, Any]) -> None:
    """Keep a passing run's evidence as the baseline; a run that did not pass is refused."""
    if summary.get("verdict") != "pass":
        raise BaselineError(
            f"{path}: not saved as the baseline: the run's verdict is {summary.get('verdict')} "
            "(only a run that passed becomes the baseline)"
        )
    document = {
        "kind": "slo-load-baseline",
        "verdict": "pass",
        "saved": datetime.now(UTC).isoformat(timespec="seconds"),
        "evidence": summary["evidence"],
    }
    partial = path.with_name(path.name + ".partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(json.dumps(document) + "\n", encoding="utf-8")
        partial.replace(path)
    except OSError as exc:
        raise BaselineError(f"{path}: cannot save the baseline: {exc.strerror}") from None


@dataclass(frozen=True)
class _Evidence:
    environment: str
    config_hash: str
    version: str
    started: str
    endpoints: dict[str, EndpointRecord]


def _read_document(path: Path) -> Any:
    try:
        if path.stat().st_size > MAX_ARTIFACT_BYTES:
            raise _Unusable(f"the baseline {path}: over {MAX_ARTIFACT_BYTES // 1048576} MiB, not a baseline")
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _Unusable(f"the baseline {path}: file not found (no run has passed yet?)") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _Unusable(f"the baseline {path}: not JSON: {str(exc)[:120]}") from None


class _Unusable(Exception):
    """Why a baseline (or this run's evidence) cannot be compared with."""


def _decode(document: Any, what: str, must_pass: bool) -> _Evidence:
    if not isinstance(document, dict):
        raise _Unusable(f"{what} is not a load summary or baseline")
    if must_pass and document.get("verdict") != "pass":
        raise _Unusable(
            f"{what} is of a run whose verdict was {document.get('verdict')}: "
            "only a passing run is a baseline"
        )
    data = document.get("evidence")
    if not isinstance(data, dict) or not data.get("endpoints"):
        raise _Unusable(f"{what} has no histograms (a summary from before baselines, or cut down?)")
    if data.get("format") != EVIDENCE_FORMAT:
        raise _Unusable(f"{what} has evidence of format {data.get('format')}, not {EVIDENCE_FORMAT}")
    try:
        records = [EndpointRecord.from_json(item) for item in data["endpoints"]]
        endpoints = {record.key: record for record in records}
        return _Evidence(
            environment=str(data["environment"]),
            config_hash=str(data["config_hash"]),
            version=str(data["version"]),
            started=str(data["started"]),
            endpoints=endpoints,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _Unusable(f"{what} has unreadable histograms ({type(exc).__name__}: {str(exc)[:80]})") from None


def planned_comparisons(baseline_path: Path) -> list[str]:
    """The comparisons a run against this baseline will make, known before it runs (the
    pytest wrapper makes each a test case), then :data:`VERDICT_CASE`, which also catches what
    only the run can tell (an endpoint new in this run, another environment)."""
    try:
        baseline = _decode(_read_document(baseline_path), "the baseline", must_pass=True)
    except _Unusable:
        names = [comparison.comparison_name(_EVIDENCE_ENDPOINT, _EVIDENCE_MEASURE)]
    else:
        endpoints = _with_total(baseline.endpoints)
        names = [
            comparison.comparison_name(name, measure)
            for name in sorted(endpoints)
            for measure in comparison.planned_measures(endpoints[name])
        ]
    return [*names, VERDICT_CASE]


def _mismatch(current: _Evidence, baseline: _Evidence) -> str:
    if baseline.environment != current.environment:
        return (
            f"the baseline is from environment {baseline.environment!r}, this run from "
            f"{current.environment!r}"
        )
    if baseline.config_hash != current.config_hash:
        return (
            f"the baseline ran another load plan (config hash {baseline.config_hash}, this run "
            f"{current.config_hash}): users, spawn rate, warm-up, scenarios or think time changed"
        )
    return ""


def _with_total(endpoints: Mapping[str, EndpointRecord]) -> dict[str, EndpointRecord]:
    total = EndpointRecord(method="", name=TOTAL)
    for record in endpoints.values():
        total.merge(record)
    return {**endpoints, TOTAL: total}


def _row(item: Comparison) -> dict[str, Any]:
    change = item.change
    return {
        "name": item.name,
        "endpoint": item.endpoint,
        "measure": item.measure,
        "unit": item.unit,
        "kind": item.kind,
        "baseline": item.baseline,
        "current": item.current,
        "change": None if change is None else change.estimate,
        "lower": None if change is None else change.lower,
        "upper": None if change is None else change.upper,
        "verdict": item.verdict,
        "reason": item.reason,
    }


def compare_with(
    summary: Mapping[str, Any], baseline_path: Path, settings: LoadSettings, allow_inconclusive: bool
) -> dict[str, Any]:
    """This run's summary against the baseline file: the ``baseline`` key of the summary."""
    noise, confidence = settings.baseline.noise, settings.baseline.confidence
    block: dict[str, Any] = {
        "path": str(baseline_path),
        "noise": noise,
        "confidence": confidence,
        "allow_inconclusive": allow_inconclusive,
        "environment": None,
        "config_hash": None,
        "version": None,
        "started": None,
    }
    try:
        current = _decode(summary, "this run", must_pass=False)
        baseline = _decode(_read_document(baseline_path), "the baseline", must_pass=True)
    except _Unusable as exc:
        rows = [comparison.inconclusive(_EVIDENCE_ENDPOINT, _EVIDENCE_MEASURE, str(exc))]
    else:
        block.update(
            environment=baseline.environment,
            config_hash=baseline.config_hash,
            version=baseline.version,
            started=baseline.started,
        )
        problem = _mismatch(current, baseline)
        if problem:
            rows = [comparison.inconclusive(_EVIDENCE_ENDPOINT, _EVIDENCE_MEASURE, problem)]
        else:
            minimums = {name: limits.min_requests for name, limits in settings.endpoints.items()}
            rows = comparison.compare(
                _with_total(current.endpoints),
                _with_total(baseline.endpoints),
                settings.baseline,
                minimums,
                settings.total.min_requests,
            )
    verdict = comparison.overall(rows, allow_inconclusive)
    block["verdict"] = verdict
    block["reason"] = _reason(rows, verdict)
    block["comparisons"] = [_row(item) for item in rows]
    return block


def _reason(rows: list[Comparison], verdict: str) -> str:
    counts = {change: sum(row.verdict == change for row in rows) for change in comparison.CHANGES}
    tally = ", ".join(f"{count} {change}" for change, count in counts.items() if count)
    decisive = {"fail": "regressed", "inconclusive": "inconclusive"}.get(verdict)
    first = next((row for row in rows if row.verdict == decisive), None)
    return f"{tally}; first {decisive}: {first.name}: {first.reason}" if first else tally
