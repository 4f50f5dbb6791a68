"""Requests per second of `slo load` against plain Locust, on the same target in the same run.

Both drive the reference stack's ``GET /health`` with FastHttpUser users and no think time,
alternating, several times; the medians, their ratio and the median ratio of the paired runs
(run back to back, so robust to a busy machine) are printed. Goal: at least 0.95.
Plain Locust runs a minimal locustfile doing the same request and the same response check,
so the ratio is the price of the gate itself: exact recording of every response time, the
CPU clock, the subprocess and the verdict. Both rates are Locust's own "Requests/s" of the
whole run, from each run's stats CSV.

    python bench/bench_load.py [--users 10] [--duration 10s] [--repeat 5] [--workers 0]
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from slo.dev.refstack import ReferenceStack
from slo.units import parse_duration

ROOT = Path(__file__).resolve().parents[1]
GOAL = 0.95

PLAIN_LOCUSTFILE = """\
from locust import FastHttpUser, task


class Health(FastHttpUser):
    @task
    def health(self):
        with self.client.get("/health", catch_response=True) as response:
            if response.status_code == 200 and response.json().get("status") != "healthy":
                response.failure("not healthy")
"""


def requests_per_second(stats_csv: Path) -> float:
    with stats_csv.open(newline="") as file:
        aggregated = next(row for row in csv.DictReader(file) if row["Name"] == "Aggregated")
    return float(aggregated["Requests/s"])


def run_slo_load(work: Path, stack: ReferenceStack, args: argparse.Namespace) -> float:
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
                    "think_time_min": 0,
                    "think_time_max": 0,
                },
            }
        )
    )
    reports = work / "slo"
    command = [sys.executable, "-m", "slo", "load", "--config", str(config)]
    command += ["--locustfile", str(ROOT / "load" / "locustfile.py"), "--report-dir", str(reports)]
    command += ["--workers", str(args.workers)]
    # Exit 1 or 2 is a verdict, not a broken run: the rate is what is measured here.
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode not in (0, 1, 2):
        sys.exit(f"slo load failed ({completed.returncode}):\n{completed.stderr}")
    return requests_per_second(reports / "locust_stats.csv")


def run_plain_locust(work: Path, stack: ReferenceStack, args: argparse.Namespace) -> float:
    locustfile = work / "plain_locustfile.py"
    locustfile.write_text(PLAIN_LOCUSTFILE)
    prefix = work / "plain"
    command = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless"]
    command += ["--host", stack.api_url, "--users", str(args.users), "--spawn-rate", str(args.users)]
    command += ["--run-time", f"{round(parse_duration(args.duration))}s", "--csv", str(prefix)]
    command += ["--processes", str(args.workers)] if args.workers else []
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if not Path(f"{prefix}_stats.csv").exists():
        sys.exit(f"plain Locust failed ({completed.returncode}):\n{completed.stderr}")
    return requests_per_second(Path(f"{prefix}_stats.csv"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--duration", default="10s", help="per run, e.g. 10s")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workers", type=int, default=0, help="Locust worker processes")
    args = parser.parse_args()
    ours, plain = [], []
    with tempfile.TemporaryDirectory() as temp, ReferenceStack() as stack:
        work = Path(temp)
        for _ in range(args.repeat):
            # Alternating, so a change in machine load hits both sides alike.
            plain.append(run_plain_locust(work, stack, args))
            ours.append(run_slo_load(work, stack, args))
    ours_rate, plain_rate = statistics.median(ours), statistics.median(plain)
    # Each pair ran back to back: their ratio cancels what the machine's load did meanwhile.
    paired = statistics.median(o / p for o, p in zip(ours, plain, strict=True))
    print(f"requests/s, {args.users} users, {args.duration} per run, median of {args.repeat}:")
    print(f"  slo load     {ours_rate:9.1f}   runs: {', '.join(f'{r:.0f}' for r in ours)}")
    print(f"  plain Locust {plain_rate:9.1f}   runs: {', '.join(f'{r:.0f}' for r in plain)}")
    print(f"  ratio of the medians            {ours_rate / plain_rate:.3f}")
    verdict = "meets" if paired >= GOAL else "misses"
    print(f"  median ratio of paired runs     {paired:.3f} ({verdict} the goal of {GOAL})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
