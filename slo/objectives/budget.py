"""`slo budget`: error budget left per SLO, from Prometheus.

    slo budget --prometheus http://prometheus:9090        # or PROMETHEUS_URL
    slo budget --json

It queries the raw series with the same PromQL the recording rules use (slo.objectives.rules.sli), so
it works before any rule is loaded, knows calendar months exactly, and agrees with the alerts.
Per SLO (and per environment for probe SLIs): objective, window, SLI over the window, budget
remaining, burn rate over each alert window, the time until the budget is gone at the
current burn (the shortest page window's), and the window's coverage: since when it holds
data, as a share of the window, and how many events it counted. A budget below zero is shown
as exhausted with its overspend. Exit 0, 1 if Prometheus cannot answer, 4 for usage and
config errors.
"""

from __future__ import annotations

import calendar
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime

from slo.cliargs import ArgumentParser, fail
from slo.config import Config, ConfigError
from slo.config.maintenance import Window
from slo.config.objectives import CALENDAR_MONTH, SLO, ProbesSLI
from slo.objectives.inputs import add_config_options, load_inputs
from slo.objectives.maintenance import ad_hoc_windows, window_names, window_rows, windows_of
from slo.objectives.promql import PrometheusClient, PrometheusError, Sample
from slo.objectives.rules.quorum import BY_LOCATION, location_query, nth_highest, uses_quorum
from slo.objectives.rules.sli import sli_query
from slo.objectives.rules.windows import burn_windows
from slo.options import add_cli_options, parse_cli
from slo.tables import table
from slo.units import format_duration

__all__ = [
    "BudgetRow",
    "LocationRow",
    "budget_rows",
    "location_lines",
    "location_summary",
    "main",
    "maintenance_windows",
    "render_table",
    "render_windows",
    "time_to_exhaustion",
]


@dataclass(frozen=True)
class BudgetRow:
    """One SLO (in one environment) as the report shows it. Ratios are 0..1."""

    slo: str
    environment: str
    objective: float
    window: str
    events: float
    bad_events: float
    #: Good events over all in the window; None without traffic.
    sli: float | None
    #: 1 untouched, 0 spent, negative overspent; None without traffic.
    budget_remaining: float | None
    #: Burn rate per alert window name (``5m``, ``1h``...); None for a window without traffic.
    burn_rates: dict[str, float | None] = field(default_factory=dict)
    #: Seconds until the budget is gone at the current burn; 0 when already gone, None never.
    exhaustion_seconds: float | None = None
    note: str = ""
    #: Unix time of the first data in the window (to the minute); None without events.
    data_since: float | None = None
    #: Share of the window that holds data, 0..1: how much the SLI and budget can be trusted.
    coverage: float | None = None
    #: How far past the budget, as a share of it (0.5: 150 % spent); 0 while some is left.
    overspent: float = 0.0
    #: Locations that must agree (the SLI is then the quorum's, see slo.objectives.rules.quorum).
    quorum: int = 1
    #: A `probes` SLI's breakdown by location over the SLO window.
    locations: list[LocationRow] = field(default_factory=list)
    #: Maintenance windows of the SLO's target in the SLO window: their runs are not counted.
    maintenance: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LocationRow:
    """One location's runs of a `probes` SLI over the SLO window."""

    location: str
    events: float
    bad_events: float
    #: Good runs over all; None when the location did not run in the window.
    sli: float | None


def error_ratio(bad: float, events: float) -> float | None:
    """Bad over all events; None without events (never NaN)."""
    return max(bad, 0.0) / events if events > 0 else None


def time_to_exhaustion(remaining: float | None, burn: float | None, window_seconds: float) -> float | None:
    """Seconds until the budget is spent at `burn` times the sustainable rate.

    Burn 1 spends a whole budget in one window, so a share `remaining` lasts
    ``remaining * window / burn``. 0 when already spent; None when nothing is burning.
    """
    if remaining is None:
        return None
    if remaining <= 0:
        return 0.0
    if burn is None or burn <= 0:
        return None
    return remaining * window_seconds / burn


