"""What a run left in ``reports/``, read for the page: each file may be missing, too large or
not what it claims, and each of those is a line on the page, never a traceback.

``reports/probes.json`` (`slo.report.runfile`), ``reports/gate.json`` (`slo gate`),
``reports/load/summary.json`` and the Locust master's ``reports/load/results.json``, whose
HdrHistograms give the exact percentile curves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slo import redact
from slo.conventions import GATE_VERDICT, LOAD_REPORTS, MAX_ARTIFACT_BYTES, PROBE_RESULTS
from slo.loadgate.page import read_load_results
from slo.loadgate.samples import RunResults

__all__ = [
    "GATE_FILE",
    "PROBES_FILE",
    "Inputs",
    "read_inputs",
    "read_json",
]

GATE_FILE = GATE_VERDICT.name
PROBES_FILE = PROBE_RESULTS.name


@dataclass
class Inputs:
    probes: dict[str, Any] | None = None
    gate: dict[str, Any] | None = None
    load: dict[str, Any] | None = None
    load_results: RunResults | None = None
    #: What could not be read, one line each.
    problems: list[str] = field(default_factory=list)


def read_json(path: Path, problems: list[str]) -> dict[str, Any] | None:
    """The JSON object in `path`, or None (a missing file silently, anything else with a line
    in `problems`)."""
    try:
        if path.stat().st_size > MAX_ARTIFACT_BYTES:
            problems.append(f"{path}: over {MAX_ARTIFACT_BYTES // 1048576} MiB, not a file this suite wrote")
            return None
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        problems.append(f"{path}: unreadable: {redact.excerpt(str(exc))}")
        return None
    if not isinstance(document, dict):
        problems.append(f"{path}: not a JSON object")
        return None
    return document


def read_inputs(reports: Path) -> Inputs:
    """Everything `slo report` draws from the run directory `reports`."""
    inputs = Inputs()
    inputs.probes = read_json(reports / PROBES_FILE, inputs.problems)
    inputs.gate = read_json(reports / GATE_FILE, inputs.problems)
    load_dir = reports / LOAD_REPORTS.name
    inputs.load = read_json(load_dir / "summary.json", inputs.problems)
    if inputs.load is not None:
        inputs.load_results = read_load_results(load_dir, inputs.problems)
    return inputs
