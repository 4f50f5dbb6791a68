"""Named numeric values a probe records, pushed with the run as their own metric families.

A probe records ``probe.value("active_sessions", 3)`` or, with labels,
``probe.value("gen_ai_tokens", 12, kind="counter", model="claude-sonnet-4", type="output")``
(:class:`slo.probe.run.ProbeRun`; the names and labels allowed are
:func:`slo.evidence.value_problem`'s). The value travels to the controller in the probe's
evidence and is pushed as ``synthetic_<name>`` with the probe's `probe`, `target` and `slo`
labels and its own:

- ``gauge``: the last run's value;
- ``counter``: summed over runs (``synthetic_<name>_total``), e.g. the probes' spend;
- ``histogram``: every value observed, cumulative (``_bucket``, ``_sum``, ``_count``).

Counters and histograms must survive runs like the probe counters do (a Pushgateway PUT
replaces the group), so they are kept in the state file, in a section of its own
(:data:`STATE_SECTION`) next to the probe counters, under the same lock and grouping key.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from slo.evidence import VALUE_KINDS, Evidence, RecordedValue
from slo.report.exposition import DEFAULT_BUCKETS
from slo.report.families import Family, Histogram
from slo.report.state import FORGET_AFTER_SECONDS, count_in_buckets

__all__ = ["STATE_SECTION", "ValueFamilies", "grown_today", "value_families"]

STATE_SECTION = "values"
#: Upper bounds of a histogram by the unit its name ends in (per_second: token rates); any
#: other gets the seconds layout the reporter passes (the probe latency buckets).
BUCKETS: dict[str, list[float]] = {
    "seconds": list(DEFAULT_BUCKETS),
    "per_second": [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0],
}


@dataclass
class ValueFamilies:
    """What a run recorded, by probe: the values of each probe's call phase."""

    by_probe: dict[str, list[RecordedValue]] = field(default_factory=dict)

    def add(self, report: pytest.TestReport, evidence: Evidence | None) -> None:
        # A failed teardown's evidence repeats the call's values.
        if evidence is not None and evidence.values and report.when in ("call", "setup"):
            self.by_probe[report.nodeid] = list(evidence.values)

    def fold(
        self,
        document: dict[str, Any],
        key: str,
        probes: Mapping[str, Any],
        now: float,
        seconds_bounds: Sequence[float] = BUCKETS["seconds"],
    ) -> dict[str, Any]:
        """Add this run's values to the state document's :data:`STATE_SECTION` for `key` and
        return that section. `probes` (name -> state with `target` and `slo`) labels them;
        histograms in seconds get `seconds_bounds` (the probe latency layout, which has a
        bucket at every SLO threshold: a first-token SLO's too)."""
        sections = document.get(STATE_SECTION)
        if not isinstance(sections, dict):
            sections = document[STATE_SECTION] = {}
        section = sections.get(key)
        if not isinstance(section, dict) or not all(_valid(series) for series in section.values()):
            # Not what this module wrote: these values restart, the probe counters are untouched.
            section = sections[key] = {}
        for probe, values in self.by_probe.items():
            state = probes.get(probe)
            base = {"probe": probe, "target": getattr(state, "target", ""), "slo": getattr(state, "slo", "")}
            for recorded in values:
                series_key = json.dumps([recorded.name, probe, recorded.labels])
                series = section.get(series_key)
                bounds = (
                    list(seconds_bounds)
                    if not recorded.name.endswith("per_second")
                    else BUCKETS["per_second"]
                )
                if (
                    series is None
                    or series.get("kind") != recorded.kind
                    or (recorded.kind == "histogram" and series["bounds"] != list(bounds))
                ):
                    # New, or its bucket layout changed (a new SLO threshold): it restarts,
                    # which Prometheus reads as an ordinary counter reset.
                    series = {
                        "name": recorded.name,
                        "kind": recorded.kind,
                        "labels": {**base, **dict(recorded.labels)},
                    }
                    series.update(_empty(recorded, bounds))
                    section[series_key] = series
                series["labels"].update(base)
                series["time"] = now
                _observe(series, recorded)
                if recorded.kind == "counter":
                    if series.get("day") != _day(now):
                        series["day"], series["today"] = _day(now), 0.0
                    series["today"] += recorded.value
        cutoff = now - FORGET_AFTER_SECONDS
        for series_key in [k for k, series in section.items() if series.get("time", 0) < cutoff]:
            del section[series_key]
        return section


def _valid(series: object) -> bool:
    if not isinstance(series, dict) or series.get("kind") not in VALUE_KINDS:
        return False
    if not isinstance(series.get("name"), str) or not isinstance(series.get("labels"), dict):
        return False
    if series["kind"] == "histogram":
        counts, bounds = series.get("counts"), series.get("bounds")
        return isinstance(counts, list) and isinstance(bounds, list) and len(counts) == len(bounds)
    return isinstance(series.get("value"), int | float)


def _empty(recorded: RecordedValue, bounds: Sequence[float]) -> dict[str, Any]:
    if recorded.kind == "histogram":
        return {"bounds": [float(b) for b in bounds], "counts": [0] * len(bounds), "sum": 0.0, "count": 0}
    return {"value": 0.0}


def _observe(series: dict[str, Any], recorded: RecordedValue) -> None:
    if recorded.kind == "gauge":
        series["value"] = recorded.value
    elif recorded.kind == "counter":
        series["value"] += recorded.value
    else:
        count_in_buckets(series["bounds"], series["counts"], recorded.value)
        series["sum"] += recorded.value
        series["count"] += 1


def grown_today(section: Mapping[str, Any], name: str, now: float) -> float:
    """What counter `name` grew by, over all its series, since this UTC day began."""
    today = _day(now)
    return sum(
        float(series.get("today", 0.0))
        for series in section.values()
        if series.get("name") == name and series.get("day") == today
    )


def _day(now: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(now))


def value_families(section: Mapping[str, Any]) -> list[Family]:
    """The recorded values of a state section as metric families ``synthetic_<name>``."""
    families: dict[str, Family] = {}
    for series in sorted(section.values(), key=lambda s: (s["name"], sorted(s["labels"].items()))):
        name, kind = f"synthetic_{series['name']}", series["kind"]
        family = families.get(name)
        if family is None:
            exposed = f"{name}_total" if kind == "counter" else name
            family = families[name] = Family(exposed, f"Probe value {series['name']} ({kind})", kind)
        elif family.type != kind:
            continue  # one name, one type: the first kind recorded wins
        labels = tuple(series["labels"].items())
        if kind == "histogram":
            # Counts are already cumulative (a value counts in every bucket it fits).
            histogram = Histogram(series["bounds"], series["counts"], series["count"], series["sum"])
            family.series.append((labels, histogram))
        else:
            family.series.append((labels, series["value"]))
    return list(families.values())
