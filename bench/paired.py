"""Paired, alternating measurement of the project against its anchor, and one table row per metric.

Each round runs both sides back to back, in alternating order, after a warm-up round that is
not counted, so drift on a shared machine hits both. Reported per side: the median and the
spread (min-max) of wall time, CPU time and peak memory; and the paired ratio, the median of
each round's project / anchor (the figure to judge: it cancels what the machine did meanwhile).
Rows are Markdown table rows so `bench/run.py` can print every benchmark as one table.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

HEADER = (
    "| benchmark | metric | project median [min-max] | anchor median [min-max] | paired ratio |\n"
    "| --- | --- | --- | --- | --- |"
)


@dataclass(frozen=True)
class Sample:
    wall: float  # seconds
    cpu: float  # seconds, user + system
    peak_mb: float  # resident set, MiB


def run_process(command: Sequence[str], cwd: Path, env: dict[str, str], log: Path) -> tuple[Sample, int]:
    """One whole process: its wall time, its own CPU and peak RSS (os.wait4), its exit code."""
    with log.open("wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return Sample(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024), process.returncode


def in_process(work: Callable[[], object]) -> Sample:
    """`work` run in this process; peak memory is this process's (a high-water mark)."""
    cpu, started = time.process_time(), time.perf_counter()
    work()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return Sample(wall, cpu, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def alternate(
    project: Callable[[], Sample], anchor: Callable[[], Sample], rounds: int
) -> tuple[list[Sample], list[Sample]]:
    project(), anchor()  # warm-up: caches, imports, the target's first connections
    ours: list[Sample] = []
    theirs: list[Sample] = []
    for i in range(rounds):
        if i % 2:
            theirs.append(anchor())
            ours.append(project())
        else:
            ours.append(project())
            theirs.append(anchor())
    return ours, theirs


def _number(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"  # never 1.12e+03


def _spread(values: list[float], unit: str, scale: float = 1.0) -> str:
    shown = [v * scale for v in values]
    return f"{_number(statistics.median(shown))} {unit} [{_number(min(shown))}-{_number(max(shown))}]"


def rows(
    name: str,
    ours: list[Sample],
    theirs: list[Sample],
    per: int = 1,
    per_what: str = "",
    cpu: tuple[str, str, float] = ("CPU", "s", 1.0),
) -> list[str]:
    """Table rows for wall, CPU (also per unit of work when `per` > 1) and peak memory;
    `cpu` is the CPU row's (label, unit, scale from seconds)."""
    metrics: list[tuple[str, Callable[[Sample], float], str, float]] = [
        ("wall", lambda s: s.wall, "s", 1.0),
        (cpu[0], lambda s: s.cpu, cpu[1], cpu[2]),
    ]
    if per > 1:
        metrics.append((f"CPU per {per_what}", lambda s: s.cpu / per, "ms", 1000.0))
    metrics.append(("peak RSS", lambda s: s.peak_mb, "MiB", 1.0))
    out = []
    for metric, value, unit, scale in metrics:
        a = [value(s) for s in ours]
        b = [value(s) for s in theirs]
        ratios = [x / y for x, y in zip(a, b, strict=True) if y > 0]
        ratio = f"{statistics.median(ratios):.2f}" if ratios else "n/a"
        out.append(f"| {name} | {metric} | {_spread(a, unit, scale)} | {_spread(b, unit, scale)} | {ratio} |")
    return out
