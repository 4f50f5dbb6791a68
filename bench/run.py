"""Run every benchmark in this folder, one after another, and print one table (`make bench`).

Each benchmark prints Markdown rows (see `paired.py`); their progress and errors go to stderr
as they happen. The table starts with the date, the machine and its load, since the absolute
times mean little without them; the paired ratios are the figures to compare.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path

from paired import HEADER

BENCHMARKS = ("bench_checks.py", "bench_push.py", "bench_load.py")
#: Not paired against an anchor (the plugin against no plugin, memory per probe): their own
#: lines follow the table.
OWN_REPORT = (
    "bench_plugin_cost.py",
    "bench_memory.py",
    "bench_fleet.py",
    "bench_runs.py",
    "bench_warm_checks.py",
)


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return f"{os.cpu_count()} x {model}, Python {platform.python_version()}, load average at the start {load}"


def main() -> int:
    here = Path(__file__).parent
    print(f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; {machine()}", flush=True)
    table: list[str] = []
    reports: list[str] = []
    failed = 0
    for name in BENCHMARKS + OWN_REPORT:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        command = [sys.executable, str(here / name)]
        completed = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
        failed += completed.returncode != 0
        if name in OWN_REPORT:
            reports.append(f"\n{name}:\n{completed.stdout.rstrip()}")
        else:
            table += [
                line for line in completed.stdout.splitlines() if line.startswith("| ") and line not in HEADER
            ]
    print(HEADER)
    print("\n".join(table + reports))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
