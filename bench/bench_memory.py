"""Peak RSS of a probe run against hostile bodies, side by side with a normal run.

Each run is `pytest probes/test_checks.py` in its own process, with N declared checks that
are fetched concurrently from one loopback target (tests/hostile.py): a normal 401 JSON
answer, a 500 MiB body, a gzip body that inflates to 10 GiB, and an endless chunked body.
The peak RSS of the run's process (``wait4``) is printed for each, with the wall time. The
cap is the target's `max_response_bytes` (16 MiB by default), so a hostile run may take at
most about N x 16 MiB more than the normal one, whatever the target sends.

Then the memory one check costs a run (goal: at most 10 KB): the peak RSS of normal runs of
--small and --large checks (medians of --repeat runs each), its difference divided by the
difference in checks. What a run keeps per check (its result, its report, pytest's and the
plugins' per-test bookkeeping) grows with the checks; the HTTP stack and the threads do not.

With --where, where those bytes are: each size is run once more under tracemalloc, a snapshot
is taken when the terminal summary starts (everything the run keeps to its end), and the
difference between the two is printed per source file, in bytes per check.

    python bench/bench_memory.py [--checks 8] [--max-response-bytes 16777216]
                                 [--small 200] [--large 2000] [--repeat 3] [--where]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import tracemalloc
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))

from hostile import HostileServer  # noqa: E402

SCENARIOS = {"normal": "/echo", "oversized": "/oversized", "inflating": "/inflating", "endless": "/endless"}
GOAL_KB_PER_CHECK = 10.0
#: The probe run's own exclusions: pyproject.toml's addopts, as `pytest probes/` in the checkout.
ADDOPTS = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"][
    "addopts"
]
INI = f"[pytest]\naddopts = {' '.join(ADDOPTS)}\n"


def project(directory: Path, url: str, path: str, checks: int, cap: int) -> None:
    (directory / "probes").mkdir()
    shutil.copy(REPO_ROOT / "probes" / "test_checks.py", directory / "probes")
    (directory / "tox.ini").write_text(INI, encoding="utf-8")
    config = {
        "environments": {
            "local": {"targets": {"hostile": {"url": url, "timeout": "20s", "max_response_bytes": cap}}}
        },
        "checks": [
            {"name": f"c{i}", "target": "hostile", "path": path, "status": 401 if path == "/echo" else 200}
            for i in range(checks)
        ],
    }
    (directory / "monitoring.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")


#: A conftest of the --where runs: the snapshot of what the run keeps, when its summary starts.
SNAPSHOT_CONFTEST = """
import os, gc, tracemalloc, pytest

@pytest.hookimpl(tryfirst=True)
def pytest_terminal_summary():
    gc.collect()
    tracemalloc.take_snapshot().dump(os.environ["BENCH_SNAPSHOT"])
"""


def run(url: str, path: str, checks: int, cap: int, snapshot: Path | None = None) -> tuple[float, float, str]:
    """(peak RSS MiB, seconds, last summary line) of one run in its own process; with
    `snapshot`, run under tracemalloc and dump what the run keeps there."""
    with tempfile.TemporaryDirectory() as temporary:
        directory = Path(temporary)
        project(directory, url, path, checks, cap)
        traced: list[str] = []
        if snapshot is not None:
            (directory / "conftest.py").write_text(SNAPSHOT_CONFTEST, encoding="utf-8")
            traced = ["-X", "tracemalloc=1"]
        log = directory / "output.txt"
        started = time.monotonic()
        with log.open("w") as output:
            process = subprocess.Popen(
                [sys.executable, *traced, "-m", "pytest", "-q", "--no-push", "probes/"],
                cwd=directory, stdout=output, stderr=subprocess.STDOUT,
                env={**os.environ, "BENCH_SNAPSHOT": str(snapshot)} if snapshot else None,
            )  # fmt: skip
            # wait4, not wait: it also gives this child's own peak RSS.
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.monotonic() - started
        lines = [line for line in log.read_text().splitlines() if line.strip()]
    return usage.ru_maxrss / 1024, elapsed, (lines[-1] if lines else "")


def per_check(url: str, small: int, large: int, repeat: int, cap: int) -> None:
    """The peak RSS a run grows by per check, between runs of `small` and `large` checks."""
    peaks = {
        size: [run(url, SCENARIOS["normal"], size, cap)[0] for _ in range(repeat)] for size in (small, large)
    }
    low, high = statistics.median(peaks[small]), statistics.median(peaks[large])
    kb = (high - low) * 1024 / (large - small)
    print(
        f"memory per check: {small} checks {low:.1f} MiB, {large} checks {high:.1f} MiB (medians of {repeat})"
    )
    verdict = "meets" if kb <= GOAL_KB_PER_CHECK else "misses"
    print(f"  {kb:.1f} KB per check: {verdict} the goal of at most {GOAL_KB_PER_CHECK:g} KB")


def where(url: str, small: int, large: int, cap: int, top: int = 20) -> None:
    """What a run keeps per check, by source file: tracemalloc snapshots of `small` and
    `large` checks, diffed."""
    with tempfile.TemporaryDirectory() as temporary:
        snapshots = {size: Path(temporary, f"{size}.snapshot") for size in (small, large)}
        for size, snapshot in snapshots.items():
            run(url, SCENARIOS["normal"], size, cap, snapshot)
        low, high = (tracemalloc.Snapshot.load(str(snapshots[size])) for size in (small, large))
    stats = high.compare_to(low, "filename")
    checks = large - small
    total = sum(stat.size_diff for stat in stats)
    print(f"kept to the end of the run, by file (tracemalloc): {total / checks:.0f} B per check")
    for stat in stats[:top]:
        name = stat.traceback[0].filename
        for prefix in (
            str(REPO_ROOT) + "/",
            "site-packages/",
            f"python{sys.version_info[0]}.{sys.version_info[1]}/",
        ):
            name = name.rpartition(prefix)[2] if prefix in name else name
        print(f"  {stat.size_diff / checks:6.0f} B {stat.count_diff / checks:5.1f} objects  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=8)
    parser.add_argument("--max-response-bytes", type=int, default=16 * 1024 * 1024)
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--large", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only-per-check", action="store_true", help="skip the hostile bodies")
    parser.add_argument("--where", action="store_true", help="also where the bytes per check go")
    args = parser.parse_args()
    print(
        f"{args.checks} concurrent checks per run, cap {args.max_response_bytes / 1048576:g} MiB per response"
    )
    print(f"{'run':10} {'peak RSS':>10} {'wall':>7}  outcome")
    with HostileServer() as server:
        for name, path in SCENARIOS.items() if not args.only_per_check else ():
            peak, elapsed, outcome = run(server.url, path, args.checks, args.max_response_bytes)
            print(f"{name:10} {peak:7.0f} MiB {elapsed:6.1f}s  {outcome}")
        per_check(server.url, args.small, args.large, args.repeat, args.max_response_bytes)
        if args.where:
            where(server.url, args.small, args.large, args.max_response_bytes)


if __name__ == "__main__":
    main()
