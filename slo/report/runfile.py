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
import re
import time
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from slo import redact
from slo.evidence import RecordedValue
from slo.options import RunOptions
from slo.report.results import ProbeResult

__all__ = ["SCHEMA", "git_revision", "run_metadata", "write_run_file"]

SCHEMA = 1
#: CI systems name the commit they build in one of these; outside CI, git is asked.
_REVISION_VARIABLES = ("GITHUB_SHA", "CI_COMMIT_SHA", "GIT_COMMIT", "BUILD_SOURCEVERSION")
_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_SHORT_COMMIT = 12


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
    """The commit the run's code is at: from the CI's variable, else read from the repository's
    files (never by running git, whose config a checkout controls); None when neither knows."""
    for name in _REVISION_VARIABLES:
        if os.environ.get(name):
            return os.environ[name][:40]
    try:
        return _head_commit(directory)
    except (OSError, UnicodeDecodeError):
        return None


def _head_commit(directory: Path) -> str | None:
    for folder in (directory, *directory.parents):
        dot_git = folder / ".git"
        if dot_git.exists():
            break
    else:
        return None
    # A worktree's .git is a file naming its git directory, which names the shared one.
    git_dir = dot_git
    if dot_git.is_file():
        git_dir = (folder / dot_git.read_text(encoding="utf-8").removeprefix("gitdir:").strip()).resolve()
    common = git_dir
    if (git_dir / "commondir").is_file():
        common = (git_dir / (git_dir / "commondir").read_text(encoding="utf-8").strip()).resolve()
    head = (git_dir / "HEAD").read_text(encoding="utf-8").strip()
    if not head.startswith("ref:"):
        return _commit(head)
    ref = head.removeprefix("ref:").strip()
    for base in (git_dir, common):
        if (base / ref).is_file():
            return _commit((base / ref).read_text(encoding="utf-8").strip())
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text(encoding="utf-8").splitlines():
            commit, _, name = line.partition(" ")
            if name == ref:
                return _commit(commit)
    return None


def _commit(text: str) -> str | None:
    """The commit id, shortened, or None for anything that is not one."""
    return text[:_SHORT_COMMIT] if _COMMIT.fullmatch(text) else None


def run_metadata(options: RunOptions, rootdir: Path) -> dict[str, Any]:
    """Who ran the probes, where, with what: the report's run metadata."""
    return {
        "environment": options.env_name,
        "instance": options.push.instance,
        "location": options.push.location,
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
    # Field by field, not dataclasses.asdict: that deep-copies every list and dict first.
    data = {name: getattr(result, name) for name in _PROBE_FIELDS}
    data["values"] = [
        {"name": value.name, "kind": value.kind, "value": value.value, "labels": dict(value.labels)}
        for value in values
    ]
    return data


#: A budget probe's `reading` is its counters for the next run, not evidence.
_PROBE_FIELDS = tuple(field.name for field in dataclasses.fields(ProbeResult) if field.name != "reading")


def write_run_file(
    path: Path,
    results: Iterable[ProbeResult],
    values: Mapping[str, list[RecordedValue]],
    run: Mapping[str, Any],
) -> None:
    """Write the run file at `path` (atomically: a report never reads half of one); raises OSError.

    Streamed, one probe a line: the whole document as one value, scrubbed as a copy and
    dumped as one string, took about 4.5 KB per probe at the end of a run, the peak of a run
    of thousands of checks."""
    failed_first = sorted(results, key=lambda r: (r.outcome not in ("failed", "error"), r.probe))
    head = {"schema": SCHEMA, "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **run}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    with partial.open("w", encoding="utf-8") as output:
        # The head's closing "\n}" waits for the probes.
        output.write(json.dumps(redact.scrub_fields(head), indent=1)[:-2])
        output.write(',\n "probes": [')
        for index, result in enumerate(failed_first):
            probe = redact.scrub_fields(_probe(result, values.get(result.probe, ())))
            output.write(("\n  " if index == 0 else ",\n  ") + json.dumps(probe, separators=(",", ":")))
        output.write("\n ]\n}\n")
    partial.replace(path)
