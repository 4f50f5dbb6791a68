"""`slo load`: run the Locust scenarios headless, judge the thresholds, exit with the verdict.

Exit status: 0 pass, 1 fail, 2 inconclusive, 4 a usage or config mistake (one line, no
traceback). With ``--baseline`` a regression against the last good run is a fail and a
comparison that cannot be made is inconclusive (see :mod:`slo.loadgate.baseline`).
Flags beat environment variables (``SLO_CONFIG``, ``SLO_ENV``), which beat the
config file, which beats the built-in defaults.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from slo import conventions, redact
from slo.cliargs import ArgumentParser, UsageError, fail
from slo.config import Config, ConfigError, PushgatewaySettings, load_config
from slo.loadgate.baseline import BaselineError, compare_with, save_baseline
from slo.loadgate.runner import LoadRun, LocustFailure, run_locust
from slo.loadgate.summary import RunInfo, failed_summary, render, summary, with_baseline, write_summary
from slo.loadgate.verdict import evaluate
from slo.options import add_cli_options, override, pushgateway_values, resolve, sources_from_cli
from slo.units import parse_duration

__all__ = ["EXIT_CODES", "main"]

EXIT_CODES = {"pass": 0, "fail": 1, "inconclusive": 2}
INTERRUPTED = 130
#: The scenarios, relative to the directory of the config file (the probe project).
DEFAULT_LOCUSTFILE = Path("load") / "locustfile.py"
#: Locust reports and the summary above this size are left as they are (never read whole).


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _local_workers(text: str) -> int:
    """Locust workers on this machine: one per usable CPU at most (each is a busy process;
    more only adds memory and contention, and a typo of 1000 would start 1000 of them)."""
    count = _count(text)
    if count > _cpus():
        raise argparse.ArgumentTypeError(
            f"{text!r} is more than this machine's {_cpus()} CPUs (Locust runs one worker per core)"
        )
    return count


def _number(text: str, kind: type[int] | type[float], minimum: float, what: str) -> Any:
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or value < minimum or (minimum == 0 and kind is float and value == 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
    return value


def _positive_int(text: str) -> int:
    return int(_number(text, int, 1, "a positive integer"))


def _count(text: str) -> int:
    return int(_number(text, int, 0, "a non-negative integer"))


def _rate(text: str) -> float:
    return float(_number(text, float, 0, "a positive number"))


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_duration(text: str) -> float:
    seconds = _duration(text)
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be more than 0s")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="slo load",
        description=(
            "Run the Locust scenarios (load/locustfile.py) headless against the selected "
            "environment and gate on exact latency percentiles and error rates with "
            "confidence bounds, and against the last good run with --baseline. "
            "Exit 0 pass, 1 fail or regressed, 2 inconclusive, 4 usage error."
        ),
    )
    where = parser.add_argument_group("what to load")
    add_cli_options(where, ["config", "env"])
    where.add_argument(
        "--locustfile",
        metavar="PATH",
        type=Path,
        help=f"scenarios (default: {DEFAULT_LOCUSTFILE} beside the config file)",
    )
    how = parser.add_argument_group("how hard (default: the config's load: section)")
    how.add_argument("--users", metavar="N", type=_positive_int, help="simulated users")
    how.add_argument("--spawn-rate", metavar="RATE", type=_rate, help="users started per second")
    how.add_argument(
        "--duration",
        metavar="TIME",
        type=_positive_duration,
        help="measured time after the warm-up, e.g. 30s, 5m",
    )
    how.add_argument(
        "--warmup", metavar="TIME", type=_duration, help="time at the start left out of the verdict"
    )
    distributed = parser.add_argument_group("distributed (Locust master and workers)")
    distributed.add_argument(
        "--workers",
        metavar="N",
        type=_local_workers,
        default=0,
        help="worker processes to start on this machine (at most one per CPU)",
    )
    distributed.add_argument(
        "--expect-workers", metavar="N", type=_count, default=0, help="workers started elsewhere to wait for"
    )
    distributed.add_argument(
        "--master-bind-host",
        metavar="HOST",
        default=None,
        help="address workers connect to (default 127.0.0.1, or * with --expect-workers)",
    )
    distributed.add_argument(
        "--master-bind-port",
        metavar="PORT",
        type=_count,
        default=0,
        help="port workers connect to (default: a free port, 5557 with --expect-workers)",
    )
    distributed.add_argument(
        "--worker-wait",
        metavar="TIME",
        type=_duration,
        default=60.0,
        help="how long to wait for workers to connect (default 60s)",
    )
    against = parser.add_argument_group("against the last good run")
    against.add_argument(
        "--baseline",
        metavar="SUMMARY",
        type=Path,
        help="compare with this passing run (its summary.json or a --save-baseline file): "
        "a regression fails the run, missing or mismatched evidence is inconclusive",
    )
    against.add_argument(
        "--allow-inconclusive",
        action="store_true",
        help="let comparisons that cannot be made (first run, other config, too few samples) pass",
    )
    against.add_argument(
        "--save-baseline",
        metavar="PATH",
        type=Path,
        help="if this run passes, keep its histograms here as the next runs' baseline",
    )
    output = parser.add_argument_group("output")
    output.add_argument(
        "--report-dir",
        metavar="DIR",
        type=Path,
        default=conventions.LOAD_REPORTS,
        help="where summary.json, Locust's HTML and CSV go (default %(default)s)",
    )
    add_cli_options(output, ["pushgateway", "no_push"])
    output.add_argument(
        "--verbose", action="store_true", help="show Locust's output instead of logging it to the report dir"
    )
    return parser  # fmt: skip


def _load(args: argparse.Namespace) -> Config:
    sources = sources_from_cli(args)
    config = load_config(
        str(resolve("config", sources).value), str(resolve("env", sources).value), flag="--config"
    )
    overrides = {
        "users": args.users,
        "spawn_rate": args.spawn_rate,
        "duration": args.duration,
        "warmup": args.warmup,
    }
    updates = {key: value for key, value in overrides.items() if value is not None}
    return config.model_copy(update={"load": config.load.model_copy(update=updates)})


def _load_run(args: argparse.Namespace, config: Config) -> LoadRun:
    # The scenarios belong to the project the config belongs to, wherever `slo load` runs.
    locustfile = args.locustfile or config.source.parent / DEFAULT_LOCUSTFILE
    if not locustfile.is_file():
        raise UsageError(f"{locustfile}: locustfile not found (use --locustfile)")
    remote = args.expect_workers > 0
    settings = config.load
    timeouts = [target.timeout for target in config.environment.targets.values()]
    return LoadRun(
        locustfile=locustfile,
        config_path=config.source,
        env_name=config.env_name,
        report_dir=args.report_dir,
        users=settings.users,
        spawn_rate=settings.spawn_rate,
        warmup=settings.warmup,
        duration=settings.duration,
        stop_timeout=max(timeouts, default=5.0) + 1.0,
        workers=args.workers,
        remote_workers=args.expect_workers,
        master_bind_host=args.master_bind_host or ("*" if remote else "127.0.0.1"),
        master_bind_port=args.master_bind_port or (5557 if remote else 0),
        worker_wait=args.worker_wait,
        verbose=args.verbose,
    )


def _push_settings(args: argparse.Namespace, config: Config) -> PushgatewaySettings | None:
    """Where to push, or None; checked before the run, so a bad URL never wastes one."""
    sources = sources_from_cli(args, pushgateway_values(config.pushgateway), str(config.source))
    if resolve("no_push", sources).value:
        return None
    settings = config.pushgateway
    try:
        for name, field_name in (("pushgateway", "url"), ("instance", "instance")):
            settings = override(settings, field_name, resolve(name, sources))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return settings if settings.url else None


def _push(settings: PushgatewaySettings | None, data: dict[str, Any]) -> bool:
    """Push when configured; False only when a required push failed."""
    if settings is None:
        return True
    # The push's HTTP stack is imported only when pushing.
    from slo.loadgate.push import push_summary

    result = push_summary(data, settings, time.time())
    if result.ok:
        print(f"pushed to {result.url} (job {conventions.LOAD_JOB})")
        return True
    print(f"warning: push to the Pushgateway failed: {result.error}", file=sys.stderr)
    return not settings.required


def _scrub_reports(directory: Path) -> None:
    """Locust writes the host URL and failure messages into its HTML, CSV and log files: take
    out every secret the config and command line carry (passwords in URLs, tokens echoed in
    failure messages) before anyone reads them."""
    for path in directory.iterdir():
        redact.scrub_file(path)


def _save_baseline(path: Path, data: dict[str, Any]) -> None:
    """Keep a passing run as the baseline; a run that did not pass leaves the old one alone."""
    try:
        save_baseline(path, data)
    except BaselineError as exc:
        print(f"slo load: {exc}", file=sys.stderr)
    else:
        print(f"baseline: {path}")


def _write_page(directory: Path, data: dict[str, Any]) -> None:
    """Our own ``index.html`` beside Locust's: the verdict and the exact percentile curves."""
    from slo.loadgate.page import read_load_results, write_load_page

    problems: list[str] = []
    try:
        path = write_load_page(directory, data, read_load_results(directory, problems))
    except OSError as exc:
        problems.append(f"cannot write the page in {directory}: {exc.strerror or exc}")
    except Exception as exc:  # a page that cannot be drawn must never change the verdict
        problems.append(f"no page in {directory}: {type(exc).__name__}: {exc}")
    else:
        print(f"page: {path}")
    for problem in problems:
        print(redact.scrub(f"warning: {problem}"), file=sys.stderr)


