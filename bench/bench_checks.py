"""How long 200 declared checks take against an API with 100 ms latency, against the anchor:
the same 200 requests made one after another by a plain httpx loop (about 20 s).

The reference stack runs with 100 ms injected on the API; a throwaway probe project (the
repo's `probes/` and a `monitoring.yaml` declaring the checks) is run with
`python -m pytest probes/test_checks.py` in its own process, several times, exactly as a
timer would start it; the median wall time (interpreter start included) is printed beside
the pytest session time, the anchor and their ratio.

    python bench/bench_checks.py [--checks 200] [--latency-ms 100] [--repeat 5] [-n 2]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from probe_project import INI, PROBES_DIR, probe_config

from slo.dev.refstack import ReferenceStack

SESSION_TIME = re.compile(r" in ([0-9.]+)s")


def write_project(directory: Path, stack: ReferenceStack, checks: int) -> None:
    shutil.copytree(PROBES_DIR, directory / "probes", ignore=shutil.ignore_patterns("__pycache__"))
    (directory / "pytest.ini").write_text(INI)
    declared = [
        {"name": f"check-{i:03d}", "target": "api", "path": "/health", "json": {"status": "healthy"}}
        for i in range(checks)
    ]
    config = probe_config(stack, timeout="10s", checks=declared)
    (directory / "monitoring.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def run_checks(directory: Path, checks: int, workers: int) -> tuple[float, float]:
    """Wall time of one `pytest probes/test_checks.py` process, and pytest's session time."""
    command = [sys.executable, "-m", "pytest", "probes/test_checks.py", "-q", "--no-push"]
    if workers:
        command += ["-n", str(workers)]
    environment = {**os.environ, "PUSHGATEWAY_URL": ""}
    started = time.perf_counter()
    finished = subprocess.run(command, cwd=directory, capture_output=True, text=True, env=environment)
    wall = time.perf_counter() - started
    last = finished.stdout.strip().splitlines()[-1] if finished.stdout.strip() else ""
    if finished.returncode != 0 or f"{checks} passed" not in last:
        raise SystemExit(
            f"probe run failed ({finished.returncode}):\n{finished.stdout[-3000:]}{finished.stderr}"
        )
    session = SESSION_TIME.search(last)
    return wall, float(session.group(1)) if session else float("nan")


def sequential_anchor(url: str, checks: int) -> float:
    """The same requests, one after another, on one kept-alive connection."""
    with httpx.Client(base_url=url, timeout=10, trust_env=False) as client:
        started = time.perf_counter()
        for _ in range(checks):
            response = client.get("/health")
            assert response.json()["status"] == "healthy"
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("-n", "--workers", type=int, default=0, help="xdist workers (0: none)")
    args = parser.parse_args()

    with ReferenceStack(env={"REFSTACK_API_KEY": ""}) as stack, tempfile.TemporaryDirectory() as tmp:
        stack.set_faults("api", latency_ms=args.latency_ms)
        project = Path(tmp)
        write_project(project, stack, args.checks)
        runs = [run_checks(project, args.checks, args.workers) for _ in range(args.repeat)]
        anchor = sequential_anchor(stack.api_url, args.checks)

    wall = statistics.median(run[0] for run in runs)
    session = statistics.median(run[1] for run in runs)
    how = f" with -n {args.workers}" if args.workers else ""
    print(f"{args.checks} declared checks, API latency {args.latency_ms:g} ms, ", end="")
    print(f"median of {args.repeat} runs{how}:")
    rows = [
        ("pytest probes/test_checks.py, wall (process start to exit)", f"{wall:7.2f} s"),
        ("pytest probes/test_checks.py, pytest session time", f"{session:7.2f} s"),
        ("anchor: sequential httpx loop, the same requests", f"{anchor:7.2f} s"),
        ("ratio (anchor / wall)", f"{anchor / wall:7.1f} x"),
    ]
    for label, value in rows:
        print(f"  {label:<58} {value}")
    print(f"  all runs (wall, session): {', '.join(f'{w:.2f}/{s:.2f}' for w, s in runs)}")


if __name__ == "__main__":
    main()
