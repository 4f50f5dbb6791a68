"""Start-up costs: what the plugin adds to an unrelated project, and what a probe run's start-up
and collection cost next to a bare one-test pytest run in the same virtualenv.

1. The `slo` plugin is registered for every pytest run in the environment. On an unrelated
   one-test project this runs `pytest` with the plugin and with ``-p no:slo`` (goal: within
   50 ms, the median of the paired differences).
2. `pytest probes/ --collect-only` from the checkout, on the shipped `monitoring.yaml` (start-up,
   imports, config and collection, which is what a run costs besides its probes) against a bare
   `pytest` run of one test (goal: within 1.5x). The bare run is shown twice: as it starts by
   default, with every installed plugin, and with the same plugins left out as the probe run
   (pyproject's addopts: ``-p no:locust``, ``no:cacheprovider``, ``no:hypothesispytest`` and the
   optional plugins slo.leanplugins loads back when used), the stricter comparison.
3. A cold run: the whole shipped suite, `pytest probes/ --no-push`, against a reference stack
   (``--run``; goal: CPU within 1.6x the bare one-test run with the same exclusions), and a bare
   project's `pytest --collect-only`.

Whole processes, alternating after a warm-up that writes the bytecode caches, then with
``PYTHONDONTWRITEBYTECODE=1`` as the shipped systemd unit and CronJob run them; medians,
spread, paired ratios. On a shared machine
the CPU figures are the steadier.

    python bench/bench_plugin_cost.py [--pairs 21] [--run]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

GOAL_MS = 50.0
GOAL_RATIO = 1.5
GOAL_RUN_RATIO = 1.6
REPO = Path(__file__).resolve().parents[1]
#: What pyproject's addopts leave out of a probe run.
PROBE_RUN_EXCLUDES = tuple(
    tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["addopts"]
)
#: The reference stack's URLs for a cold run of the shipped suite (set by main with --run).
RUN_ENV: dict[str, str] = {}


def run_once(project: Path, *args: str, write_bytecode: bool = False) -> tuple[float, float]:
    """Wall and CPU seconds of one `pytest` process in `project` (a failed probe is no error:
    the cold run measures what a run costs, whatever the stack answers)."""
    env = {**os.environ, **RUN_ENV}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if not write_bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *args],
        cwd=project,
        check="probes/" not in args or "--collect-only" in args,
        stdout=subprocess.DEVNULL,
        env=env,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def describe(values: list[float]) -> str:
    low, _, high = statistics.quantiles(values, n=4)
    return f"median {statistics.median(values) * 1000:6.1f} ms (IQR {low * 1000:.1f}-{high * 1000:.1f})"


def both(samples: list[tuple[float, float]]) -> str:
    return f"wall {describe([w for w, _ in samples])}, CPU {describe([c for _, c in samples])}"


def paired(runs: dict[str, tuple[Path, tuple[str, ...]]], pairs: int) -> dict[str, list[tuple[float, float]]]:
    """Each configuration once per round, in a rotating order, after three warm-up rounds
    (page cache; the first writes the bytecode caches, the probes' rewritten ones too, as the
    install step in docs/deploying.md does)."""
    names = list(runs)
    for warm_up in range(3):
        for project, args in runs.values():
            run_once(project, *args, write_bytecode=warm_up == 0)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for round_ in range(pairs):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:  # drift in machine load hits all alike
            project, args = runs[name]
            samples[name].append(run_once(project, *args))
    return samples


def median_ratio(ours: list[tuple[float, float]], theirs: list[tuple[float, float]], index: int) -> float:
    return statistics.median(a[index] / b[index] for a, b in zip(ours, theirs, strict=True))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=21)
    parser.add_argument("--run", action="store_true", help="also a cold run of the shipped suite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="slo-bench-") as directory, contextlib.ExitStack() as stack:
        project = Path(directory)
        (project / "test_app.py").write_text("def test_app():\n    assert True\n")
        junit = project / "probes-junit.xml"
        runs = {
            "with the slo plugin": (project, ("-p", "no:cacheprovider")),
            "with -p no:slo": (project, ("-p", "no:cacheprovider", "-p", "no:slo")),
            "bare, same exclusions": (project, PROBE_RUN_EXCLUDES),
            "bare --collect-only": (project, (*PROBE_RUN_EXCLUDES, "--collect-only")),
            "probes/ --collect-only": (REPO, ("probes/", "--collect-only", f"--junit-xml={junit}")),
        }
        if args.run:
            from devstack.refstack.process import ReferenceStack

            refstack = stack.enter_context(ReferenceStack("--seed", "7"))
            RUN_ENV.update(
                API_URL=refstack.api_url,
                GATEWAY_URL=refstack.gateway_url,
                SLO_STATE_FILE=str(project / "state.json"),
            )
            runs["probes/ run"] = (REPO, ("probes/", "--no-push", f"--junit-xml={junit}"))
        samples = paired(runs, args.pairs)

    with_plugin, without = samples["with the slo plugin"], samples["with -p no:slo"]
    differences = [w[0] - n[0] for w, n in zip(with_plugin, without, strict=True)]
    cpu_differences = [w[1] - n[1] for w, n in zip(with_plugin, without, strict=True)]
    median_difference = statistics.median(differences) * 1000
    print(f"1. unrelated one-test project, {args.pairs} rounds of whole pytest processes")
    print(f"  with the slo plugin   wall {describe([w for w, _ in with_plugin])}")
    print(f"  with -p no:slo        wall {describe([w for w, _ in without])}")
    print(
        f"  paired difference     wall median {median_difference:+.1f} ms, "
        f"CPU median {statistics.median(cpu_differences) * 1000:+.1f} ms"
    )
    verdict = "meets" if median_difference <= GOAL_MS else "misses"
    print(f"  {verdict} the goal of at most {GOAL_MS:.0f} ms")

    probes = samples["probes/ --collect-only"]
    print("2. `pytest probes/ --collect-only` on the shipped config against a bare one-test run")
    print(f"  probes/ --collect-only        wall {describe([w for w, _ in probes])}")
    print(f"  bare, every installed plugin  wall {describe([w for w, _ in with_plugin])}")
    print(
        f"  bare, same exclusions         wall {describe([w for w, _ in samples['bare, same exclusions']])}"
    )
    verdicts = []
    for name, anchor in (
        ("every plugin", with_plugin),
        ("same exclusions", samples["bare, same exclusions"]),
    ):
        wall, cpu = median_ratio(probes, anchor, 0), median_ratio(probes, anchor, 1)
        print(f"  paired ratio vs bare ({name}): wall {wall:.2f}, CPU {cpu:.2f}")
        verdicts.append(wall <= GOAL_RATIO)
    print(
        f"  {'meets' if all(verdicts) else 'misses'} the goal of at most {GOAL_RATIO}x "
        "(both comparisons, wall)"
    )
    bare = samples["bare, same exclusions"]
    collect = samples["bare --collect-only"]
    print("3. cold runs")
    print(f"  bare project --collect-only   {both(collect)}")
    if "probes/ run" in samples:
        run = samples["probes/ run"]
        print(f"  probes/ run (shipped suite)   {both(run)}")
        cpu = median_ratio(run, bare, 1)
        print(
            f"  paired ratio vs bare (same exclusions): wall {median_ratio(run, bare, 0):.2f}, CPU {cpu:.2f}"
        )
        print(
            f"  {'meets' if cpu <= GOAL_RUN_RATIO else 'misses'} the goal of at most {GOAL_RUN_RATIO}x (CPU)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
