"""What the installed plugin costs a project that is not a probe project.

The `slo` plugin is registered for every pytest run in the environment. On an unrelated
one-test project, this runs `pytest` with the plugin and with ``-p no:slo``, alternating the
two after a warm-up, and reports the medians, their spread and the median of the paired
differences of wall and CPU time (goal: within 50 ms). Whole processes, as a user or a CI job
would start them. On a shared machine the CPU difference is the steadier of the two.

    python bench/bench_plugin_cost.py [--pairs 21]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_MS = 50.0


def run_once(project: Path, *extra: str) -> tuple[float, float]:
    """Wall and CPU seconds of one `pytest` process on `project`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra],
        cwd=project,
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def describe(values: list[float]) -> str:
    low, _, high = statistics.quantiles(values, n=4)
    return f"median {statistics.median(values) * 1000:6.1f} ms (IQR {low * 1000:.1f}-{high * 1000:.1f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=21)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="slo-bench-") as directory:
        project = Path(directory)
        (project / "test_app.py").write_text("def test_app():\n    assert True\n")
        for _ in range(3):  # warm-up: page cache, bytecode of the dependencies
            run_once(project)
            run_once(project, "-p", "no:slo")
        with_plugin: list[tuple[float, float]] = []
        without: list[tuple[float, float]] = []
        for pair in range(args.pairs):
            # Alternate which goes first, so a drift in machine load hits both alike.
            order = [("with", ()), ("without", ("-p", "no:slo"))]
            for name, extra in order if pair % 2 == 0 else reversed(order):
                (with_plugin if name == "with" else without).append(run_once(project, *extra))
    differences = [w[0] - n[0] for w, n in zip(with_plugin, without, strict=True)]
    cpu_differences = [w[1] - n[1] for w, n in zip(with_plugin, without, strict=True)]
    median_difference = statistics.median(differences) * 1000
    print(f"unrelated one-test project, {args.pairs} alternating pairs of whole pytest processes")
    print(f"  with the slo plugin   wall {describe([w for w, _ in with_plugin])}")
    print(f"  with -p no:slo        wall {describe([w for w, _ in without])}")
    print(
        f"  paired difference     wall median {median_difference:+.1f} ms, "
        f"CPU median {statistics.median(cpu_differences) * 1000:+.1f} ms"
    )
    ratio = statistics.median([w for w, _ in with_plugin]) / statistics.median([w for w, _ in without])
    print(f"  ratio of medians      {ratio:.3f}")
    verdict = "meets" if median_difference <= GOAL_MS else "misses"
    print(f"  {verdict} the goal of at most {GOAL_MS:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
