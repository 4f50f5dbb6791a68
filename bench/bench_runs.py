"""Cold against warm runs of the shipped suite, and what one run a minute costs a day.

Both sides run the shipped `probes/` (its own `monitoring.yaml`) against the reference stack,
pushing to a real Pushgateway, each with its own state file and instance:

- *cold*: `python -m pytest probes/` in its own interpreter, as the systemd timer and the
  CronJob start it (whole process, `os.wait4`);
- *warm*: `slo run --every PERIOD -- probes/`, one runner whose forked runs each report their
  own CPU (the runner's `wait4` of the child, printed in its "run N exited" line). The
  runner's first run is the warm-up and is not counted; neither is the cold side's first.

They alternate: after each warm run ends, one cold run, so drift hits both. The paired ratio
is the median of warm / cold per round. The runner's own CPU (its warm-up, then idle ticks)
is printed apart. CPU-seconds a day at one run a minute are 1440 x the median run; the
anchor is `prometheus-blackbox-exporter` sent as many `/probe` requests of the reference
stack's `GET /health` as the suite's run made (counted from its `probes.json`), its CPU read
from `/proc` (skipped, with a line saying so, when it is not installed: `make bench-deps`).

    python bench/bench_runs.py [--rounds 7] [--period 6]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_checks import EXPORTER, Blackbox
from paired import HEADER, Sample, run_process

from devstack.daemons import Pushgateway
from devstack.refstack import ReferenceStack

REPO = Path(__file__).resolve().parents[1]
#: The runner's machine is not the system under test (as in tests/test_end_to_end.py).
PROBE_ARGS = [
    "probes/",
    "-q",
    "-p",
    "no:cacheprovider",
    "--deselect",
    "probes/test_resources.py::test_runner_disk",
    "--deselect",
    "probes/test_resources.py::test_runner_memory",
]
#: The runner's line for each run: number, exit code, wall, CPU, peak RSS (MiB).
RUN_LINE = re.compile(
    r"slo run: run (\d+) exited (\d+) after ([\d.]+) s, CPU ([\d.]+) s(?:, peak RSS (\d+) MiB)?"
)
GOAL = 0.35
RUNS_A_DAY = 24 * 60


def environment(stack: ReferenceStack, gateway: Pushgateway, work: Path, side: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLO_", "PUSHGATEWAY"))}
    return {
        **env,
        "API_URL": stack.api_url,
        "GATEWAY_URL": stack.gateway_url,
        "PUSHGATEWAY_URL": gateway.url,
        "SLO_ENV": "local",
        "SLO_INSTANCE": f"bench-{side}",
        "SLO_STATE_FILE": str(work / f"{side}-state.json"),
        # As the shipped systemd unit and CronJob run it.
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def wait_for_line(log: Path, number: int, deadline: float) -> re.Match[str]:
    while time.monotonic() < deadline:
        for match in RUN_LINE.finditer(log.read_text(errors="replace")):
            if int(match.group(1)) == number:
                return match
        time.sleep(0.05)
    raise SystemExit(f"warm run {number} did not finish in time; see {log}")


def requests_per_run(results: Path) -> int:
    document = json.loads(results.read_text())
    return sum(len(probe.get("latencies", [])) for probe in document["probes"])


def describe(values: list[float], unit: str = "s") -> str:
    return f"{statistics.median(values):.3f} {unit} [{min(values):.3f}-{max(values):.3f}]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--period", type=float, default=6.0, help="the warm runner's --every, seconds")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with (
        tempfile.TemporaryDirectory(prefix="slo-bench-runs-") as tmp,
        ReferenceStack(env={"REFSTACK_API_KEY": ""}) as stack,
        Pushgateway() as gateway,
    ):
        work = Path(tmp)
        cold_env = environment(stack, gateway, work, "cold")
        warm_env = environment(stack, gateway, work, "warm")
        cold_junit = work / "cold" / "junit.xml"
        cold_command = [sys.executable, "-m", "pytest", *PROBE_ARGS, f"--junit-xml={cold_junit}"]
        warm_junit = work / "warm" / "junit.xml"
        log = work / "runner.log"
        warm_command = [sys.executable, "-m", "slo", "run", "--every", f"{args.period}s"]
        warm_command += ["--runs", str(args.rounds + 1), "--", *PROBE_ARGS, f"--junit-xml={warm_junit}"]
        # Once with the bytecode caches written (the probes' assert-rewritten modules too), as
        # the install step in docs/deploying.md does; every counted run only reads them.
        writing = {k: v for k, v in cold_env.items() if k != "PYTHONDONTWRITEBYTECODE"}
        run_process(cold_command, REPO, writing, work / "cold.log")
        cold: list[Sample] = []
        warm: list[float] = []
        with log.open("wb") as out:
            started = time.perf_counter()
            runner = subprocess.Popen(
                warm_command, cwd=REPO, env=warm_env, stdout=out, stderr=subprocess.STDOUT
            )
            try:
                for number in range(1, args.rounds + 2):
                    match = wait_for_line(log, number, time.monotonic() + 300)
                    sample, _ = run_process(cold_command, REPO, cold_env, work / "cold.log")
                    if number > 1:  # the first of each side is the warm-up
                        warm.append(float(match.group(4)))
                        cold.append(sample)
                _, status, usage = os.wait4(runner.pid, 0)
                runner.returncode = os.waitstatus_to_exitcode(status)
            finally:
                if runner.poll() is None:
                    runner.terminate()
                    runner.wait(30)
            runner_wall = time.perf_counter() - started
        every_run = [float(m.group(4)) for m in RUN_LINE.finditer(log.read_text(errors="replace"))]
        runner_own = usage.ru_utime + usage.ru_stime - sum(every_run)
        requests = requests_per_run(cold_junit.with_name("probes.json"))
        anchor: list[Sample] = []
        if Path(EXPORTER).exists():
            (work / "blackbox.yml").write_text(
                "modules:\n  health:\n    prober: http\n    timeout: 10s\n"
                "    http:\n      valid_status_codes: [200]\n"
            )
            blackbox = Blackbox(work, f"{stack.api_url}/health", requests)
            anchor = [blackbox() for _ in range(args.rounds + 1)][1:]
    load_after = os.getloadavg()

    cold_cpu = [s.cpu for s in cold]
    ratios = [w / c.cpu for w, c in zip(warm, cold, strict=True)]
    name = f"shipped suite ({requests} requests), warm vs cold"
    print(HEADER)
    print(
        f"| {name} | CPU per run | {describe(warm)} | cold: {describe(cold_cpu)} "
        f"| {statistics.median(ratios):.2f} |"
    )
    cold_day = statistics.median(cold_cpu) * RUNS_A_DAY
    warm_day = statistics.median(warm) * RUNS_A_DAY
    if anchor:
        exporter_day = statistics.median(s.cpu for s in anchor) * RUNS_A_DAY
        for side, day in (("warm", warm_day), ("cold", cold_day)):
            print(
                f"| one run a minute, {side} vs blackbox_exporter | CPU-seconds a day | {day:.0f} s "
                f"| {exporter_day:.0f} s | {day / exporter_day:.2f} |"
            )
    else:
        print(f"| one run a minute | CPU-seconds a day | warm {warm_day:.0f} s, cold {cold_day:.0f} s | | |")
        print(f"(no {EXPORTER}: `make bench-deps` installs it for the anchor row)", file=sys.stderr)
    print(
        f"\nwarm runner: exit {runner.returncode}, {args.rounds + 1} runs every {args.period:g} s in "
        f"{runner_wall:.1f} s; its own CPU besides the runs (warm-up once, then the idle loop) "
        f"{runner_own:.3f} s"
    )
    verdict = "meets" if statistics.median(ratios) <= GOAL else "misses"
    print(f"{verdict} the goal of warm CPU per run at most {GOAL}x cold")
    print(
        "load average before "
        + ", ".join(f"{v:.1f}" for v in load_before)
        + "; after "
        + ", ".join(f"{v:.1f}" for v in load_after)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
