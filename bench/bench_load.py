"""CPU per request of `slo load` against plain Locust, on the same unsaturated target, paired.

Both drive the reference stack with FastHttpUser users pausing 50 ms between requests, so the
target is far from its ceiling and both send about the same number of requests: the ratio of
CPU per request is the price of the gate itself. Two figures of CPU per request:

- ``whole run``: the whole process tree's CPU (os.wait4; a descendant that outlives its
  parent is handed to this process and counted too) over Locust's own request count
  from each stats CSV: start-up, config, the verdict and the reports included, so it depends
  on the run's length (the gate's fixed costs are spread over more requests in a longer run).
- ``steady``: the process tree's CPU (sampled with psutil every 0.5 s) over the requests
  Locust counted (its stats history CSV, one row a second) between 3 s after the first request
  and 1 s before the last row: the per-request price, with every fixed cost left out on
  both sides.

Two scenarios:

- ``health``: ``GET /health`` (the target's ceiling is measured with `wrk` first, printed
  beside); the price is exact recording of every response time, the CPU clock, the verdict.
- ``stream``: the `chat_stream` scenario, streamed chat completions with the same prompt mix
  (6 : 3 : 1 short, medium, long); plain Locust reads the same event stream line by line and
  checks it ([DONE], content, no error event) without any timing. The price is the token
  timing (every content delta timed, first token and tokens/s computed) and its recording in
  two more exact histograms. A last row prices the same per-answer work in this process,
  without Locust: reading, timing and recording 24-token answers against plain parsing.

    python bench/bench_load.py [--scenario health|stream] [--users 10] [--duration 20s]
                               [--rounds 3] [--workers 0]
"""

from __future__ import annotations

import argparse
import csv
import ctypes
import functools
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from paired import HEADER, Sample, alternate, in_process, rows

from devstack.refstack import ReferenceStack
from slo.exchange.body import split_lines
from slo.loadgate import stream as judged
from slo.loadgate.samples import EndpointRecord
from slo.units import parse_duration

ROOT = Path(__file__).resolve().parents[1]

PLAIN_LOCUSTFILE = """\
from locust import FastHttpUser, constant, task

THINK = {think}


class Health(FastHttpUser):
    wait_time = constant(THINK)

    @task
    def health(self):
        with self.client.get("/health", catch_response=True) as response:
            if response.status_code == 200 and response.json().get("status") != "healthy":
                response.failure("not healthy")
"""


PLAIN_STREAM_LOCUSTFILE = """\
import json

from locust import FastHttpUser, constant, task

THINK = {think}
CODE = "def merge(intervals):\\n" + "    return sorted(intervals)\\n" * 9 + "\\n"


class ChatStream(FastHttpUser):
    wait_time = constant(THINK)

    @task(6)
    def short(self):
        self.stream("Reply with the word pong.", 16)

    @task(3)
    def medium(self):
        self.stream("Review this function and name one bug:\\n\\n" + CODE * 4, 128)

    @task(1)
    def long(self):
        self.stream("Summarize what these modules do, one line each:\\n\\n" + CODE * 30, 256)

    def stream(self, prompt, max_tokens):
        request = {{
            "model": "claude-sonnet-4",
            "messages": [{{"role": "user", "content": prompt}}],
            "max_tokens": max_tokens,
            "stream": True,
            "stream_options": {{"include_usage": True}},
        }}
        headers = {{"Accept": "text/event-stream", "Accept-Encoding": "identity"}}
        with self.client.post(
            "/v1/chat/completions", json=request, headers=headers, stream=True, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure("status")
                return
            done = content = False
            while True:
                line = response._response.readline(b"\\n")
                if not line:
                    break
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    done = True
                    continue
                chunk = json.loads(data)
                if "error" in chunk:
                    break
                choices = chunk.get("choices") or [{{}}]
                content = content or bool((choices[0].get("delta") or {{}}).get("content"))
            if not (done and content):
                response.failure("broken stream")
"""

THINK_SECONDS = 0.05
#: The scenario of each `--scenario`, as `slo load` names it, and the target it needs.
SCENARIOS = {"health": ("api_health", "api"), "stream": ("chat_stream", "gateway")}


#: The steady window: from this long after the first request to this long before the end.
_STEADY_AFTER_FIRST = 3.0
_STEADY_BEFORE_END = 1.0
_SAMPLE_EVERY = 0.5
#: With workers, Locust's count moves in 3 s steps: a shorter window would mostly measure them.
_STEADY_MIN = 9.0


@dataclass(frozen=True)
class LoadSample(Sample):
    """`cpu` is CPU per request over the whole run; `steady` over the steady window."""

    steady: float


def request_count(stats_csv: Path) -> int:
    with stats_csv.open(newline="") as file:
        aggregated = next(row for row in csv.DictReader(file) if row["Name"] == "Aggregated")
    return int(aggregated["Request Count"])


def request_history(history_csv: Path) -> list[tuple[float, int]]:
    """(unix time, requests so far) once a second, from Locust's stats history CSV."""
    with history_csv.open(newline="") as file:
        return [
            (float(row["Timestamp"]), int(row["Total Request Count"]))
            for row in csv.DictReader(file)
            if row["Name"] == "Aggregated"
        ]


