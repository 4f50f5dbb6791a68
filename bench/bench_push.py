"""A push plus state save of N probes, against the anchor `prometheus_client.push_to_gateway`.

Both push the same registry (N probes: every series of the metric contract, about 25 series a
probe) to one real Pushgateway, alternating after a warm-up. The project's side is what a probe
run does at its end: save the state file (counters must be on disk before they are pushed),
then `push_registry`; the anchor only pushes. Wall, CPU (this process: the Pushgateway's own
parsing is not counted on either side, but is in the wall) and the paired ratio are printed.

    python bench/bench_push.py [--probes 1000 10000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from pathlib import Path

from prometheus_client.exposition import push_to_gateway

sys.path.insert(0, str(Path(__file__).resolve().parent))

from paired import HEADER, alternate, in_process, rows

from slo.config import PushgatewaySettings
from slo.dev.daemons import Pushgateway
from slo.report.exposition import SuiteRun, latency_buckets, probe_registry
from slo.report.push import push_registry
from slo.report.state import ProbeState, StateFile

GROUPING = {"environment": "bench", "instance": "bench"}


def states_of(probes: int) -> dict[str, ProbeState]:
    bounds = latency_buckets([2.0])
    states = {}
    for i in range(probes):
        state = ProbeState(target=f"t{i % 10}", slo="api-availability", runs=100, failures=i % 3)
        state.last_success, state.last_duration, state.last_run = 1.0, 0.01, time.time()
        state.last_phases = {"dns": 0.001, "connect": 0.001, "tls": 0.0, "ttfb": 0.01, "transfer": 0.001}
        state.observe([0.01, 0.2, 1.5], bounds)
        states[f"probes/test_checks.py::test_check[check-{i}]"] = state
    return states


def save_and_push(
    state_file: StateFile, states: dict[str, ProbeState], settings: PushgatewaySettings
) -> None:
    """What a probe run does at its end: state saved first, then the registry pushed."""
    with state_file.locked(GROUPING) as group:
        group.probes.update(states)
        group.save()
    registry = probe_registry(group.probes, SuiteRun(time.time(), 1.0, {"passed": len(states)}))
    result = push_registry(registry, settings, "bench", GROUPING)
    assert result.ok, result.error


def push_only(url: str, states: dict[str, ProbeState]) -> None:
    registry = probe_registry(states, SuiteRun(time.time(), 1.0, {"passed": len(states)}))
    push_to_gateway(url, "bench", registry, grouping_key=GROUPING)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(HEADER)
    with Pushgateway() as gateway, tempfile.TemporaryDirectory() as tmp:
        settings = PushgatewaySettings(url=gateway.url, deadline=30, timeout=30)
        for probes in args.probes:
            states = states_of(probes)
            state_file = StateFile(Path(tmp) / f"state-{probes}.json")

            project_samples, anchor_samples = alternate(
                functools.partial(in_process, functools.partial(save_and_push, state_file, states, settings)),
                functools.partial(in_process, functools.partial(push_only, gateway.url, states)),
                args.rounds,
            )
            name = f"push + state save, {probes} probes vs push_to_gateway"
            for row in rows(name, project_samples, anchor_samples)[:2]:  # peak RSS: one process
                print(row, flush=True)


if __name__ == "__main__":
    main()
