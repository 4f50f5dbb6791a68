"""CPU per request of `slo load` against plain Locust, on the same unsaturated target, paired.

Both drive the reference stack's ``GET /health`` with FastHttpUser users pausing 50 ms between
requests, so the target is far from its ceiling (measured with `wrk` first, printed beside)
and both send about the same number of requests: the ratio of CPU per request is the price of
the gate itself (exact recording of every response time, the CPU clock, the verdict). Plain
Locust runs a minimal locustfile doing the same request and the same response check. CPU is
the whole process tree's (os.wait4), requests are Locust's own count from each stats CSV.

    python bench/bench_load.py [--users 10] [--duration 10s] [--rounds 3] [--workers 0]
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from paired import HEADER, Sample, alternate, rows, run_process

from slo.dev.refstack import ReferenceStack
from slo.units import parse_duration

ROOT = Path(__file__).resolve().parents[1]

PLAIN_LOCUSTFILE = """\
from locust import FastHttpUser, constant, task

THINK = {think}


class Health(FastHttpUser):
    wait_time = constant(THINK)

    @task
    def health(self):
        with self.client.get("/health", catch_response=True) as response:
            if response.status_code == 200 and response.json().get("status") != "healthy":
                response.failure("not healthy")
"""


THINK_SECONDS = 0.05


def request_count(stats_csv: Path) -> int:
    with stats_csv.open(newline="") as file:
        aggregated = next(row for row in csv.DictReader(file) if row["Name"] == "Aggregated")
    return int(aggregated["Request Count"])


def per_request(sample: Sample, requests: int) -> Sample:
    """CPU per request in the `cpu` field; wall and memory as measured."""
    return Sample(sample.wall, sample.cpu / max(requests, 1), sample.peak_mb)


def wrk_ceiling(url: str, seconds: int = 3) -> str:
    """The target's own ceiling: requests/s `wrk` gets from it with 10 connections."""
    if not shutil.which("wrk"):
        return "wrk not installed (make bench-deps)"
    completed = subprocess.run(
        ["wrk", "-t1", "-c10", f"-d{seconds}s", url], capture_output=True, text=True, check=False
    )
    found = re.search(r"Requests/sec:\s+([0-9.]+)", completed.stdout)
    return f"{float(found.group(1)):.0f} requests/s" if found else "wrk failed"


def run_slo_load(work: Path, stack: ReferenceStack, args: argparse.Namespace) -> Sample:
    config = work / "monitoring.yaml"
    config.write_text(
        json.dumps(
            {
                "environments": {"local": {"targets": {"api": {"url": stack.api_url}}}},
                "load": {
                    "users": args.users,
                    "spawn_rate": args.users,
                    "duration": args.duration,
                    "scenarios": {"api_health": 1},
                    "think_time_min": THINK_SECONDS,
                    "think_time_max": THINK_SECONDS,
                },
            }
        )
    )
    reports = work / "slo"
    command = [sys.executable, "-m", "slo", "load", "--config", str(config)]
    command += ["--locustfile", str(ROOT / "load" / "locustfile.py"), "--report-dir", str(reports)]
    command += ["--workers", str(args.workers)]
    # Exit 1 or 2 is a verdict, not a broken run: the cost is what is measured here.
    sample, code = run_process(command, work, dict(os.environ), work / "slo-load.log")
    if code not in (0, 1, 2):
        sys.exit(f"slo load failed ({code}):\n{(work / 'slo-load.log').read_text()[-3000:]}")
    return per_request(sample, request_count(reports / "locust_stats.csv"))


def run_plain_locust(work: Path, stack: ReferenceStack, args: argparse.Namespace) -> Sample:
    locustfile = work / "plain_locustfile.py"
    locustfile.write_text(PLAIN_LOCUSTFILE.format(think=THINK_SECONDS))
    prefix = work / "plain"
    command = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless"]
    command += ["--host", stack.api_url, "--users", str(args.users), "--spawn-rate", str(args.users)]
    command += ["--run-time", f"{round(parse_duration(args.duration))}s", "--csv", str(prefix)]
    command += ["--processes", str(args.workers)] if args.workers else []
    sample, code = run_process(command, work, dict(os.environ), work / "plain.log")
    if not Path(f"{prefix}_stats.csv").exists():
        sys.exit(f"plain Locust failed ({code}):\n{(work / 'plain.log').read_text()[-3000:]}")
    return per_request(sample, request_count(Path(f"{prefix}_stats.csv")))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--duration", default="20s", help="per run: long enough to amortize start-up")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0, help="Locust worker processes")
    args = parser.parse_args()
    print(HEADER)
    with tempfile.TemporaryDirectory() as temp, ReferenceStack() as stack:
        work = Path(temp)
        ceiling = wrk_ceiling(f"{stack.api_url}/health")
        ours, plain = alternate(
            functools.partial(run_slo_load, work, stack, args),
            functools.partial(run_plain_locust, work, stack, args),
            args.rounds,
        )
    name = f"slo load vs plain Locust, {args.users} users, {args.workers} workers"
    for row in rows(name, ours, plain, cpu=("CPU per request", "µs", 1e6)):
        print(
            row.replace("| CPU |", "| CPU per request |").replace(" s [", " s/req [")
            if "| CPU |" in row
            else row
        )
    print(f"| {name} | target ceiling (wrk -c10) | {ceiling} | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