def _tree_cpu(root: psutil.Process, seen: set[int]) -> float:
    total = 0.0
    children = root.children(recursive=True)
    seen.update(child.pid for child in children)
    for process in [root, *children]:
        try:
            times = process.cpu_times()
        except psutil.Error:  # ended between the listing and the reading
            continue
        total += times.user + times.system
    return total


def _interpolate(points: list[tuple[float, float]], at: float) -> float:
    for (t0, v0), (t1, v1) in itertools.pairwise(points):
        if t0 <= at <= t1:
            return v0 + (v1 - v0) * (at - t0) / max(t1 - t0, 1e-9)
    raise ValueError(f"no samples around {at}")


_PR_SET_CHILD_SUBREAPER = 36
#: How long a descendant that outlived its parent may take to end once that parent has.
_ORPHAN_WAIT = 10.0


def become_subreaper() -> None:
    """Make this process the one a descendant is handed to when its parent ends without
    waiting for it (Linux), so its CPU is still counted: a Locust master may end before the
    workers it forked (its exit code takes a worker that has not ended yet for one that has)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit(f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(ctypes.get_errno())}")


def _reap_orphans(descendants: set[int]) -> float:
    """CPU seconds of the descendants handed to this process (see become_subreaper)."""
    cpu = 0.0
    deadline = time.monotonic() + _ORPHAN_WAIT
    for pid in sorted(descendants):
        while True:
            try:
                reaped, _, usage = os.wait4(pid, os.WNOHANG)
            except ChildProcessError:  # not ours: its own parent waited for it
                break
            if reaped:
                cpu += usage.ru_utime + usage.ru_stime
                break
            if time.monotonic() > deadline:
                sys.exit(f"process {pid} did not end within {_ORPHAN_WAIT:g} s of its parent")
            time.sleep(0.05)
    return cpu


def run_sampled(command: list[str], cwd: Path, log: Path) -> tuple[Sample, list[tuple[float, float]], int]:
    """One whole process tree: wall, CPU (os.wait4, as bench/paired.py, plus descendants
    that outlived their parent) and peak RSS, its exit code, and (unix time, tree CPU
    seconds) every half second while it runs."""
    samples: list[tuple[float, float]] = []
    descendants: set[int] = set()
    with log.open("wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=cwd, env=dict(os.environ), stdout=out, stderr=subprocess.STDOUT
        )
        root = psutil.Process(process.pid)
        done = threading.Event()

        def sample() -> None:
            while not done.wait(_SAMPLE_EVERY):
                try:
                    samples.append((time.time(), _tree_cpu(root, descendants)))
                except psutil.Error:
                    return

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        done.set()
        sampler.join()
    cpu = usage.ru_utime + usage.ru_stime + _reap_orphans(descendants)
    whole = Sample(wall, cpu, usage.ru_maxrss / 1024)
    return whole, samples, os.waitstatus_to_exitcode(status)


def per_request(whole: Sample, cpu: list[tuple[float, float]], prefix: str) -> LoadSample:
    """CPU per request over the whole run (in `cpu`) and over the steady window."""
    history = request_history(Path(f"{prefix}_stats_history.csv"))
    first = next(t for t, requests in history if requests > 0)
    start, end = first + _STEADY_AFTER_FIRST, history[-1][0] - _STEADY_BEFORE_END
    if end - start < _STEADY_MIN:
        sys.exit(f"the steady window is {end - start:.0f} s: give a --duration of at least 15s")
    counts = [(t, float(requests)) for t, requests in history]
    requests = _interpolate(counts, end) - _interpolate(counts, start)
    steady = (_interpolate(cpu, end) - _interpolate(cpu, start)) / max(requests, 1.0)
    total = request_count(Path(f"{prefix}_stats.csv"))
    return LoadSample(whole.wall, whole.cpu / max(total, 1), whole.peak_mb, steady)


def wrk_ceiling(url: str, seconds: int = 3) -> str:
    """The target's own ceiling: requests/s `wrk` gets from it with 10 connections."""
    if not shutil.which("wrk"):
        return "wrk not installed (make bench-deps)"
    completed = subprocess.run(
        ["wrk", "-t1", "-c10", f"-d{seconds}s", url], capture_output=True, text=True, check=False
    )
    found = re.search(r"Requests/sec:\s+([0-9.]+)", completed.stdout)
    return f"{float(found.group(1)):.0f} requests/s" if found else "wrk failed"


