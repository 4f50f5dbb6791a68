"""PromQL for an SLI's events and bad events over any window: one builder for every consumer.

The recording rules, the budget report (which queries raw series, so it works before any
rule is loaded) and the scenario tests all take their expressions from here, so they can
never disagree about what an SLI means.

>>> from slo.config.objectives import SLO
>>> slo = SLO.model_validate({"name": "a", "objective": 99.9,
...                           "sli": {"kind": "probes", "target": "api"}})
>>> sli_query(slo).bad("1h")
'sum by (environment) (increase(synthetic_target_failed_runs_total{target="api",slo=""}[1h]))'
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from slo.config.objectives import (
    SLO,
    DegradedSLI,
    EventsSLI,
    HistogramSLI,
    ProbeLatencySLI,
    ProbesSLI,
    glob_regex,
    model_regex,
)
from slo.metric_names import TARGET_DEGRADED_RUNS, TARGET_FAILED_RUNS, TARGET_RUNS
from slo.objectives.rules.names import promql_string
from slo.units import parse_duration

__all__ = [
    "MONTH_STEP",
    "SLIQuery",
    "glob_regex",
    "le_regex",
    "month_to_date",
    "sli_query",
]

#: Resolution of the calendar-month sums (see :func:`month_to_date`).
MONTH_STEP = "5m"


def _go_float(value: float) -> str:
    # Go clients spell bounds with strconv 'g' (2 -> "2"), Python ones with repr (2 -> "2.0").
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    return repr(value)


def le_regex(threshold: float) -> str:
    """Regex for the `le` label of the bucket at `threshold`: ``2|2\\.0`` for 2 seconds."""
    spellings = sorted({_go_float(threshold), repr(float(threshold))}, key=len)
    return "|".join(re.escape(spelling) for spelling in spellings)


@dataclass(frozen=True)
class SLIQuery:
    """Event counts of one SLI: ``total(window)`` and ``bad(window)`` are PromQL strings.

    `window` is a PromQL range (``5m``, ``30d``); counts are events, not rates, so the
    minimum-events guard can compare them with a number of failed probes.
    """

    total: Callable[[str], str]
    bad: Callable[[str], str]
    #: Labels the counts keep (``environment`` for pushed probe metrics).
    by: tuple[str, ...]
    #: For latency SLIs: PromQL returning a series when observations exist but the threshold
    #: bucket does not, which would otherwise leave the SLI silently without bad events.
    bucket_missing: str = ""


def _increase(metric: str, matchers: str, by: tuple[str, ...]) -> Callable[[str], str]:
    grouping = f" by ({', '.join(by)})" if by else ""

    series = f"{metric}{{{matchers}}}" if matchers else metric

    def count(window: str) -> str:
        return f"sum{grouping} (increase({series}[{window}]))"

    return count


def _probe_matchers(target: str, patterns: Sequence[str], model: str = "") -> str:
    matchers = f"target={promql_string(target)}"
    if patterns:
        matchers += f",probe=~{promql_string(glob_regex(patterns))}"
    if model:
        # A second matcher on the label: both must match (the patterns, and this model's probes).
        matchers += f",probe=~{promql_string(model_regex(model))}"
    return matchers


def _latency(metric: str, matchers: str, threshold: float, by: tuple[str, ...]) -> SLIQuery:
    pattern = le_regex(threshold)
    bucket_matchers = f"{matchers},le=~{promql_string(pattern)}".lstrip(",")
    total = _increase(f"{metric}_count", matchers, by)
    good = _increase(f"{metric}_bucket", bucket_matchers, by)
    grouping = f" by ({', '.join(by)})" if by else ""
    count_series = f"{metric}_count{{{matchers}}}" if matchers else f"{metric}_count"
    missing = (
        f"sum{grouping} ({count_series}) > 0 unless sum{grouping} ({metric}_bucket{{{bucket_matchers}}})"
    )
    return SLIQuery(
        total=total,
        bad=lambda window: f"{total(window)} - {good(window)}",
        by=by,
        bucket_missing=missing,
    )


def _events(sli: EventsSLI) -> SLIQuery:
    def counted(query: str) -> Callable[[str], str]:
        # rate() per second times the window's seconds is the number of events in it.
        return lambda window: f"({query.replace('{{window}}', window)}) * {_seconds(window)}"

    total = counted(sli.total_query)
    if sli.error_query:
        bad = counted(sli.error_query)
    else:
        good = counted(sli.good_query)
        bad = lambda window: f"{total(window)} - {good(window)}"  # noqa: E731
    return SLIQuery(total=total, bad=bad, by=())


def _seconds(window: str) -> str:
    return f"{parse_duration(window):g}"


def sli_query(slo: SLO, by: tuple[str, ...] = ("environment",)) -> SLIQuery:
    """The event-count PromQL for `slo`'s SLI; a `probes` SLI's counts keep the labels `by`
    (the environment, and the location for the quorum: :mod:`slo.objectives.rules.quorum`)."""
    sli = slo.sli
    if isinstance(sli, ProbesSLI | DegradedSLI):
        # Runs of the target, not probe runs: one bad run is one bad event however many of
        # its probes failed. An SLO that narrows the probes has run counters of its own.
        matchers = f"target={promql_string(sli.target)},slo={promql_string(slo.name if sli.narrowed else '')}"
        runs, failed = _increase(TARGET_RUNS, matchers, by), _increase(TARGET_FAILED_RUNS, matchers, by)
        if isinstance(sli, ProbesSLI):
            return SLIQuery(total=runs, bad=failed, by=by)
        # "Fast enough" is asked of the runs that worked: a failed run is the availability
        # SLO's bad event, and counting it here would page twice for one outage.
        return SLIQuery(
            total=lambda window: f"{runs(window)} - {failed(window)}",
            bad=_increase(TARGET_DEGRADED_RUNS, matchers, by),
            by=by,
        )
    if isinstance(sli, ProbeLatencySLI):
        # FirstTokenSLI too: the same probe labels, its own histogram.
        matchers = _probe_matchers(sli.target, sli.probe, sli.model)
        return _latency(sli.metric, matchers, sli.threshold, ("environment",))
    if isinstance(sli, HistogramSLI):
        return _latency(sli.metric, sli.selector, sli.threshold, ())
    return _events(sli)


def month_to_date(count: Callable[[str], str]) -> str:
    """Events since the start of the current calendar month (UTC), from a windowed count.

    PromQL ranges are constants, so this sums `count` over 5-minute steps of the last 31 days
    and keeps the steps of the current month. A step's month is compared by its month number
    modulo 3, which is unique among the at most three months a 31-day range touches; the
    outer ``month() % 3`` picks the current month's sum. Each step counts the 5 minutes
    ending at it, so it belongs to the month 5 minutes earlier. Lags by at most one step.
    """
    step_seconds = math.floor(parse_duration(MONTH_STEP))
    inner = count(MONTH_STEP)
    parts = [
        f"(sum_over_time(({inner} and on() month(vector(time() - {step_seconds})) % 3 == {r})"
        f"[31d:{MONTH_STEP}]) and on() month() % 3 == {r})"
        for r in range(3)
    ]
    return " or ".join(parts)