def month_start(now: float) -> float:
    """The Unix time the current calendar month (UTC) began."""
    today = datetime.fromtimestamp(now, UTC)
    return float(calendar.timegm((today.year, today.month, 1, 0, 0, 0)))


def _range(slo: SLO, now: float) -> str:
    if slo.window == CALENDAR_MONTH:
        return f"{max(60, math.floor(now - month_start(now)))}s"
    return slo.window_name


#: Resolution of the data-since search: a window's coverage is known to the minute.
COVERAGE_STEP = "1m"


def _data_since(query: str, by: tuple[str, ...], window: str) -> str:
    """PromQL: per key, the earliest minute of the window whose last 5 minutes held events
    (or now, for data younger than the last whole minute, which no subquery step sees)."""
    grouping = f" by ({', '.join(by)})" if by else ""
    earliest = f"min{grouping} (min_over_time(timestamp({query} > 0)[{window}:{COVERAGE_STEP}]))"
    return f"{earliest} or min{grouping} (timestamp({query} > 0))"


def _window_length(slo: SLO, now: float) -> float:
    return now - month_start(now) if slo.window == CALENDAR_MONTH else slo.window_seconds


def _by_key(samples: list[Sample], by: tuple[str, ...]) -> dict[tuple[str, ...], float]:
    return {tuple(sample.labels.get(name, "") for name in by): sample.value for sample in samples}


#: Events and bad events per location, by environment.
Located = dict[str, dict[str, tuple[float, float]]]


def _located(prometheus: PrometheusClient, slo: SLO, window: str, now: float) -> Located:
    """Each location's events and bad events over `window` (a `probes` SLI), by environment."""
    query = location_query(slo)
    totals = _by_key(prometheus.query(query.total(window), now), BY_LOCATION)
    bads = _by_key(prometheus.query(query.bad(window), now), BY_LOCATION)
    located: Located = {}
    for (environment, location), events in totals.items():
        located.setdefault(environment, {})[location] = (events, bads.get((environment, location), 0.0))
    return located


def _quorum_ratio(slo: SLO, locations: dict[str, tuple[float, float]]) -> float | None:
    """The SLO's error ratio from its locations' counts: the quorum rule (slo.objectives.rules.quorum)."""
    ratios = [ratio for events, bad in locations.values() if (ratio := error_ratio(bad, events)) is not None]
    return nth_highest(ratios, slo.locations_quorum)


def _slo_rows(prometheus: PrometheusClient, slo: SLO, now: float) -> list[BudgetRow]:
    query = sli_query(slo)
    window = _range(slo, now)
    totals = _by_key(prometheus.query(query.total(window), now), query.by)
    bads = _by_key(prometheus.query(query.bad(window), now), query.by)
    windows = sorted({w for pair in burn_windows(slo) for w in (pair.long, pair.short)})
    burns: dict[str, tuple[dict[tuple[str, ...], float], dict[tuple[str, ...], float]]] = {}
    quorum = uses_quorum(slo)
    located_burns: dict[str, Located] = {}
    for seconds in windows:
        name = format_duration(seconds)
        if quorum:
            located_burns[name] = _located(prometheus, slo, name, now)
            continue
        burns[name] = (
            _by_key(prometheus.query(query.total(name), now), query.by),
            _by_key(prometheus.query(query.bad(name), now), query.by),
        )
    located = _located(prometheus, slo, window, now) if isinstance(slo.sli, ProbesSLI) else {}
    current = burn_windows(slo)[0].long_name
    since = _by_key(prometheus.query(_data_since(query.total("5m"), query.by, window), now), query.by)
    missing_bucket = bool(query.bucket_missing) and bool(prometheus.query(query.bucket_missing, now))
    rows = []
    for key in sorted(totals) or [tuple("" for _ in query.by)]:
        environment = dict(zip(query.by, key, strict=True)).get("environment", "")
        events, bad = totals.get(key, 0.0), bads.get(key, 0.0)
        locations = located.get(environment, {})
        ratio = _quorum_ratio(slo, locations) if quorum else error_ratio(bad, events)
        burn_rates = {}
        for name in (format_duration(seconds) for seconds in windows):
            if quorum:
                window_ratio = _quorum_ratio(slo, located_burns[name].get(environment, {}))
            else:
                window_totals, window_bads = burns[name]
                window_ratio = error_ratio(window_bads.get(key, 0.0), window_totals.get(key, 0.0))
            burn_rates[name] = None if window_ratio is None else window_ratio / slo.error_budget
        remaining = None if ratio is None else 1 - ratio / slo.error_budget
        first = since.get(key)
        length = _window_length(slo, now)
        coverage = None
        if first is not None:
            coverage = min(1.0, max(0.0, (now - first) / length)) if length > 0 else 0.0
        note = ""
        if missing_bucket:
            note = "histogram has no bucket at the threshold: slow requests are not counted"
        elif ratio is None:
            note = "no events in the window"
        rows.append(
            BudgetRow(
                slo=slo.name,
                environment=environment,
                objective=slo.objective,
                window=slo.window_name,
                events=events,
                bad_events=max(bad, 0.0),
                sli=None if ratio is None else 1 - ratio,
                budget_remaining=remaining,
                burn_rates=burn_rates,
                exhaustion_seconds=time_to_exhaustion(remaining, burn_rates[current], slo.window_seconds),
                note=note,
                data_since=first,
                coverage=coverage,
                overspent=0.0 if remaining is None else max(0.0, -remaining),
                quorum=slo.locations_quorum,
                locations=[
                    LocationRow(
                        location, events, bad, None if (r := error_ratio(bad, events)) is None else 1 - r
                    )
                    for location, (events, bad) in sorted(locations.items())
                ],
            )
        )
    return rows