def run_slo_load(work: Path, stack: ReferenceStack, args: argparse.Namespace) -> Sample:
    config = work / "monitoring.yaml"
    scenario, target = SCENARIOS[args.scenario]
    url = stack.api_url if target == "api" else stack.gateway_url
    config.write_text(
        json.dumps(
            {
                "environments": {"local": {"targets": {target: {"url": url}}}},
                "load": {
                    "users": args.users,
                    "spawn_rate": args.users,
                    "duration": args.duration,
                    "scenarios": {scenario: 1},
                    "think_time_min": THINK_SECONDS,
                    "think_time_max": THINK_SECONDS,
                },
            }
        )
    )
    reports = work / "slo"
    command = [sys.executable, "-m", "slo", "load", "--config", str(config)]
    command += ["--locustfile", str(ROOT / "load" / "locustfile.py"), "--report-dir", str(reports)]
    command += ["--workers", str(args.workers)]
    # Exit 1 or 2 is a verdict, not a broken run: the cost is what is measured here.
    whole, cpu, code = run_sampled(command, work, work / "slo-load.log")
    if code not in (0, 1, 2):
        sys.exit(f"slo load failed ({code}):\n{(work / 'slo-load.log').read_text()[-3000:]}")
    return per_request(whole, cpu, str(reports / "locust"))


def run_plain_locust(work: Path, stack: ReferenceStack, args: argparse.Namespace) -> Sample:
    locustfile = work / "plain_locustfile.py"
    plain = PLAIN_STREAM_LOCUSTFILE if args.scenario == "stream" else PLAIN_LOCUSTFILE
    locustfile.write_text(plain.format(think=THINK_SECONDS))
    prefix = work / "plain"
    host = stack.gateway_url if args.scenario == "stream" else stack.api_url
    command = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless"]
    command += ["--host", host, "--users", str(args.users), "--spawn-rate", str(args.users)]
    command += ["--run-time", f"{round(parse_duration(args.duration))}s", "--csv", str(prefix)]
    command += ["--processes", str(args.workers)] if args.workers else []
    whole, cpu, code = run_sampled(command, work, work / "plain.log")
    if not Path(f"{prefix}_stats.csv").exists():
        sys.exit(f"plain Locust failed ({code}):\n{(work / 'plain.log').read_text()[-3000:]}")
    return per_request(whole, cpu, str(prefix))


#: One streamed answer as the socket hands it over: a chunk per word, finish, usage, [DONE].
_WORDS = 24
_CHUNK = b'data: {"id":"c","object":"chat.completion.chunk","choices":%s%s}\n\n'
_STREAM_PIECES = [_CHUNK % (b'[{"index":0,"delta":{"content":"word "}}]', b"")] * _WORDS + [
    _CHUNK % (b'[{"index":0,"delta":{},"finish_reason":"stop"}]', b""),
    _CHUNK % (b"[]", b',"usage":{"completion_tokens":%d}' % _WORDS),
    b"data: [DONE]\n\n",
]
_IN_PROCESS_STREAMS = 5000


def timed_streams() -> None:
    """What `chat_stream` does per answer besides Locust: split lines, read and time every
    delta, judge the stream, record its total, first token and rate exactly."""
    record = EndpointRecord("POST", "/v1/chat/completions")
    for _ in range(_IN_PROCESS_STREAMS):
        stream = judged.ChatStream(judged.TokenTiming(time.perf_counter()))
        judged.read_chat_stream(split_lines(iter(_STREAM_PIECES)), stream)
        assert judged.problem(stream) is None
        record.record(12.5, False, judged.sample(stream))


def plain_streams() -> None:
    """What the plain locustfile does per answer: lines, JSON, the same checks, no timing."""
    for _ in range(_IN_PROCESS_STREAMS):
        done = content = False
        for piece in _STREAM_PIECES:
            for line in piece.split(b"\n"):
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    done = True
                    continue
                chunk = json.loads(data)
                choices = chunk.get("choices") or [{}]
                content = content or bool((choices[0].get("delta") or {}).get("content"))
        assert done
        assert content


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="health")
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--duration", default="20s", help="per run: long enough to amortize start-up")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0, help="Locust worker processes")
    args = parser.parse_args()
    become_subreaper()
    print(HEADER)
    with tempfile.TemporaryDirectory() as temp, ReferenceStack() as stack:
        work = Path(temp)
        ceiling = wrk_ceiling(f"{stack.api_url}/health") if args.scenario == "health" else None
        ours, plain = alternate(
            functools.partial(run_slo_load, work, stack, args),
            functools.partial(run_plain_locust, work, stack, args),
            args.rounds,
        )
    name = f"slo load vs plain Locust, {args.scenario}, {args.users} users, {args.workers} workers"
    print(*rows(name, ours, plain, cpu=("CPU per request, whole run", "µs", 1e6)), sep="\n")
    steady = [
        rows(
            name,
            *[[Sample(s.wall, s.steady, s.peak_mb) for s in side] for side in (ours, plain)],
            cpu=("CPU per request, steady", "µs", 1e6),
        )[1]
    ]
    print(*steady, sep="\n")
    if ceiling is not None:
        print(f"| {name} | target ceiling (wrk -c10) | {ceiling} | | |")
    if args.scenario == "stream":
        ours, plain = alternate(
            functools.partial(in_process, timed_streams),
            functools.partial(in_process, plain_streams),
            args.rounds,
        )
        what = f"token timing in process, {_WORDS}-token answers"
        per = ("CPU per answer", "µs", 1e6 / _IN_PROCESS_STREAMS)
        print(*[row for row in rows(what, ours, plain, cpu=per) if "| CPU per answer |" in row], sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
