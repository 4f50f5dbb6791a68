"""A fleet's push path: R runners of P probes each pushing to one real Pushgateway.

Every runner has its own grouping key (instance ``runner-<i>``, one of L locations), its own
state file and the metric set of P probes over 10 targets (every series of the contract,
target run counters included). A round is every runner doing what a probe run does at its
end (state read and saved, then `push_families`), all at once, as timers started at the same
second would: the worst case for the Pushgateway. Printed per round count: the round's wall
time, each push's latency (median, 95th percentile, max), failed pushes, the Pushgateway's
own CPU per round and resident memory (read from its `/metrics`), and what Prometheus then
scrapes from it (bytes, series and the scrape's time). Runners are threads of this process,
so the client side shares one interpreter: on separate machines pushes only get faster.

    python bench/bench_fleet.py [--runners 100] [--probes 50] [--locations 5] [--rounds 5]
                                [--concurrency N] [--unchecked]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_push import states_of

from devstack.daemons import Pushgateway
from slo.config import PushgatewaySettings
from slo.report.exposition import SuiteRun, probe_families
from slo.report.push import push_families
from slo.report.state import StateFile, TargetState, target_key

TARGETS = 10


class UncheckedPushgateway(Pushgateway):
    """The Pushgateway without its push-time consistency check, which gathers every group's
    metrics on every push: a fleet's cost grows with runners x series (see docs/fleet.md)."""

    def arguments(self, port: int, workdir: Path) -> list[str]:
        return [*super().arguments(port, workdir), "--push.disable-consistency-check"]


def runner_key(index: int, locations: int) -> dict[str, str]:
    return {
        "environment": "bench",
        "instance": f"runner-{index}",
        "location": f"location-{index % locations}",
    }


def push_once(
    state_file: StateFile, key: dict[str, str], probes: int, settings: PushgatewaySettings
) -> float:
    """One runner's end of run: state read and saved, then the push; its latency in seconds."""
    started = time.perf_counter()
    with state_file.locked({"job": "bench", **key}) as group:
        group.probes.update(states_of(probes))
        for i in range(TARGETS):
            state = group.targets.setdefault(target_key(f"t{i}"), TargetState(target=f"t{i}"))
            state.runs, state.last_run = state.runs + 1, time.time()
        group.save()
        families = probe_families(group.probes, SuiteRun(time.time(), 1.0, {"passed": probes}), group.targets)
        result = push_families(families, settings, "bench", key)
    if not result.ok:
        raise RuntimeError(result.error)
    return time.perf_counter() - started


def gateway_process(client: httpx.Client, url: str) -> tuple[float, float]:
    """The Pushgateway's own CPU seconds and resident MiB, from its metrics."""
    values = {}
    for line in client.get(f"{url}/metrics").text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("process_cpu_seconds_total", "process_resident_memory_bytes"):
            values[name] = float(value)
    return values["process_cpu_seconds_total"], values["process_resident_memory_bytes"] / 2**20


def scrape(client: httpx.Client, url: str) -> tuple[float, int, int]:
    """What Prometheus pays each scrape interval: seconds, bytes and sample lines."""
    started = time.perf_counter()
    body = client.get(f"{url}/metrics").content
    seconds = time.perf_counter() - started
    samples = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    return seconds, len(body), samples


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runners", type=int, default=100)
    parser.add_argument("--probes", type=int, default=50)
    parser.add_argument("--locations", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--concurrency", type=int, default=0, help="runners pushing at the same time (default: all)"
    )
    parser.add_argument(
        "--unchecked", action="store_true", help="run the Pushgateway with --push.disable-consistency-check"
    )
    args = parser.parse_args()
    with (
        UncheckedPushgateway() if args.unchecked else Pushgateway() as gateway,
        tempfile.TemporaryDirectory() as tmp,
        httpx.Client(timeout=60) as client,
        ThreadPoolExecutor(max_workers=args.concurrency or args.runners) as pool,
    ):
        settings = PushgatewaySettings(url=gateway.url, deadline=600, timeout=600, retries=0)
        keys = [runner_key(i, args.locations) for i in range(args.runners)]
        files = [StateFile(Path(tmp) / f"runner-{i}.json") for i in range(args.runners)]
        latencies: list[float] = []
        walls, cpus = [], []
        for round_ in range(args.rounds + 1):  # the first round fills the Pushgateway: not counted
            cpu_before, _ = gateway_process(client, gateway.url)
            started = time.perf_counter()
            futures = [
                pool.submit(push_once, file, key, args.probes, settings)
                for file, key in zip(files, keys, strict=True)
            ]
            pushed = [future.result() for future in futures]
            wall = time.perf_counter() - started
            cpu_after, rss = gateway_process(client, gateway.url)
            if round_:
                latencies += pushed
                walls.append(wall)
                cpus.append(cpu_after - cpu_before)
        seconds, size, samples = scrape(client, gateway.url)
    fleet = f"{args.runners} runners x {args.probes} probes in {args.locations} locations"
    at_once = f"{args.concurrency} at a time" if args.concurrency else "at once"
    flags = " (--push.disable-consistency-check)" if args.unchecked else ""
    print(f"{fleet}, one Pushgateway{flags}, {args.rounds} rounds of every runner pushing {at_once}:")
    print(f"  round wall: median {statistics.median(walls):.2f} s [{min(walls):.2f}-{max(walls):.2f}]")
    print(
        f"  push (state save + PUT) latency: median {statistics.median(latencies) * 1000:.0f} ms, "
        f"p95 {percentile(latencies, 0.95) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms; "
        f"{len(latencies)} pushes, 0 failed"
    )
    print(
        f"  Pushgateway CPU per round: median {statistics.median(cpus):.2f} s; resident memory {rss:.0f} MiB"
    )
    print(f"  Prometheus' scrape of it: {size / 2**20:.1f} MiB, {samples} samples, {seconds:.2f} s")


if __name__ == "__main__":
    main()
