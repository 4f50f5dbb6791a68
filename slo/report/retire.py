"""`slo retire`: delete a runner's (or a whole location's) groups from the Pushgateway.

    slo retire --instance runner-eu-1 --dry-run
    slo retire --location eu-west --env production

The Pushgateway never forgets a group: a runner that was switched off leaves its last push
behind for ever, its last results frozen. Its run counters stop growing, so the SLIs already
ignore it (a location without runs in a window does not count, see
:mod:`slo.objectives.rules.quorum`), but `SyntheticProbesStale` keeps naming it and its last
results stay on dashboards. Retiring deletes the groups of the job (`pushgateway.job`) and
environment (`--env`) whose instance or location matches, so nothing of that runner can count
as healthy or page again. Exit 0 when every matching group was deleted (or, with
``--dry-run``, listed), 1 when the Pushgateway could not list or delete, 4 for usage errors.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from slo.cliargs import ArgumentParser, fail
from slo.config import ConfigError, load_config
from slo.options import Resolved, add_cli_options, override, parse_cli
from slo.report.push import GroupsError, delete_group, list_groups
from slo.tables import table

__all__ = ["main", "matching"]


def _parser() -> ArgumentParser:
    parser = ArgumentParser(prog="slo retire", description=__doc__.split("\n\n")[0])
    add_cli_options(parser, ["config", "env", "pushgateway"])
    # Not `instance` / `location`: those are the options of the runner itself (slo.options).
    parser.add_argument(
        "--instance", dest="instances", action="append", default=[], help="runner to retire (repeatable)"
    )
    parser.add_argument(
        "--location",
        dest="locations",
        action="append",
        default=[],
        help="retire every runner of this location (repeatable)",
    )
    parser.add_argument("--dry-run", action="store_true", help="list the groups, delete nothing")
    return parser


def matching(
    groups: Sequence[dict[str, str]],
    job: str,
    environment: str,
    instances: Sequence[str],
    locations: Sequence[str],
) -> list[dict[str, str]]:
    """The groups of `job` and `environment` whose instance is in `instances` or whose location
    is in `locations`. A group pushed before locations existed has none: ``--location ''``
    selects those (and only those)."""
    return [
        group
        for group in groups
        if group.get("job") == job
        and group.get("environment") == environment
        and (group.get("instance") in instances or group.get("location", "") in locations)
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_cli(_parser(), argv)
    if not args.instances and not args.locations:
        return fail("slo retire: give --instance NAME or --location NAME (what to retire)")
    try:
        config = load_config(args.config, args.env)
        settings = config.pushgateway
        if args.pushgateway:
            settings = override(settings, "url", Resolved(args.pushgateway, "--pushgateway"))
    except (ConfigError, ValueError) as exc:
        return fail(str(exc))
    if not settings.url:
        return fail("slo retire: give --pushgateway URL, set PUSHGATEWAY_URL or pushgateway.url")
    try:
        groups = list_groups(settings)
    except GroupsError as exc:
        return fail(f"slo retire: {exc}", 1)
    found = matching(groups, settings.job, config.env_name, args.instances, args.locations)
    if not found:
        print(f"slo retire: no group of job {settings.job!r}, environment {config.env_name!r} matches")
        return 0
    rows = []
    failed = 0
    for group in found:
        if args.dry_run:
            result = "would delete"
        else:
            deleted = delete_group(settings, group)
            failed += not deleted.ok
            result = "deleted" if deleted.ok else f"FAILED: {deleted.error}"
        rows.append((group.get("instance", "-"), group.get("location", "-"), result))
    print("\n".join(table([("INSTANCE", "LOCATION", "RESULT"), *rows])))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
