"""Maintenance windows as the SLO commands show them: which windows fall in an SLO's window,
and their listing (`slo budget`, `slo gate`, `slo maintenance list`).

Configured windows come from the config; ad-hoc ones from Prometheus, which scrapes their
Pushgateway group (``conventions.MAINTENANCE_JOB``) like the probes' own: an ad-hoc window
that was ended is gone from both, so only the open ones are listed.
"""

from __future__ import annotations

from collections.abc import Sequence

from slo import redact
from slo.config import SLO, Config
from slo.config.maintenance import Window, windows_between
from slo.conventions import MAINTENANCE_JOB
from slo.metric_names import MAINTENANCE_WINDOW_END, MAINTENANCE_WINDOW_START
from slo.objectives.promql import PrometheusClient
from slo.objectives.rules.maintenance import slo_target
from slo.objectives.rules.names import selector
from slo.units import format_utc

__all__ = ["ad_hoc_windows", "window_names", "window_rows", "windows_of"]


def ad_hoc_windows(prometheus: PrometheusClient, environment: str) -> list[Window]:
    """The ad-hoc windows of `environment` that Prometheus holds now (PrometheusError)."""
    labels = {"job": MAINTENANCE_JOB, "environment": environment}
    starts = {
        sample.labels.get("target", ""): sample.value
        for sample in prometheus.query(selector(MAINTENANCE_WINDOW_START, **labels))
    }
    windows = []
    for sample in prometheus.query(selector(MAINTENANCE_WINDOW_END, **labels)):
        target = sample.labels.get("target", "")
        if target in starts:
            reason = sample.labels.get("reason", "")
            windows.append(Window("ad-hoc", (target,), starts[target], sample.value, "ad-hoc", reason))
    return sorted(windows, key=lambda w: (w.start, w.targets))


def windows_of(config: Config, since: float, until: float, ad_hoc: Sequence[Window] = ()) -> list[Window]:
    """Configured occurrences overlapping [since, until), and the `ad_hoc` ones, by start."""
    found = [*windows_between(config.maintenance, since, until), *ad_hoc]
    return sorted((w for w in found if w.start < until and w.end > since), key=lambda w: w.start)


def window_names(windows: Sequence[Window], slo: SLO) -> list[str]:
    """The names of `windows` covering `slo`'s target, once each, in order."""
    target = slo_target(slo)
    if target is None:
        return []
    return list(dict.fromkeys(w.name for w in windows if w.covers(target)))


def window_rows(windows: Sequence[Window]) -> list[tuple[str, ...]]:
    """The rows of a window listing, the header first."""
    rows: list[tuple[str, ...]] = [("WINDOW", "SOURCE", "TARGETS", "FROM", "UNTIL", "REASON")]
    for window in windows:
        targets = ", ".join(window.targets) or "all"
        row = (window.name, window.source, targets, format_utc(window.start), format_utc(window.end))
        rows.append((*row, redact.excerpt(window.reason, 80) or "-"))
    return rows
