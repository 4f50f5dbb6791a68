"""The multi-window, multi-burn-rate alert policy of the SRE Workbook, scaled to an SLO window.

For a 30-day SLO the pairs are the Workbook's: page on 1h/5m at 14.4x and 6h/30m at 6x,
ticket on 1d/2h at 3x and 3d/6h at 1x. Each factor times its long window is a fixed share of
the budget (2 %, 5 %, 10 %, 10 %), so for other windows the windows scale with the SLO window
and the factors stay: a 7-day SLO pages on 14m/5m at 14.4x. Windows are whole minutes (whole
seconds under a minute) and never shorter than `alerting.shortest_window` (5 minutes by
default), because with one probe run a minute a shorter window holds too few runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from slo.config.objectives import SLO
from slo.units import format_duration

__all__ = ["WORKBOOK_WINDOW", "BurnWindow", "alert_windows", "burn_windows"]

WORKBOOK_WINDOW = 30 * 86400.0
_MINUTE = 60.0

Severity = Literal["page", "ticket"]

_WORKBOOK: tuple[tuple[Severity, float, float, float], ...] = (
    ("page", 3600.0, 300.0, 14.4),
    ("page", 6 * 3600.0, 1800.0, 6.0),
    ("ticket", 86400.0, 2 * 3600.0, 3.0),
    ("ticket", 3 * 86400.0, 6 * 3600.0, 1.0),
)


@dataclass(frozen=True)
class BurnWindow:
    """One alert: fires when both windows burn faster than `factor` times the budget rate."""

    severity: Severity
    long: float
    short: float
    factor: float

    @property
    def long_name(self) -> str:
        return format_duration(self.long)

    @property
    def short_name(self) -> str:
        return format_duration(self.short)


def _scaled(seconds: float, scale: float, shortest: float) -> float:
    minutes = round(seconds * scale / _MINUTE) * _MINUTE
    return max(shortest, minutes if minutes >= _MINUTE else round(seconds * scale))


def burn_windows(slo: SLO) -> tuple[BurnWindow, ...]:
    """All four window pairs for `slo`, whether or not its alerts are enabled."""
    scale = slo.window_seconds / WORKBOOK_WINDOW
    return tuple(
        BurnWindow(
            severity,
            _scaled(long, scale, slo.alerting.shortest_window),
            _scaled(short, scale, slo.alerting.shortest_window),
            factor,
        )
        for severity, long, short, factor in _WORKBOOK
    )


def alert_windows(slo: SLO) -> tuple[BurnWindow, ...]:
    """The window pairs that alert, after the SLO's `alerting.page` / `alerting.ticket`."""
    enabled = {"page": slo.alerting.page, "ticket": slo.alerting.ticket}
    return tuple(window for window in burn_windows(slo) if enabled[window.severity])
