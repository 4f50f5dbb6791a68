"""Running Debian's `promtool` on generated files: the judge of what Prometheus accepts."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from slo.binaries import find_binary

__all__ = ["PromtoolResult", "check_rules", "run_tests"]


@dataclass(frozen=True)
class PromtoolResult:
    ok: bool
    output: str


def _run(arguments: Sequence[str], cwd: Path | None = None) -> PromtoolResult:
    command = [find_binary("promtool"), *arguments]
    completed = subprocess.run(command, capture_output=True, text=True, cwd=cwd, check=False)
    return PromtoolResult(completed.returncode == 0, (completed.stdout + completed.stderr).strip())


def check_rules(*paths: Path) -> PromtoolResult:
    """``promtool check rules`` (syntax, PromQL, duplicate rules)."""
    return _run(["check", "rules", *map(str, paths)])


def run_tests(*paths: Path) -> PromtoolResult:
    """``promtool test rules``, run in the files' directory (their rule_files are relative)."""
    return _run(["test", "rules", *(path.name for path in paths)], cwd=paths[0].parent)
