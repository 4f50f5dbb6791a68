"""A plain-Python model of the burn-rate alerts, over cumulative counts sampled every minute.

The scenario generator uses it to state what `promtool test rules` must observe (which
alerts fire at which minute, with which value), and `slo rules --explain` to say how fast a
total outage pages. It is written from the policy, not from the PromQL, so a mistake in the
generated expressions shows up as a disagreement between the two.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from slo.config.objectives import SLO
from slo.objectives.rules.quorum import nth_highest, uses_quorum
from slo.objectives.rules.windows import BurnWindow, alert_windows

__all__ = [
    "Counts",
    "Firing",
    "firing_alerts",
    "firing_at_locations",
    "location_ratios",
    "locations_failing",
    "minutes_to_page",
]

#: Cumulative counts per minute, by location.
Counts = Mapping[str, Sequence[float]]

_MINUTE = 60.0


@dataclass(frozen=True)
class Firing:
    """One `ErrorBudgetBurn` alert and its value (the long window's burn rate)."""

    window: BurnWindow
    value: float


def _increase(counts: Sequence[float], minute: int, window: float) -> float:
    # Counts start at 0 at minute 0: a window reaching further back sees them from there, as
    # Prometheus's increase() does (it does not extrapolate a counter below zero).
    return counts[minute] - counts[max(0, minute - round(window / _MINUTE))]


def _burn(slo: SLO, total: Sequence[float], bad: Sequence[float], minute: int, window: float) -> float | None:
    events = _increase(total, minute, window)
    if events <= 0:
        return None
    # Same operations in the same order as the recording rules, so the floats agree.
    return max(_increase(bad, minute, window), 0.0) / events / slo.error_budget


def firing_alerts(slo: SLO, total: Sequence[float], bad: Sequence[float], minute: int) -> list[Firing]:
    """The alerts firing at `minute`, given cumulative event and bad-event counts per minute."""
    fired = []
    for window in alert_windows(slo):
        long = _burn(slo, total, bad, minute, window.long)
        short = _burn(slo, total, bad, minute, window.short)
        enough = max(_increase(bad, minute, window.long), 0.0) >= slo.alerting.min_bad_events
        burning = long is not None and short is not None and min(long, short) > window.factor
        if burning and enough and long is not None:
            fired.append(Firing(window, long))
    return fired


def location_ratios(
    slo: SLO, totals: Counts, bads: Counts, minute: int, window: float
) -> dict[str, tuple[float, float]]:
    """Error ratio and bad events over `window` of each location that ran in it."""
    ratios = {}
    for location, total in totals.items():
        events = _increase(total, minute, window)
        if events > 0:
            bad = max(_increase(bads[location], minute, window), 0.0)
            ratios[location] = (bad / events, bad)
    return ratios


def _quorum_burn(slo: SLO, ratios: Mapping[str, tuple[float, float]]) -> float | None:
    ratio = nth_highest([ratio for ratio, _ in ratios.values()], slo.locations_quorum)
    return None if ratio is None else ratio / slo.error_budget


def firing_at_locations(slo: SLO, totals: Counts, bads: Counts, minute: int) -> list[Firing]:
    """:func:`firing_alerts` for runners in several locations: pooled counts with quorum 1,
    else the quorum rule (:mod:`slo.objectives.rules.quorum`)."""
    if not uses_quorum(slo):
        pooled_total = [sum(counts) for counts in zip(*totals.values(), strict=True)]
        pooled_bad = [sum(counts) for counts in zip(*bads.values(), strict=True)]
        return firing_alerts(slo, pooled_total, pooled_bad, minute)
    fired = []
    for window in alert_windows(slo):
        long = location_ratios(slo, totals, bads, minute, window.long)
        long_burn = _quorum_burn(slo, long)
        short_burn = _quorum_burn(slo, location_ratios(slo, totals, bads, minute, window.short))
        bad = nth_highest([bad for _, bad in long.values()], slo.locations_quorum) or 0.0
        burning = (
            long_burn is not None and short_burn is not None and min(long_burn, short_burn) > window.factor
        )
        if burning and bad >= slo.alerting.min_bad_events and long_burn is not None:
            fired.append(Firing(window, long_burn))
    return fired


def locations_failing(slo: SLO, totals: Counts, bads: Counts, minute: int) -> list[tuple[str, Firing]]:
    """The `SLOLocationFailing` alerts at `minute`: each location that alone meets a page
    condition while the quorum's page does not fire."""
    if not uses_quorum(slo):
        return []
    paging = {f.window for f in firing_at_locations(slo, totals, bads, minute)}
    fired = []
    for window in alert_windows(slo):
        if window.severity != "page" or window in paging:
            continue
        long = location_ratios(slo, totals, bads, minute, window.long)
        short = location_ratios(slo, totals, bads, minute, window.short)
        for location, (ratio, bad) in sorted(long.items()):
            burn = ratio / slo.error_budget
            short_burn = short.get(location, (0.0, 0.0))[0] / slo.error_budget
            if min(burn, short_burn) > window.factor and bad >= slo.alerting.min_bad_events:
                fired.append((location, Firing(window, burn)))
    return fired


def minutes_to_page(slo: SLO, events_per_minute: float, limit: int = 7 * 24 * 60) -> int | None:
    """Minutes from the start of a total outage to the first page, after three days of clean
    traffic; None when no page fires within `limit` minutes (or the SLO does not page)."""
    history = 3 * 24 * 60
    total = [events_per_minute * minute for minute in range(history + limit + 1)]
    bad = [0.0] * (history + 1) + [events_per_minute * m for m in range(1, limit + 1)]
    for minute in range(history + 1, history + limit + 1):
        if any(f.window.severity == "page" for f in firing_alerts(slo, total, bad, minute)):
            return minute - history
    return None
