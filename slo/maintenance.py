"""`slo maintenance`: open, close and list maintenance windows, from a deploy pipeline or a shell.

    slo maintenance start --target api --for 30m --reason "database upgrade"
    slo maintenance end --target api
    slo maintenance list

An ad-hoc window is stored in the Pushgateway (:mod:`slo.report.maintenance`), so every runner
of the fleet sees it at the start of its next run; `list` also shows the configured windows
open now. While a window covers a target, its runs are no SLI events and no alert fires for
it but the `SyntheticMaintenance` notice. Exit 0 when done, 1 when the Pushgateway could not
be written or read, 4 for usage and config errors.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from slo.cliargs import ArgumentParser, fail
from slo.config import Config, ConfigError, PushgatewaySettings, load_config
from slo.config.maintenance import open_windows
from slo.objectives.maintenance import window_rows
from slo.options import Resolved, add_cli_options, override, parse_cli
from slo.report.maintenance import close_ad_hoc, open_ad_hoc, read_ad_hoc
from slo.report.push import GroupsError
from slo.tables import table
from slo.units import format_utc, parse_duration

__all__ = ["main"]


def _parser() -> ArgumentParser:
    parser = ArgumentParser(prog="slo maintenance", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="action", required=True, metavar="{start,end,list}")
    start = commands.add_parser("start", help="open an ad-hoc window now")
    end = commands.add_parser("end", help="close the ad-hoc window of a target")
    listing = commands.add_parser("list", help="the windows open now")
    for command in (start, end):
        command.add_argument(
            "--target", dest="targets", action="append", required=True, help="target name (repeatable)"
        )
    start.add_argument("--for", dest="duration", required=True, help="how long, e.g. 30m, 2h")
    start.add_argument(
        "--reason",
        default="",
        help="one line: why (shown by `slo maintenance list`, `slo budget` and `slo report`)",
    )
    for command in (start, end, listing):
        add_cli_options(command, ["config", "env", "pushgateway"])
    return parser


def _list(config: Config, settings: PushgatewaySettings, now: float) -> int:
    """The windows open now; the ad-hoc ones only where a Pushgateway is named."""
    ad_hoc = []
    if settings.url:
        try:
            ad_hoc = [w for w in read_ad_hoc(settings, config.env_name) if w.open_at(now)]
        except GroupsError as exc:
            return fail(f"slo maintenance: {exc}", 1)
    found = [*open_windows(config.maintenance, now), *ad_hoc]
    if found:
        print("\n".join(table(window_rows(found))))
    else:
        print(f"slo maintenance: no window open in {config.env_name!r}")
    if not settings.url:
        print("slo maintenance: no Pushgateway named (--pushgateway): ad-hoc windows not read")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_cli(_parser(), argv)
    try:
        config = load_config(args.config, args.env, secrets=True, flag="--config")
        settings = config.pushgateway
        if args.pushgateway:
            settings = override(settings, "url", Resolved(args.pushgateway, "--pushgateway"))
        seconds = parse_duration(args.duration) if args.action == "start" else 0.0
    except (ConfigError, ValueError) as exc:
        return fail(f"slo maintenance: {exc}")
    for target in getattr(args, "targets", []):
        if target not in config.known_targets:
            known = ", ".join(sorted(config.known_targets))
            return fail(f"slo maintenance: --target: unknown target {target!r} (known: {known})")
    if args.action == "start" and seconds <= 0:
        return fail("slo maintenance: --for: give a duration over zero, e.g. 30m")
    now = time.time()
    if args.action == "list":
        return _list(config, settings, now)
    if not settings.url:
        return fail("slo maintenance: give --pushgateway URL, set PUSHGATEWAY_URL or pushgateway.url")
    failed = 0
    for target in args.targets:
        if args.action == "start":
            result = open_ad_hoc(settings, config.env_name, target, now, now + seconds, args.reason)
            done = f"window open until {format_utc(now + seconds)}"
        else:
            result = close_ad_hoc(settings, config.env_name, target)
            done = "window closed"
        if result.ok:
            print(f"slo maintenance: {target} ({config.env_name}): {done}")
        else:
            failed += 1
            print(f"slo maintenance: {target}: FAILED: {result.error}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
