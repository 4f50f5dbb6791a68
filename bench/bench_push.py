"""A push plus state save of N probes, against the anchor `prometheus_client.push_to_gateway`.

Both push the same families (N probes: every series of the metric contract, about 25 samples
a probe) to one real Pushgateway, alternating after a warm-up. The project's side is what a
probe run does at its end: read and save the state file (counters must be on disk before they
are pushed), then `push_families` (protobuf); the anchor pushes the same families built as a
prometheus_client registry (text). Wall, CPU (this process: the Pushgateway's own parsing is
not counted on either side, but is in the wall) and the paired ratio are printed.

A second row pair puts the Pushgateway alone on the clock: a PUT of a body built beforehand,
protobuf against the same series as text, with one plain httpx client. Its wall is the floor
under both sides of the first. `--phases` prints where the project's side spends its time.

    python bench/bench_push.py [--probes 1000 10000] [--rounds 5] [--phases]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest, push_to_gateway

sys.path.insert(0, str(Path(__file__).resolve().parent))

from paired import HEADER, alternate, in_process, rows

from devstack.daemons import Pushgateway
from slo.config import PushgatewaySettings
from slo.report.exposition import SuiteRun, latency_buckets, probe_families
from slo.report.families import PROTOBUF_CONTENT_TYPE, Family, as_registry, encode_protobuf
from slo.report.push import group_url, push_families
from slo.report.state import ProbeState, StateFile

GROUPING = {"environment": "bench", "instance": "bench"}
T = TypeVar("T")


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


def families_of(states: dict[str, ProbeState]) -> list[Family]:
    return probe_families(states, SuiteRun(time.time(), 1.0, {"passed": len(states)}))


def save_and_push(
    state_file: StateFile, states: dict[str, ProbeState], settings: PushgatewaySettings
) -> None:
    """What a probe run does at its end: state read and saved first, then the families pushed."""
    with state_file.locked(GROUPING) as group:
        group.probes.update(states)
        group.save()
        result = push_families(families_of(group.probes), settings, "bench", GROUPING)
    assert result.ok, result.error


def push_only(url: str, states: dict[str, ProbeState]) -> None:
    push_to_gateway(url, "bench", as_registry(families_of(states)), grouping_key=GROUPING)


def put(client: httpx.Client, url: str, body: bytes, content_type: str) -> None:
    response = client.put(url, content=body, headers={"Content-Type": content_type})
    assert response.is_success, response.text


def phases(state_file: StateFile, states: dict[str, ProbeState], client: httpx.Client, url: str) -> None:
    """Median time of each step of the project's side, and of the anchor's text rendering."""
    steps: dict[str, list[float]] = {}

    def timed(name: str, work: Callable[[], T]) -> T:
        started = time.perf_counter()
        out = work()
        steps.setdefault(name, []).append(time.perf_counter() - started)
        return out

    for _ in range(5):
        started = time.perf_counter()
        with state_file.locked(GROUPING) as group:  # as a run does: all of it under the lock
            steps.setdefault("state read: lock, JSON, validation", []).append(time.perf_counter() - started)
            group.probes.update(states)
            timed("state save: fields, JSON, write, fsync, rename", group.save)
            families = timed("families built from the state", functools.partial(families_of, group.probes))
            body = timed("protobuf encoded", functools.partial(encode_protobuf, families))
            put_body = functools.partial(put, client, url, body, PROTOBUF_CONTENT_TYPE)
            timed("PUT of that body (the Pushgateway's parse)", put_body)
        text = functools.partial(generate_latest, as_registry(families))
        timed("anchor: generate_latest of the same families", text)
    for name, seconds in steps.items():
        print(f"  {name}: {statistics.median(seconds) * 1000:.1f} ms", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--phases", action="store_true", help="print the time of each step instead")
    args = parser.parse_args()
    if not args.phases:
        print(HEADER)
    with Pushgateway() as gateway, tempfile.TemporaryDirectory() as tmp, httpx.Client(timeout=120) as client:
        settings = PushgatewaySettings(url=gateway.url, deadline=120, timeout=120)
        url = group_url(gateway.url, "bench", GROUPING)
        for probes in args.probes:
            states = states_of(probes)
            state_file = StateFile(Path(tmp) / f"state-{probes}.json")
            if args.phases:
                print(f"{probes} probes:")
                phases(state_file, states, client, url)
                continue
            project_samples, anchor_samples = alternate(
                functools.partial(in_process, functools.partial(save_and_push, state_file, states, settings)),
                functools.partial(in_process, functools.partial(push_only, gateway.url, states)),
                args.rounds,
            )
            name = f"push + state save, {probes} probes vs push_to_gateway"
            for row in rows(name, project_samples, anchor_samples)[:2]:  # peak RSS: one process
                print(row, flush=True)
            families = families_of(states)
            protobuf, text = encode_protobuf(families), generate_latest(as_registry(families))
            project_samples, anchor_samples = alternate(
                functools.partial(
                    in_process, functools.partial(put, client, url, protobuf, PROTOBUF_CONTENT_TYPE)
                ),
                functools.partial(in_process, functools.partial(put, client, url, text, CONTENT_TYPE_LATEST)),
                args.rounds,
            )
            name = f"Pushgateway alone: PUT of {probes} probes, protobuf vs text"
            print(rows(name, project_samples, anchor_samples)[0], flush=True)  # wall: the server's


if __name__ == "__main__":
    main()