def budget_rows(
    prometheus: PrometheusClient, slos: Sequence[SLO], now: float | None = None
) -> list[BudgetRow]:
    """Every SLO's rows, all evaluated at the same instant `now`."""
    at = time.time() if now is None else now
    return [row for slo in slos for row in _slo_rows(prometheus, slo, at)]


def _percent(value: float | None, digits: int = 3) -> str:
    # `+ 0.0` turns the -0.0 of a budget spent to the last rounding error into 0.0.
    return "-" if value is None else f"{round(value * 100, digits) + 0.0:.{digits}f}%"


def _duration(seconds: float | None) -> str:
    """Two units at most, as a person reads a countdown: 10d12h, 5h20m, 3m."""
    if seconds is None:
        return "never"
    if seconds <= 0:
        return "exhausted"
    minutes = max(1, round(seconds / 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    return f"{minutes}m"


def _budget_left(row: BudgetRow) -> str:
    if row.budget_remaining is not None and row.budget_remaining < 0:
        return f"exhausted, {_percent(row.overspent, 1)} over"
    return _percent(row.budget_remaining, 1)


def _coverage(row: BudgetRow, now: float) -> str:
    """Since when the window holds data, its share of the window, and the events in it."""
    if row.data_since is None or row.coverage is None:
        return "no data"
    age = format_duration(max(60.0, round((now - row.data_since) / 60) * 60))
    return f"{age} ({_percent(row.coverage)}), {row.events:.0f} events"


def _burns(row: BudgetRow) -> str:
    return " ".join(f"{name}={'-' if b is None else f'{b:.2f}'}" for name, b in row.burn_rates.items())


def render_table(rows: Sequence[BudgetRow], now: float | None = None) -> str:
    """A fixed-width table; notes follow their row. `now` is when the rows were evaluated."""
    at = time.time() if now is None else now
    header = (
        "SLO", "ENV", "OBJECTIVE", "WINDOW", "COVERAGE", "SLI", "BUDGET LEFT",
        "EXHAUSTED IN", "BURN RATES",
    )  # fmt: skip
    lines = [
        (
            row.slo,
            row.environment or "-",
            _percent(row.objective, 2),
            row.window,
            _coverage(row, at),
            _percent(row.sli),
            _budget_left(row),
            _duration(row.exhaustion_seconds),
            _burns(row),
        )
        for row in rows
    ]
    out = []
    for line, row in zip(table([header, *lines]), [None, *rows], strict=True):
        out.append(line)
        if row is not None and row.note:
            out.append(f"  ! {row.note}")
        if row is not None and row.maintenance:
            out.append(f"  maintenance (runs not counted): {', '.join(row.maintenance)}")
        if row is not None:
            out += location_lines(row)
    return "\n".join(out)


def location_lines(row: BudgetRow) -> list[str]:
    """The row's per-location breakdown, one indented line each (`slo budget`, `slo gate`)."""
    if not row.locations:
        return []
    quorum = (
        f" (quorum {row.quorum}: the SLI is the {_ordinal(row.quorum)} worst location's)"
        if row.quorum > 1
        else ""
    )
    lines = [f"  locations{quorum}:"]
    lines += [
        f"    {loc.location or '-'}: SLI {_percent(loc.sli)}, "
        f"{loc.events:.0f} runs, {loc.bad_events:.0f} failed"
        for loc in row.locations
    ]
    return lines


def location_summary(row: BudgetRow) -> str:
    """The breakdown on one line: ``SLI by location (quorum 2): eu-west 99.950%, us-east 100.000%``."""
    quorum = f" (quorum {row.quorum})" if row.quorum > 1 else ""
    parts = ", ".join(f"{loc.location or '-'} {_percent(loc.sli)}" for loc in row.locations)
    return f"SLI by location{quorum}: {parts}"


def _ordinal(number: int) -> str:
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def _parser() -> ArgumentParser:
    parser = ArgumentParser(prog="slo budget", description=__doc__.split("\n\n")[0])
    add_config_options(parser)
    add_cli_options(parser, ["prometheus"])
    parser.add_argument(
        "--slo", action="append", default=[], metavar="NAME", help="only this SLO (repeatable)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


def maintenance_windows(
    prometheus: PrometheusClient, config: Config, slos: Sequence[SLO], rows: Sequence[BudgetRow], now: float
) -> tuple[list[BudgetRow], list[Window]]:
    """`rows` with the maintenance windows in each one's SLO window, and every window in the
    longest SLO window (configured, and the ad-hoc ones Prometheus holds); PrometheusError."""
    longest = max((_window_length(slo, now) for slo in slos), default=0.0)
    windows = windows_of(config, now - longest, now, ad_hoc_windows(prometheus, config.env_name))
    by_name = {slo.name: slo for slo in slos}
    marked = []
    for row in rows:
        slo = by_name[row.slo]
        since = now - _window_length(slo, now)
        names = window_names([w for w in windows if w.end > since], slo)
        marked.append(replace(row, maintenance=names) if names else row)
    return marked, windows


def render_windows(windows: Sequence[Window]) -> str:
    """The listing under the budget table: the windows whose runs the SLIs do not count."""
    if not windows:
        return ""
    heading = "maintenance windows in the SLO windows (their runs are no SLI events):"
    return "\n".join(["", heading, *table(window_rows(windows))])


def select(slos: Sequence[SLO], names: Sequence[str]) -> list[SLO]:
    """`slos` narrowed to `names` (all when empty); an unknown name is a ConfigError."""
    known = {slo.name for slo in slos}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ConfigError(f"unknown SLO {unknown[0]!r} (known: {', '.join(sorted(known)) or 'none'})")
    return [slo for slo in slos if not names or slo.name in names]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_cli(_parser(), argv)
    if not args.prometheus:
        return fail("slo budget: give --prometheus URL or set PROMETHEUS_URL")
    try:
        inputs = load_inputs(args)
        slos = select(inputs.slos, args.slo)
    except ConfigError as exc:
        return fail(str(exc))
    try:
        now = time.time()
        with PrometheusClient(args.prometheus) as prometheus:
            rows = budget_rows(prometheus, slos, now)
            rows, windows = maintenance_windows(prometheus, inputs.config, slos, rows, now)
    except PrometheusError as exc:
        return fail(f"slo budget: {exc}", 1)
    if args.json:
        print(json.dumps([asdict(row) for row in rows], indent=2))
    else:
        print(render_table(rows, now) + render_windows(windows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
