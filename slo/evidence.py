"""One probe run's evidence: one record, built in the worker, serialized once, decoded once.

The plugin keeps an :class:`Evidence` in the test item's stash while the probe runs; the
`probe` fixture, the `http` clients and the value recorders add to it. When the report that
decides the probe's result is made (the call, or a setup that failed or skipped, or a failed
teardown), :func:`attach` writes the record, with the reason and one-line message taken from
the exception, into the report's `user_properties` under :data:`EVIDENCE_PROPERTY` (xdist
forwards user properties, not stashes). The controller reads it back with :func:`of_report`.
Nothing is ever parsed out of a report's text.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from slo.outcomes import PROBE_KINDS

if TYPE_CHECKING:
    from slo.probe.client import RequestRecord

__all__ = [
    "DEGRADED_PROPERTY",
    "EVIDENCE_PROPERTY",
    "MAX_NOTE",
    "VALUE_KINDS",
    "Evidence",
    "RecordedValue",
    "ValueKind",
    "of_report",
    "value_problem",
]

#: The `user_properties` entry a probe's evidence travels in, from an xdist worker to the controller.
EVIDENCE_PROPERTY = "slo_evidence"
#: The JUnit property of a degraded probe's passing case: the one-line reason it is degraded.
DEGRADED_PROPERTY = "degraded"
#: Characters of a failure message or a note kept with a result.
MAX_NOTE = 300

ValueKind = Literal["gauge", "counter", "histogram"]
VALUE_KINDS: tuple[ValueKind, ...] = ("gauge", "counter", "histogram")
PROBE_LABELS = ("probe", "target", "slo")

_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
#: The suite's own families are ``synthetic_<one of these>...``: a value there would replace
#: them (``probe_success`` would report every probe as passing).
_SUITE_FAMILIES = ("probe_", "suite_", "target_", "maintenance", "load_")
#: Series suffixes of counters and histograms: a value named with one would collide with
#: another value's series (a gauge ``x_total`` with a counter ``x``).
_SERIES_SUFFIXES = ("_total", "_bucket", "_count", "_sum")
#: The Pushgateway's grouping labels: a value's own would be overwritten, or refused (400).
_GROUPING_LABELS = ("job", "instance", "environment", "location")


@dataclass(frozen=True)
class RecordedValue:
    """A named number a probe recorded (``probe.value``), pushed as ``synthetic_<name>``."""

    name: str
    value: float
    kind: ValueKind
    labels: tuple[tuple[str, str], ...]


def value_problem(name: str, value: object, kind: str, labels: Mapping[str, object]) -> str | None:
    """What is wrong with a value a probe records, or None: the one rule for names and labels."""
    if not _NAME.fullmatch(name):
        return f"probe value name {name!r} is not a metric name ([a-zA-Z_][a-zA-Z0-9_]*)"
    if name.startswith(_SUITE_FAMILIES):
        return (
            f"probe value {name}: synthetic_{name} would shadow the suite's own series "
            f"(names starting with {', '.join(_SUITE_FAMILIES)} are reserved)"
        )
    if name.endswith(_SERIES_SUFFIXES):
        return (
            f"probe value {name}: a name ending in {', '.join(_SERIES_SUFFIXES)} would collide with "
            "the series of a counter or histogram"
        )
    if kind not in VALUE_KINDS:
        return f"probe value {name}: kind {kind!r} is not one of {', '.join(VALUE_KINDS)}"
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return f"probe value {name}: {value!r} is not a finite number"
    if kind == "counter" and value < 0:
        return f"probe value {name}: a counter cannot go down by {value}"
    for label in labels:
        if label in _GROUPING_LABELS:
            return f"probe value {name}: label {label!r} is a grouping label of the push, not allowed"
        if not _NAME.fullmatch(label) or label.startswith("__") or label in (*PROBE_LABELS, "le"):
            return f"probe value {name}: label {label!r} is not allowed"
    return None


@dataclass
class Evidence:
    """Everything one run of a probe leaves for the controller."""

    target: str = ""
    slo: str = ""
    kind: str = PROBE_KINDS[0]
    #: The registered alert the probe feeds (``@pytest.mark.probe(alert=...)``), or "".
    alert: str = ""
    #: Answered requests, and timed-out ones (slower than the timeout, so over any latency
    #: threshold), in seconds; a refused connection has no latency to speak of.
    latencies: list[float] = field(default_factory=list)
    #: Phases of the last request.
    phases: dict[str, float] = field(default_factory=dict)
    #: Set when the requests were made before the call phase (the concurrent checks): the
    #: probe's duration is theirs, not the call's, which only judged.
    duration: float | None = None
    #: A failure reason of the closed vocabulary (`slo.exchange.failures`), None when it passed.
    reason: str | None = None
    #: One line: what went wrong, from the exception.
    message: str = ""
    values: list[RecordedValue] = field(default_factory=list)
    #: Readings kept for the probe's next run (a budget probe judges an interval).
    reading: dict[str, float | str] = field(default_factory=dict)
    #: One line about what a passing probe measured.
    note: str = ""
    #: Why the probe is degraded (a slow request, or its own soft assertion); "" when it is not.
    degraded: str = ""

    def degrade(self, reason: str) -> None:
        """Mark the run degraded; the first reason stands (a later one says no more about
        the run than that it was degraded, which it already is)."""
        if not self.degraded:
            line = next((line.strip() for line in reason.splitlines() if line.strip()), "degraded")
            self.degraded = line[:MAX_NOTE]

    def add_request(self, record: RequestRecord) -> None:
        if record.status is not None or record.reason == "timeout":
            self.latencies.append(round(record.elapsed, 6))
        self.phases = record.phases.as_dict()

    def replace_requests(self, records: list[RequestRecord]) -> None:
        """Requests timed before the call phase: a rerun's are the probe's requests now."""
        self.latencies, self.phases = [], {}
        for record in records:
            self.add_request(record)
        self.duration = round(sum(record.elapsed for record in records), 6)

    def add_value(self, name: str, value: float, kind: ValueKind, labels: Mapping[str, object]) -> str | None:
        """Record a value; what is wrong with it instead (:func:`value_problem`)."""
        problem = value_problem(name, value, kind, labels)
        if problem is None:
            ordered = tuple(sorted((str(k), str(v)) for k, v in labels.items()))
            self.values.append(RecordedValue(name, float(value), kind, ordered))
        return problem

    def encode(self, scrub: Callable[[Any], Any] | None = None) -> str:
        """The record as one JSON document; `scrub` (``slo.redact.scrub_values``) masks the
        secrets in its values before it is made, so it is never parsed again to scrub it."""
        document = asdict(self)
        return json.dumps(document if scrub is None else scrub(document), separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> Evidence:
        raw: dict[str, Any] = json.loads(text)
        values = [
            RecordedValue(
                v["name"], float(v["value"]), v["kind"], tuple((str(k), str(x)) for k, x in v["labels"])
            )
            for v in raw.pop("values", [])
        ]
        known = {name: raw[name] for name in cls.__dataclass_fields__ if name in raw}
        if isinstance(phases := known.get("phases"), dict):
            # One string per phase name for the whole run: json makes new keys per document,
            # and the collector keeps every probe's phases to the end.
            known["phases"] = {sys.intern(str(name)): value for name, value in phases.items()}
        return cls(**known, values=values)


def of_report(report: Any) -> Evidence | None:
    """The evidence a report carries, or None (not a probe's, or a phase that decided nothing)."""
    for name, value in getattr(report, "user_properties", ()):
        if name == EVIDENCE_PROPERTY:
            return Evidence.decode(str(value))
    return None
