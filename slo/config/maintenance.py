"""The `maintenance:` section: planned windows in which a target's runs are no SLI events.

    maintenance:
      - name: weekly-db-upgrade
        targets: [api]              # default: every target
        start: 2026-01-10T02:00:00Z # ISO 8601, with a time zone
        duration: 30m
        every: 7d                   # optional: repeats from `start`

A window is open from each occurrence's start for `duration`. Ad-hoc windows (`slo
maintenance start`) are not configured here: they live in the Pushgateway
(:mod:`slo.report.maintenance`), and both become :class:`Window` values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pydantic import AwareDatetime, Field, model_validator

from slo.config.fields import Duration, StrictModel

__all__ = ["MAX_OCCURRENCES", "MaintenanceWindow", "Window", "open_windows", "windows_between"]

#: A listing of occurrences (budget, gate, report) stops here: a 1-minute `every` over 30 days
#: would otherwise be 43,200 rows.
MAX_OCCURRENCES = 1000


@dataclass(frozen=True)
class Window:
    """One occurrence of a window: configured or ad-hoc, open over [start, end)."""

    name: str
    #: The targets it covers; empty for every target.
    targets: tuple[str, ...]
    start: float
    end: float
    #: ``config`` or ``ad-hoc``.
    source: str = "config"
    reason: str = ""

    def covers(self, target: str) -> bool:
        return not self.targets or target in self.targets

    def open_at(self, now: float) -> bool:
        return self.start <= now < self.end


class MaintenanceWindow(StrictModel):
    """A planned maintenance window of some targets (all by default), maybe recurring."""

    name: str = Field(min_length=1, max_length=200)
    #: Target names; empty (the default) means every target of the environment.
    targets: list[str] = Field(default_factory=list)
    start: AwareDatetime
    duration: Duration = Field(gt=0)
    every: Duration | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _closes(self) -> MaintenanceWindow:
        if self.every is not None and self.every <= self.duration:
            raise ValueError(
                f"every ({self.every:g} s) must be longer than duration ({self.duration:g} s), "
                "or the window never closes"
            )
        return self

    def occurrences(self, since: float, until: float) -> list[Window]:
        """Each occurrence overlapping [since, until), oldest first, at most MAX_OCCURRENCES."""
        first = self.start.timestamp()
        if until <= first:
            return []
        index = 0
        if self.every is not None:
            index = max(0, math.floor((since - self.duration - first) / self.every))
        found: list[Window] = []
        while len(found) < MAX_OCCURRENCES:
            start = first + index * (self.every or 0.0)
            if start >= until:
                break
            if start + self.duration > since:
                found.append(Window(self.name, tuple(self.targets), start, start + self.duration))
            if self.every is None:
                break
            index += 1
        return found


def windows_between(windows: list[MaintenanceWindow], since: float, until: float) -> list[Window]:
    """Every configured window's occurrences overlapping [since, until), by start."""
    return sorted((w for window in windows for w in window.occurrences(since, until)), key=lambda w: w.start)


def open_windows(windows: list[MaintenanceWindow], now: float) -> list[Window]:
    """The configured occurrences open at `now`."""
    return [w for w in windows_between(windows, now, now + 1e-3) if w.open_at(now)]
