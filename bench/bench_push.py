"""How long a push of 1,000 probes takes, against the anchor `prometheus_client.push_to_gateway`.

Both push the same registry (1,000 probes: every series of the metric contract, ~25,000
samples) to one real Pushgateway, alternating, several times; medians and their ratio are
printed. Our push adds bounded retries, auth and TLS options on top of the same PUT.

    python bench/bench_push.py [--probes 1000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

from prometheus_client.exposition import push_to_gateway

from slo.config import PushgatewaySettings
from slo.dev.daemons import Pushgateway
from slo.report.exposition import SuiteRun, latency_buckets, probe_registry
from slo.report.push import push_registry
from slo.report.state import ProbeState


def registry_of(probes: int):  # type: ignore[no-untyped-def]
    bounds = latency_buckets([2.0])
    states = {}
    for i in range(probes):
        state = ProbeState(target=f"t{i % 10}", slo="api-availability", runs=100, failures=i % 3)
        state.last_success, state.last_duration, state.last_run = 1.0, 0.01, time.time()
        state.last_phases = {"dns": 0.001, "connect": 0.001, "tls": 0.0, "ttfb": 0.01, "transfer": 0.001}
        state.observe([0.01, 0.2, 1.5], bounds)
        states[f"probes/test_checks.py::test_check[check-{i}]"] = state
    return probe_registry(states, SuiteRun(time.time(), 1.0, {"passed": probes}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    registry = registry_of(args.probes)
    grouping = {"environment": "bench", "instance": "bench"}
    ours, anchor = [], []
    with Pushgateway() as gateway:
        settings = PushgatewaySettings(url=gateway.url, deadline=30, timeout=30)
        for _ in range(args.repeat):
            started = time.perf_counter()
            result = push_registry(registry, settings, "bench", grouping)
            ours.append(time.perf_counter() - started)
            assert result.ok, result.error
            started = time.perf_counter()
            push_to_gateway(gateway.url, "bench", registry, grouping_key=grouping)
            anchor.append(time.perf_counter() - started)
    ours_ms, anchor_ms = statistics.median(ours) * 1000, statistics.median(anchor) * 1000
    print(f"push of {args.probes} probes, median of {args.repeat}:")
    print(f"  slo.report.push.push_registry            {ours_ms:8.1f} ms")
    print(f"  prometheus_client.push_to_gateway {anchor_ms:8.1f} ms")
    print(f"  ratio (ours / anchor)             {ours_ms / anchor_ms:8.2f}")


if __name__ == "__main__":
    main()
