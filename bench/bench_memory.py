"""Peak RSS of a probe run against hostile bodies, side by side with a normal run.

Each run is `pytest probes/test_checks.py` in its own process, with N declared checks that
are fetched concurrently from one loopback target (tests/hostile.py): a normal 401 JSON
answer, a 500 MiB body, a gzip body that inflates to 10 GiB, and an endless chunked body.
The peak RSS of the run's process (``wait4``) is printed for each, with the wall time. The
cap is the target's `max_response_bytes` (16 MiB by default), so a hostile run may take at
most about N x 16 MiB more than the normal one, whatever the target sends.

    python bench/bench_memory.py [--checks 8] [--max-response-bytes 16777216]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))

from hostile import HostileServer  # noqa: E402

SCENARIOS = {"normal": "/echo", "oversized": "/oversized", "inflating": "/inflating", "endless": "/endless"}
INI = "[pytest]\naddopts = -p no:locust -p no:cacheprovider\n"


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


def run(url: str, path: str, checks: int, cap: int) -> tuple[float, float, str]:
    """(peak RSS MiB, seconds, last summary line) of one run in its own process."""
    with tempfile.TemporaryDirectory() as temporary:
        directory = Path(temporary)
        project(directory, url, path, checks, cap)
        log = directory / "output.txt"
        started = time.monotonic()
        with log.open("w") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "pytest", "-q", "--no-push", "probes/"],
                cwd=directory, stdout=output, stderr=subprocess.STDOUT,
            )  # fmt: skip
            # wait4, not wait: it also gives this child's own peak RSS.
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.monotonic() - started
        lines = [line for line in log.read_text().splitlines() if line.strip()]
    return usage.ru_maxrss / 1024, elapsed, (lines[-1] if lines else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=8)
    parser.add_argument("--max-response-bytes", type=int, default=16 * 1024 * 1024)
    args = parser.parse_args()
    print(
        f"{args.checks} concurrent checks per run, cap {args.max_response_bytes / 1048576:g} MiB per response"
    )
    print(f"{'run':10} {'peak RSS':>10} {'wall':>7}  outcome")
    with HostileServer() as server:
        for name, path in SCENARIOS.items():
            peak, elapsed, outcome = run(server.url, path, args.checks, args.max_response_bytes)
            print(f"{name:10} {peak:7.0f} MiB {elapsed:6.1f}s  {outcome}")


if __name__ == "__main__":
    main()
