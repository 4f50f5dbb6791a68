"""``probes.json``: one probe run's results with their evidence and what ran them, for
`slo report` (and anyone scripting over a run).

JUnit XML keeps an outcome and a message per test; this keeps what the controller folded:
target, reason, duration, every request's latency, the last request's phases, the values a
probe recorded (an LLM probe's first-token time and tokens/s), and the run's environment,
versions, config hash and git revision. It is written beside the run's JUnit XML, scrubbed,
atomically; a failure to write it is a warning, never a changed verdict.

    {"schema": 1, "environment": "local", "finished": "2026-...", "probes": [{"probe": "...",
     "outcome": "failed", "reason": "http_status", "message": "...", "phases": {...}}], ...}
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import subprocess
import time
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from slo import redact
from slo.options import RunOptions
from slo.report.results import ProbeResult
from slo.report.values import RecordedValue

__all__ = ["FILE_NAME", "SCHEMA", "run_metadata", "write_run_file"]

SCHEMA = 1
FILE_NAME = "probes.json"
#: CI systems name the commit they build in one of these; outside CI, git is asked.
_REVISION_VARIABLES = ("GITHUB_SHA", "CI_COMMIT_SHA", "GIT_COMMIT", "BUILD_SOURCEVERSION")
_GIT_DEADLINE_SECONDS = 5


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _config_hash(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except OSError:
        return None


def git_revision(directory: Path) -> str | None:
    """The commit the run's code is at: from the CI's variable, else from git; None when
    neither knows (a copied tree, no git installed)."""
    for name in _REVISION_VARIABLES:
        if os.environ.get(name):
            return os.environ[name][:40]
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=_GIT_DEADLINE_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def run_metadata(options: RunOptions, rootdir: Path) -> dict[str, Any]:
    """Who ran the probes, where, with what: the report's run metadata."""
    return {
        "environment": options.env_name,
        "instance": options.push.instance,
        # Set where the runner's settings name a location; the instance stands for it otherwise.
        "location": getattr(options.push, "location", None) or options.push.instance,
        "config": str(options.config_path),
        "config_sha256": _config_hash(options.config_path),
        "git_revision": git_revision(rootdir),
        "versions": {
            "slo-probes": _version("slo-probes"),
            "pytest": _version("pytest"),
            "python": platform.python_version(),
        },
    }


def _probe(result: ProbeResult, values: Iterable[RecordedValue]) -> dict[str, Any]:
    data = dataclasses.asdict(result)
    del data["reading"]  # a budget probe's counters for its next run, not evidence
    data["values"] = [
        {"name": value.name, "kind": value.kind, "value": value.value, "labels": dict(value.labels)}
        for value in values
    ]
    return data


def write_run_file(
    path: Path,
    results: Iterable[ProbeResult],
    values: Mapping[str, list[RecordedValue]],
    run: Mapping[str, Any],
) -> None:
    """Write the run file at `path` (atomically: a report never reads half of one); raises OSError."""
    failed_first = sorted(results, key=lambda r: (r.outcome not in ("failed", "error"), r.probe))
    document = {
        "schema": SCHEMA,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **run,
        "probes": [_probe(result, values.get(result.probe, ())) for result in failed_first],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(redact.scrub_fields(document), indent=1) + "\n", encoding="utf-8")
    partial.replace(path)
