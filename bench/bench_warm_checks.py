"""Declared checks from the warm runner, from a cold `pytest`, and from blackbox_exporter.

The rows `bench_checks.py` measures cold, with a warm side added: the same project (N checks
of the reference stack's `GET /health`, 100 ms late, each expecting 200 and a body regex),
run by one `slo run --every PERIOD -- probes/test_checks.py` whose forked runs each report
their wall, CPU and peak RSS (its "run N exited" line). After each warm run, one cold run and
one blackbox_exporter round (`bench_checks.Blackbox`, at the same concurrency as the project's
batches); the
first of each is a warm-up. Rows: warm and cold against the exporter (paired ratios), and the
runs with a failed check (the target is healthy: each is a false failure).

    python bench/bench_warm_checks.py [--checks 200 1000 5000] [--concurrency 50 256] [--rounds 3]
        [--latency-ms 100]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_checks import EXPORTER, Blackbox, Project, write_project
from bench_runs import wait_for_line
from paired import HEADER, Sample, rows

from devstack.refstack import ReferenceStack

CHECK_ARGS = ["probes/test_checks.py", "-q", "--no-push", "-p", "no:cacheprovider"]


def period_for(checks: int) -> float:
    """Long enough that a warm run, then a cold one and the exporter's round, fit between ticks."""
    return 5 + checks / 100


def measure(
    directory: Path, target: str, checks: int, concurrency: int, rounds: int
) -> tuple[list[Sample], ...]:
    cold = Project(directory, checks, concurrency)
    anchor = Blackbox(directory, target, checks, concurrency)
    log = directory / "runner.log"
    command = [sys.executable, "-m", "slo", "run", "--every", f"{period_for(checks):g}s"]
    command += ["--runs", str(rounds + 1), "--", *CHECK_ARGS, "--slo-check-concurrency", str(concurrency)]
    warm_samples: list[Sample] = []
    cold_samples: list[Sample] = []
    anchor_samples: list[Sample] = []
    warm_failed = 0
    with log.open("wb") as out:
        runner = subprocess.Popen(
            command,
            cwd=directory,
            env={**os.environ, "PUSHGATEWAY_URL": ""},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            for number in range(1, rounds + 2):
                match = wait_for_line(log, number, time.monotonic() + 600)
                cold_sample, anchor_sample = cold(), anchor()
                if number == 1:
                    continue  # the warm-up of each side
                warm_failed += match.group(2) != "0"
                peak = float(match.group(5)) if match.group(5) else float("nan")
                warm_samples.append(Sample(float(match.group(3)), float(match.group(4)), peak))
                cold_samples.append(cold_sample)
                anchor_samples.append(anchor_sample)
            runner.wait(60)
        finally:
            if runner.poll() is None:
                runner.terminate()
                runner.wait(30)
    print(
        f"| {checks} checks, runs with a failed check | warm {warm_failed} of {rounds}, "
        f"cold {cold.false_failures} of {cold.runs} | {anchor.false_failures} of {rounds + 1} | |",
        flush=True,
    )
    return warm_samples, cold_samples, anchor_samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, nargs="+", default=[200, 1000, 5000])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[50, 256])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    args = parser.parse_args()
    if not Path(EXPORTER).exists():
        raise SystemExit("prometheus-blackbox-exporter is not installed: run `make bench-deps`")
    print(f"load average at the start {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print(HEADER)
    with ReferenceStack(env={"REFSTACK_API_KEY": ""}) as stack:
        stack.set_faults("api", latency_ms=args.latency_ms)
        for checks in args.checks:
            for concurrency in args.concurrency:
                with tempfile.TemporaryDirectory() as tmp:
                    directory = Path(tmp)
                    write_project(directory, stack, checks)
                    target = f"{stack.api_url}/health"
                    warm, cold, anchor = measure(directory, target, checks, concurrency, args.rounds)
                for side, samples in (("warm", warm), ("cold", cold)):
                    name = f"{checks} checks @{concurrency}, {side} vs blackbox_exporter"
                    for row in rows(name, samples, anchor, checks, "check"):
                        print(row, flush=True)
    print(f"load average at the end {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
