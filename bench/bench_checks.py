"""Declared checks against Debian's blackbox_exporter probing the same target, paired.

The reference stack's API answers `GET /health` after 100 ms. The project runs
`python -m pytest probes/test_checks.py` in its own process (interpreter start included, as a
timer would start it) with N checks, each expecting 200 and a body regex, sent C at a time
(``--slo-check-concurrency C``). The anchor is `prometheus-blackbox-exporter` with an http
module expecting the same: a fresh exporter per round, driven with N `/probe` requests by C
threads; its wall is the driver's, its CPU and peak RSS the exporter's own (the driver's Python
is not counted against it). A project round with any failed check is a false failure (the
target is healthy) and is counted.

    python bench/bench_checks.py [--checks 200 1000 5000] [--concurrency 50 256] [--rounds 3]
                                 [--latency-ms 100] [--clients]

`--clients` measures the HTTP part alone instead, in this process, against the same exporter:
N requests judged as the checks are (status and body regex) by the batch loop that runs the
checks (libcurl's multi interface), by the thread per concurrent check with an httpx client
each that it replaced, and by aiohttp on one asyncio loop (when it is installed: the other
C-backed client weighed for the loop).
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from paired import HEADER, Sample, alternate, in_process, rows, run_process
from probe_project import INI, PROBES_DIR, probe_config
from servers import free_port

from devstack.refstack import ReferenceStack
from slo.config import Target
from slo.exchange.batch import Answer, send_batch
from slo.probe.checks import IN_FLIGHT_BYTES, target_exchange
from slo.probe.client import ProbeClient

EXPORTER = shutil.which("prometheus-blackbox-exporter") or "/usr/bin/prometheus-blackbox-exporter"
BODY_REGEX = '"status": ?"healthy"'
PATTERN = re.compile(BODY_REGEX)
BLACKBOX_CONFIG = {
    "modules": {
        "health": {
            "prober": "http",
            "timeout": "10s",
            "http": {"valid_status_codes": [200], "fail_if_body_not_matches_regexp": [BODY_REGEX]},
        }
    }
}


def write_project(directory: Path, stack: ReferenceStack, checks: int) -> None:
    shutil.copytree(PROBES_DIR, directory / "probes", ignore=shutil.ignore_patterns("__pycache__"))
    (directory / "pytest.ini").write_text(INI)
    declared = [
        {"name": f"check-{i:05d}", "target": "api", "path": "/health", "body_regex": BODY_REGEX}
        for i in range(checks)
    ]
    config = probe_config(stack, timeout="10s", checks=declared)
    (directory / "monitoring.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (directory / "blackbox.yml").write_text(yaml.safe_dump(BLACKBOX_CONFIG))


class Project:
    def __init__(self, directory: Path, checks: int, concurrency: int) -> None:
        self.directory, self.checks, self.concurrency = directory, checks, concurrency
        self.false_failures = self.runs = 0

    def __call__(self) -> Sample:
        command = [
            sys.executable,
            "-m",
            "pytest",
            "probes/test_checks.py",
            "-q",
            "--no-push",
            "--slo-check-concurrency",
            str(self.concurrency),
            "-p",
            "no:cacheprovider",
        ]
        log = self.directory / "pytest.log"
        sample, code = run_process(command, self.directory, {**os.environ, "PUSHGATEWAY_URL": ""}, log)
        self.runs += 1
        tail = log.read_text(errors="replace").strip().splitlines()[-1:]
        if code != 0 or not tail or f"{self.checks} passed" not in tail[0]:
            self.false_failures += 1
            print(f"  false failure ({code}): {tail}", file=sys.stderr, flush=True)
        return sample


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Blackbox:
    def __init__(self, directory: Path, target: str, checks: int, concurrency: int) -> None:
        self.directory, self.target, self.checks, self.concurrency = directory, target, checks, concurrency
        self.false_failures = 0

    def __call__(self) -> Sample:
        port = free_port()
        command = [EXPORTER, f"--config.file={self.directory / 'blackbox.yml'}"]
        command.append(f"--web.listen-address=127.0.0.1:{port}")
        log = (self.directory / "blackbox.log").open("wb")
        exporter = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            probe = f"http://127.0.0.1:{port}/probe?" + urllib.parse.urlencode(
                {"module": "health", "target": self.target}
            )
            deadline = time.monotonic() + 10
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise SystemExit("blackbox_exporter did not start") from None
                    time.sleep(0.05)

            def one(_: int) -> bool:  # a connection per probe, as Prometheus scrapes
                with urllib.request.urlopen(probe, timeout=30) as response:
                    return b"\nprobe_success 1" in response.read()

            cpu, started = _cpu_seconds(exporter.pid), time.perf_counter()
            with ThreadPoolExecutor(self.concurrency) as pool:
                passed = sum(pool.map(one, range(self.checks)))
            wall, cpu = time.perf_counter() - started, _cpu_seconds(exporter.pid) - cpu
            self.false_failures += passed != self.checks
            return Sample(wall, cpu, _peak_mb(exporter.pid))
        finally:
            exporter.terminate()
            exporter.wait(10)
            log.close()


def _loop_client(url: str, requests: int, concurrency: int) -> int:
    target = Target(url=url, timeout=30.0)
    exchanges = [target_exchange("api", target, "GET", "/health") for _ in range(requests)]

    def passed(_: int, answer: Answer) -> bool:
        response = answer.response
        return response is not None and response.status_code == 200 and bool(PATTERN.search(response.text))

    return sum(send_batch(exchanges, passed, concurrency=concurrency, budget=IN_FLIGHT_BYTES))


def _thread_clients(url: str, requests: int, concurrency: int) -> int:
    local = threading.local()
    opened: list[ProbeClient] = []

    def one(_: int) -> bool:
        if not hasattr(local, "client"):
            local.client = ProbeClient("api", Target(url=url, timeout=30.0), max_connections=1)
            opened.append(local.client)
        response = local.client.get("/health")
        return response.status_code == 200 and bool(PATTERN.search(response.text))

    try:
        with ThreadPoolExecutor(concurrency) as pool:
            return sum(pool.map(one, range(requests)))
    finally:
        for client in opened:
            client.close()


def _aiohttp(url: str, requests: int, concurrency: int) -> int:
    import asyncio

    import aiohttp

    async def run() -> int:
        connector = aiohttp.TCPConnector(limit=concurrency, use_dns_cache=False)
        async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
            gate = asyncio.Semaphore(concurrency)

            async def one() -> bool:
                async with (
                    gate,
                    asyncio.timeout(30),
                    session.get(f"{url}/health", allow_redirects=False) as r,
                ):
                    body = bytearray()
                    async for chunk in r.content.iter_any():
                        body += chunk
                    return r.status == 200 and bool(PATTERN.search(body.decode()))

            return sum(await asyncio.gather(*(one() for _ in range(requests))))

    return asyncio.run(run())


CLIENTS: dict[str, Callable[[str, int, int], int]] = {
    "the batch loop (libcurl multi)": _loop_client,
    "a thread and an httpx client per check": _thread_clients,
}
if importlib.util.find_spec("aiohttp") is not None:
    CLIENTS["aiohttp, one asyncio loop"] = _aiohttp


class InProcess:
    def __init__(self, client: Callable[[str, int, int], int], url: str, requests: int, concurrency: int):
        self.client, self.url, self.requests, self.concurrency = client, url, requests, concurrency
        self.false_failures = 0

    def __call__(self) -> Sample:
        passed: list[int] = []
        sample = in_process(lambda: passed.append(self.client(self.url, self.requests, self.concurrency)))
        self.false_failures += passed[0] != self.requests
        return sample


def clients(stack: ReferenceStack, args: argparse.Namespace) -> None:
    for requests, concurrency in itertools.product(args.checks, args.concurrency):
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp)
            (directory / "blackbox.yml").write_text(yaml.safe_dump(BLACKBOX_CONFIG))
            for label, client in CLIENTS.items():
                ours = InProcess(client, stack.api_url, requests, concurrency)
                anchor = Blackbox(directory, f"{stack.api_url}/health", requests, concurrency)
                mine, theirs = alternate(ours, anchor, args.rounds)
                name = f"HTTP only, {requests} requests @{concurrency}: {label} vs blackbox_exporter"
                wall, _, cpu, _ = rows(name, mine, theirs, per=requests, per_what="request")
                print(wall, cpu, sep="\n", flush=True)
                if ours.false_failures:
                    print(
                        f"| {name} | rounds with a failed request | {ours.false_failures} | | |", flush=True
                    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, nargs="+", default=[200, 1000, 5000])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[50, 256])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--clients", action="store_true", help="the HTTP part alone, per client")
    args = parser.parse_args()
    if not Path(EXPORTER).exists():
        raise SystemExit("prometheus-blackbox-exporter is not installed: run `make bench-deps`")

    print(HEADER)
    with ReferenceStack(env={"REFSTACK_API_KEY": ""}) as stack:
        stack.set_faults("api", latency_ms=args.latency_ms)
        if args.clients:
            clients(stack, args)
            return
        for checks, concurrency in itertools.product(args.checks, args.concurrency):
            with tempfile.TemporaryDirectory() as tmp:
                directory = Path(tmp)
                write_project(directory, stack, checks)
                project = Project(directory, checks, concurrency)
                anchor = Blackbox(directory, f"{stack.api_url}/health", checks, concurrency)
                ours, theirs = alternate(project, anchor, args.rounds)
            name = f"{checks} checks @{concurrency} vs blackbox_exporter"
            for row in rows(name, ours, theirs, per=checks, per_what="check"):
                print(row, flush=True)
            print(
                f"| {name} | runs with a failed check | {project.false_failures} of {project.runs} "
                f"| {anchor.false_failures} of {args.rounds + 1} | |",
                flush=True,
            )


if __name__ == "__main__":
    main()
