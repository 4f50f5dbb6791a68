"""Maintenance windows as a run sees them: configured ones, ad-hoc ones in the Pushgateway,
and the `synthetic_maintenance` families every run pushes.

An ad-hoc window (`slo maintenance start`) must reach every runner of a fleet, on any machine:
it is stored where they all push already, the Pushgateway, as one group of its own job
(``conventions.MAINTENANCE_JOB``) per environment and target, holding its start, end and
reason. Each run reads the groups once at its start (one bounded GET within the push
deadline, :func:`slo.report.push.read_groups`); when it cannot, the run says so in one line
and counts as usual, under its configured windows only. `slo maintenance end` deletes the
group; a window past its end is ignored, so a forgotten one closes by itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from slo import metric_names as m
from slo import redact
from slo.config import Config, PushgatewaySettings
from slo.config.maintenance import Window, open_windows
from slo.conventions import MAINTENANCE_JOB
from slo.report.families import Family, Labels
from slo.report.push import GroupsError, PushResult, delete_group, push_families, read_groups

__all__ = [
    "MAX_REASON",
    "RunWindows",
    "close_ad_hoc",
    "maintenance_families",
    "one_line",
    "open_ad_hoc",
    "read_ad_hoc",
    "windows_at_start",
]

#: The reason travels as a label value and into alert annotations: one line, capped.
MAX_REASON = 200


def _grouping(environment: str, target: str) -> dict[str, str]:
    return {"environment": environment, "target": target}


def open_ad_hoc(
    settings: PushgatewaySettings, environment: str, target: str, start: float, end: float, reason: str
) -> PushResult:
    """Open (or replace) the ad-hoc window of `target` until `end`. Never raises."""
    labels: Labels = (("reason", one_line(reason)),)
    families = [
        Family(m.MAINTENANCE_WINDOW_START, "When the ad-hoc window opened", "gauge", [(labels, start)]),
        Family(m.MAINTENANCE_WINDOW_END, "When the ad-hoc window closes", "gauge", [(labels, end)]),
    ]
    return push_families(families, settings, MAINTENANCE_JOB, _grouping(environment, target))


def close_ad_hoc(settings: PushgatewaySettings, environment: str, target: str) -> PushResult:
    """Delete the ad-hoc window of `target` (closing one that is not open succeeds). Never raises."""
    return delete_group(settings, {"job": MAINTENANCE_JOB, **_grouping(environment, target)})


def one_line(reason: str) -> str:
    """A reason as one scrubbed line of at most MAX_REASON characters."""
    return redact.excerpt(reason, MAX_REASON)


def _value(group: dict[str, Any], name: str) -> tuple[float, dict[str, str]] | None:
    family = group.get(name)
    if not isinstance(family, dict) or not family.get("metrics"):
        return None
    sample = family["metrics"][0]
    value = float(sample["value"])
    return (value, dict(sample.get("labels", {}))) if math.isfinite(value) else None


def read_ad_hoc(settings: PushgatewaySettings, environment: str) -> list[Window]:
    """The ad-hoc windows of `environment` in the Pushgateway, open or not; GroupsError."""
    windows = []
    for group in read_groups(settings):
        labels = group["labels"]
        if labels.get("job") != MAINTENANCE_JOB or labels.get("environment") != environment:
            continue
        try:
            start, end = _value(group, m.MAINTENANCE_WINDOW_START), _value(group, m.MAINTENANCE_WINDOW_END)
        except (TypeError, ValueError, KeyError, IndexError, AttributeError):
            continue  # not a window this command wrote: never in the way of a run
        if start is None or end is None or not labels.get("target"):
            continue
        reason = one_line(str(end[1].get("reason", "")))
        windows.append(Window("ad-hoc", (str(labels["target"]),), start[0], end[0], "ad-hoc", reason))
    return sorted(windows, key=lambda w: (w.targets, w.start))


@dataclass(frozen=True)
class RunWindows:
    """The windows open at a run's start, and why ad-hoc ones could not be read, if so."""

    open: tuple[Window, ...] = ()
    problem: str = ""

    def covering(self, target: str) -> Window | None:
        """The window that covers `target` longest, or None."""
        found = [window for window in self.open if window.covers(target)]
        return max(found, key=lambda w: w.end) if found else None

    def paused(self, targets: Iterable[str]) -> frozenset[str]:
        """Of `targets`, those in maintenance: their runs are no SLI events."""
        return frozenset(target for target in targets if self.covering(target) is not None)


def windows_at_start(config: Config, settings: PushgatewaySettings | None, now: float) -> RunWindows:
    """The windows open at `now`: configured ones, and ad-hoc ones when `settings` (the run
    pushes) name a Pushgateway. An unreadable Pushgateway is one line, never an error."""
    windows = open_windows(config.maintenance, now)
    problem = ""
    if settings is not None and settings.url:
        try:
            windows += [w for w in read_ad_hoc(settings, config.env_name) if w.open_at(now)]
        except GroupsError as exc:
            problem = f"cannot read ad-hoc maintenance windows: {exc}; this run counts as usual"
    return RunWindows(tuple(windows), problem)


def maintenance_families(targets: Sequence[str], windows: RunWindows) -> list[Family]:
    """`synthetic_maintenance{target}` 1 or 0 for each of `targets`, and the end of the window
    of each one in maintenance."""
    flag = Family(m.MAINTENANCE, "1 while a maintenance window covers the target, else 0", "gauge")
    end = Family(m.MAINTENANCE_END, "When the maintenance window covering the target ends", "gauge")
    for target in sorted(set(targets)):
        window = windows.covering(target)
        labels: Labels = (("target", target),)
        flag.series.append((labels, 0.0 if window is None else 1.0))
        if window is not None:
            end.series.append((labels, window.end))
    return [flag, end]