def main(argv: Sequence[str]) -> int:
    try:
        args = build_parser().parse_args(list(argv))
        config = _load(args)
        run = _load_run(args, config)
        push_to = _push_settings(args, config)
    except (UsageError, ConfigError) as exc:
        return fail(f"slo load: {exc}")
    workers = run.workers + run.remote_workers
    info = RunInfo(config.env_name, config.source, config.load, workers, run.report_dir)
    summary_path = run.report_dir / "summary.json"
    run.report_dir.mkdir(parents=True, exist_ok=True)
    # A stale summary must never be read as this run's verdict.
    summary_path.unlink(missing_ok=True)
    try:
        results = run_locust(run)
    except LocustFailure as exc:
        if exc.config_error:
            return fail(redact.scrub(f"slo load: {exc}"))
        print(redact.scrub(f"slo load: {exc}"), file=sys.stderr)
        if exc.log_tail:
            print(f"last lines of {run.log_path}:", file=sys.stderr)
            print(redact.scrub("\n".join(f"  | {line}" for line in exc.log_tail)), file=sys.stderr)
        data = failed_summary(info, redact.scrub(str(exc)))
    except KeyboardInterrupt:
        print("slo load: interrupted", file=sys.stderr)
        return INTERRUPTED
    else:
        data = summary(evaluate(results, config.load), results, info)
    if args.baseline is not None:
        with_baseline(data, compare_with(data, args.baseline, config.load, args.allow_inconclusive))
    write_summary(summary_path, data)
    _scrub_reports(run.report_dir)
    _write_page(run.report_dir, data)
    print(redact.scrub(render(data)))
    print(f"summary: {summary_path}")
    if args.save_baseline is not None:
        _save_baseline(args.save_baseline, data)
    pushed = _push(push_to, data)
    code = EXIT_CODES[data["verdict"]]
    return code if pushed or code else EXIT_CODES["fail"]
