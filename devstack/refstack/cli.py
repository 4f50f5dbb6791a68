"""``slo reference-stack``: serve the API service and the LLM gateway until SIGTERM/SIGINT.

On startup one JSON line with both base URLs goes to stdout, so a parent process (see
:mod:`devstack.refstack.process`) learns the ports it asked the kernel to pick with port 0.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any

from devstack.refstack.api import FAULT_FIELDS as API_FAULT_FIELDS
from devstack.refstack.deployment import DEFAULT_MODELS
from devstack.refstack.faults import FaultError, Faults, validate_update
from devstack.refstack.gateway import FAULT_FIELDS as GATEWAY_FAULT_FIELDS
from devstack.refstack.stack import EmbeddedStack, StackOptions

API_KEY_ENV = "REFSTACK_API_KEY"
EPILOG = """\
API service: GET /health, /sandbox/status, /metrics
gateway:     GET /health/liveliness, /health/readiness, /health, /v1/models, /metrics;
             POST /v1/chat/completions (\"stream\": true for server-sent events)
both:        GET, PUT, DELETE /_faults (never faulted, no auth), for example
             curl -X PUT localhost:8080/_faults -d '{"error_rate": 0.1, "status": 502}'
On startup one JSON line with both base URLs is printed to stdout.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="slo reference-stack",
        description=(
            "Serve the reference deployment: an API service and an OpenAI-compatible LLM "
            "gateway, with injectable faults (flags here, or PUT /_faults at run time)."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument("--api-port", type=int, default=8080, help="API port, 0 picks a free one")
    parser.add_argument("--gateway-port", type=int, default=4000, help="gateway port, 0 picks a free one")
    parser.add_argument(
        "--api-key",
        default=os.environ.get(API_KEY_ENV) or None,
        help=f"require 'Authorization: Bearer KEY' (default ${API_KEY_ENV}, else no auth)",
    )
    parser.add_argument(
        "--models",
        default=",".join(DEFAULT_MODELS),
        help="comma-separated model names the gateway serves (default %(default)s)",
    )
    parser.add_argument("--seed", type=int, help="seed the error_rate dice, for repeatable runs")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    faults = parser.add_argument_group("faults (both services)")
    faults.add_argument("--latency-ms", type=float, help="added latency per request")
    faults.add_argument("--latency-jitter-ms", type=float, help="uniform +/- spread on latency")
    faults.add_argument("--error-rate", type=float, help="share of requests answered with --status")
    faults.add_argument("--status", type=int, help="HTTP status of injected errors (default 503)")
    faults.add_argument(
        "--hang", action="store_true", default=None, help="hold requests unanswered until cleared"
    )
    faults.add_argument("--malformed", action="store_true", default=None, help="answer 200 with invalid JSON")
    faults.add_argument(
        "--sandbox-violations", type=int, help="violations reported by the API (counted once)"
    )
    return parser


def _faults(values: dict[str, Any], fields: frozenset[str]) -> Faults:
    # The same validation as PUT /_faults, so flags and run-time updates agree on ranges.
    return Faults(**validate_update({k: v for k, v in values.items() if k in fields}, fields))


def parse_options(argv: Sequence[str]) -> StackOptions:
    """Turn the command line into :class:`StackOptions`; exits with status 2 on bad input."""
    parser = build_parser()
    args = parser.parse_args(argv)
    names = ("latency_ms", "latency_jitter_ms", "error_rate", "status", "hang", "malformed")
    given = {name: getattr(args, name) for name in (*names, "sandbox_violations")}
    given = {name: value for name, value in given.items() if value is not None}
    models = tuple(name.strip() for name in args.models.split(",") if name.strip())
    if not models:
        parser.error("--models needs at least one model name")
    try:
        api_faults = _faults(given, API_FAULT_FIELDS)
        gateway_faults = _faults(given, GATEWAY_FAULT_FIELDS)
    except FaultError as exc:
        flag = f"--{(exc.field or '').replace('_', '-')}"
        parser.error(f"{flag}: {exc}")
    return StackOptions(
        host=args.host,
        api_port=args.api_port,
        gateway_port=args.gateway_port,
        api_key=args.api_key,
        models=models,
        api_faults=api_faults,
        gateway_faults=gateway_faults,
        seed=args.seed,
        verbose=args.verbose,
    )


def main(argv: Sequence[str]) -> int:
    """Run the stack until SIGTERM or SIGINT; 0 on a clean stop, 1 if it cannot listen."""
    options = parse_options(argv)
    try:
        stack = EmbeddedStack(options)
    except OSError as exc:
        print(f"slo reference-stack: cannot listen on {options.host} {exc.strerror}", file=sys.stderr)
        return 1
    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, request_stop)
    with stack:
        print(json.dumps(stack.urls), flush=True)
        # A timeout keeps the main thread returning to the interpreter, where signal
        # handlers run, whatever the platform does with untimed lock waits.
        while not stopping.wait(timeout=1.0):
            pass
    return 0
