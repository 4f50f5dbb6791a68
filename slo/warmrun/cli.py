"""`slo run --every D [--runs N] [--jitter D] [--run-timeout D] [--healthz [HOST:]PORT] -- [pytest args]`.

The probes on a schedule from one long-lived process: it imports pytest, the plugin, the
probe modules and the HTTP stack once (:mod:`slo.warmrun.warmup`), then forks a child per
tick that runs the probe session exactly as `pytest probes/` would (:mod:`slo.warmrun.child`,
:mod:`slo.warmrun.runner`). The pytest arguments after ``--`` are a cold run's (default
``probes/``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from slo.cliargs import ArgumentParser, fail
from slo.conventions import USAGE_ERROR
from slo.stopping import STOPPED_EXIT
from slo.units import parse_duration
from slo.warmrun.healthz import parse_address
from slo.warmrun.plan import INTERRUPTED_EXIT, Plan

__all__ = ["DEFAULT_ARGS", "RUN_TIMEOUT", "main"]

#: What a run collects when no pytest arguments are given.
DEFAULT_ARGS = ("probes/",)
#: The shipped systemd unit's TimeoutStartSec and the CronJob's activeDeadlineSeconds.
RUN_TIMEOUT = "4m"


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="slo run",
        description="Run the probes every DURATION from one warm process (a forked child per run). "
        "Arguments after -- go to pytest, as in `pytest probes/`.",
    )
    parser.add_argument("--every", required=True, metavar="DURATION", help="period between runs (e.g. 1m)")
    parser.add_argument(
        "--runs", type=int, metavar="N", help="stop after N runs (default: run until stopped)"
    )
    parser.add_argument(
        "--jitter",
        default="0s",
        metavar="D",
        help="delay each run by a random time up to D (spreads a fleet)",
    )
    parser.add_argument(
        "--run-timeout",
        default=RUN_TIMEOUT,
        metavar="D",
        help=f"SIGTERM a run that takes longer (it still records and pushes; default {RUN_TIMEOUT})",
    )
    parser.add_argument(
        "--healthz", metavar="[HOST:]PORT", help="serve GET /healthz on this address (liveness)"
    )
    return parser


def _duration(flag: str, value: str, *, positive: bool) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"slo run: {flag}: {exc}") from None
    if seconds < 0 or (positive and seconds == 0):
        raise ValueError(
            f"slo run: {flag}: must be {'positive' if positive else 'zero or more'}, got {value!r}"
        )
    return seconds


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    own, pytest_args = (
        (args[: args.index("--")], args[args.index("--") + 1 :]) if "--" in args else (args, [])
    )
    options = _parser().parse_args(own)
    try:
        if options.runs is not None and options.runs < 1:
            raise ValueError(f"slo run: --runs: must be 1 or more, got {options.runs}")
        plan = Plan(
            every=_duration("--every", options.every, positive=True),
            jitter=_duration("--jitter", options.jitter, positive=False),
            runs=options.runs,
            run_timeout=_duration("--run-timeout", options.run_timeout, positive=True),
            healthz=parse_address(options.healthz) if options.healthz else None,
            pytest_args=pytest_args or list(DEFAULT_ARGS),
            argv=args,
        )
    except ValueError as exc:
        return fail(str(exc))
    return _serve(plan)


def _serve(plan: Plan) -> int:
    # First: what a run imports is imported here under pytest's import hook, as in a run.
    from slo.warmrun.warmup import warm_up

    warm = warm_up(list(plan.pytest_args))
    if warm.stopped:
        return STOPPED_EXIT if warm.exit_code == STOPPED_EXIT else INTERRUPTED_EXIT
    if warm.exit_code == USAGE_ERROR:
        # pytest's own one-line error (a broken config, an unknown flag): the runs would all fail.
        print(warm.output.strip(), file=sys.stderr)
        return USAGE_ERROR
    from slo.warmrun.runner import Runner, say
    from slo.warmrun.watch import Watch, imported_files, package_dir

    watched = imported_files(package_dir(), warm.rootpath)
    watched |= warm.probe_dirs
    if warm.config_file is not None:
        watched.add(warm.config_file)
    watch = Watch(sorted(watched))
    say(
        f"warm: every {plan.every:g} s, pytest {' '.join(plan.pytest_args)}; "
        f"watching {len(watch)} files for changes"
    )
    try:
        return Runner(plan, watch).serve()
    except OSError as exc:  # the /healthz address taken, most likely
        return fail(f"slo run: {exc.strerror or exc}")
