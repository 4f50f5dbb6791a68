"""A plain-Python model of the burn-rate alerts, over cumulative counts sampled every minute.

The scenario generator uses it to state what `promtool test rules` must observe (which
alerts fire at which minute, with which value), and `slo rules --explain` to say how fast a
total outage pages. It is written from the policy, not from the PromQL, so a mistake in the
generated expressions shows up as a disagreement between the two.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from slo.config.objectives import SLO
from slo.objectives.rules.windows import BurnWindow, alert_windows

__all__ = ["Firing", "firing_alerts", "minutes_to_page"]

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
