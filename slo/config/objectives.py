"""SLO and budget definitions: the `slos:` and `budgets:` sections of `monitoring.yaml`.

One definition drives the probe assertions, the load gate, the generated rules, the
dashboard and the release gate, so every consumer reads these models and nothing else.

>>> slo = SLO.model_validate(
...     {"name": "api-availability", "objective": 99.9, "sli": {"kind": "probes", "target": "api"}}
... )
>>> round(slo.error_budget, 6), slo.window_name
(0.001, '30d')
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from slo import metric_names
from slo.config.fields import Duration, Fraction, StrictModel
from slo.units import format_duration

__all__ = [
    "CALENDAR_MONTH",
    "SLI",
    "SLO",
    "Alerting",
    "AlertingDefaults",
    "Budgets",
    "DegradedSLI",
    "EventsSLI",
    "FirstTokenSLI",
    "HistogramSLI",
    "ProbeLatencySLI",
    "ProbesSLI",
    "RunSLI",
    "glob_regex",
    "model_regex",
]

#: The `window` value for a calendar month (UTC), instead of a rolling duration.
CALENDAR_MONTH = "calendar-month"
_DAY = 86400.0

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# One PromQL label matcher: name, operator, double-quoted string with escapes.
_MATCHER = r'\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(?:=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*'
_SELECTOR = re.compile(rf"(?:{_MATCHER})(?:,{_MATCHER})*,?")
# Labels the generated rules set themselves: a user label of the same name would be overwritten.
_RESERVED_LABELS = {"alertname", "slo", "severity", "long", "short", "window", "environment"}


def glob_regex(patterns: Sequence[str]) -> str:
    """A regex (RE2 and Python alike) for node ids matching any of `patterns` (``*`` any
    characters, ``?`` one, everything else literal)."""
    alternatives = []
    for pattern in patterns:
        parts = ("." if char == "?" else ".*" if char == "*" else re.escape(char) for char in pattern)
        alternatives.append("".join(parts))
    return "|".join(f"(?:{alternative})" for alternative in alternatives)


def model_regex(model: str) -> str:
    """A regex for the node ids of a model's per-model probes (ending in ``[model]``)."""
    return ".*" + re.escape(f"[{model}]")


def _check_selector(selector: str) -> str:
    if selector and not _SELECTOR.fullmatch(selector):
        raise ValueError(f'invalid label matchers {selector!r} (write e.g. job="api", path=~"/v1/.*")')
    return selector


class _ProbeSelection(StrictModel):
    """The probes an SLI counts: one target, optionally narrowed by node-id patterns.

    ``probe`` matches the node id with shell-style wildcards (``*`` any characters, ``?`` one;
    everything else literal, so the ``[`` of a parametrised id is literal), e.g.
    ``"*sandbox*"``; several patterns mean any of them.
    """

    target: str = Field(min_length=1)
    probe: list[str] = Field(default_factory=list)
    #: A gateway model group: only its per-model probes (node ids ending in ``[model]``).
    model: str = ""

    @field_validator("probe", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("probe")
    @classmethod
    def _not_blank(cls, patterns: list[str]) -> list[str]:
        if any(not pattern.strip() for pattern in patterns):
            raise ValueError("probe patterns must not be empty")
        return patterns

    @property
    def narrowed(self) -> bool:
        """Whether only some of the target's probes count (patterns or a model)."""
        return bool(self.probe or self.model)

    def selects(self, probe: str) -> bool:
        """Whether the probe with node id `probe` is one of the patterns' (all when none) and,
        with a `model`, one of that model's probes."""
        if self.model and not probe.endswith(f"[{self.model}]"):
            return False
        return not self.probe or re.fullmatch(glob_regex(self.probe), probe) is not None


class ProbesSLI(_ProbeSelection):
    """Failed runs of a target over all its runs, from the `synthetic_target_*` counters.

    An event is one run of the target (one timer run of the suite): bad when any of its
    availability probes (those `probe` selects, when given) failed in that run.
    """

    kind: Literal["probes"]


class DegradedSLI(_ProbeSelection):
    """Degraded runs of a target over the runs that worked: a "fast enough" objective, from
    the `synthetic_target_*` counters.

    An event is a run of the target whose availability probes (those `probe` selects) all
    worked; it is bad when any of them was degraded (slower than `degraded_after`, or a soft
    assertion). A failed run is the availability SLO's business and no event here, so an
    outage neither burns this budget nor dilutes it.
    """

    kind: Literal["degraded"]


#: The SLIs whose events are runs of a target, counted by the runner per target (and per SLO
#: when its `probe` patterns narrow the target's probes).
RunSLI = ProbesSLI | DegradedSLI


class ProbeLatencySLI(_ProbeSelection):
    """Probe requests slower than `threshold`, from `synthetic_probe_latency_seconds`."""

    #: The histogram it counts.
    metric: ClassVar[str] = metric_names.PROBE_LATENCY
    kind: Literal["probe_latency"]
    threshold: Duration = Field(2.0, gt=0)


class FirstTokenSLI(ProbeLatencySLI):
    """Streams whose first token came after `threshold`, from the streaming gateway probes'
    `synthetic_gen_ai_time_to_first_token_seconds` (labelled `model` and `api`)."""

    metric: ClassVar[str] = metric_names.value_metric(metric_names.GEN_AI_FIRST_TOKEN)
    kind: Literal["first_token"]  # type: ignore[assignment]


class EventsSLI(StrictModel):
    """Any ratio given as PromQL returning per-second rates (``rate(...[{{window}}])``).

    ``{{window}}`` is replaced by each range (``5m``, ``1h``, ``30d``...). Give the bad events
    as `error_query`, or the good ones as `good_query` (bad = total - good).
    """

    kind: Literal["events"]
    error_query: str = ""
    good_query: str = ""
    total_query: str

    @field_validator("error_query", "good_query", "total_query")
    @classmethod
    def _has_window(cls, query: str) -> str:
        if query and "{{window}}" not in query:
            raise ValueError("query must contain the {{window}} placeholder")
        if query and "rate(" not in query:
            # Event counts for the minimum-events guard are rate x seconds: increase() or a
            # gauge would give wrong counts without any visible error.
            raise ValueError("query must return per-second rates: use rate(...[{{window}}])")
        return query

    @model_validator(mode="after")
    def _one_of_error_or_good(self) -> EventsSLI:
        if bool(self.error_query) == bool(self.good_query):
            raise ValueError("give exactly one of error_query or good_query")
        return self


class HistogramSLI(StrictModel):
    """Requests slower than `threshold`, from a service's latency histogram.

    The histogram must have a bucket at exactly `threshold` (``le="2"`` and ``le="2.0"`` both
    count); the generated rules alert with ``SLOThresholdBucketMissing`` when it has none.
    """

    kind: Literal["histogram"]
    #: Base name of the histogram, e.g. `claude_code_api_latency_seconds`.
    metric: str
    threshold: Duration = Field(2.0, gt=0)
    #: Extra label matchers, e.g. `job="claude-code-api"`.
    selector: str = ""

    @field_validator("metric")
    @classmethod
    def _base_name(cls, metric: str) -> str:
        if not _METRIC_NAME.fullmatch(metric):
            raise ValueError(f"invalid metric name {metric!r}")
        for suffix in ("_bucket", "_count", "_sum"):
            if metric.endswith(suffix):
                raise ValueError(
                    f"give the histogram's base name, without {suffix} (e.g. {metric.removesuffix(suffix)!r})"
                )
        return metric

    _selector = field_validator("selector")(classmethod(lambda cls, v: _check_selector(v)))


SLI = Annotated[
    ProbesSLI | DegradedSLI | ProbeLatencySLI | FirstTokenSLI | EventsSLI | HistogramSLI,
    Field(discriminator="kind"),
]


class Alerting(StrictModel):
    """How the SLO's burn-rate alerts behave.

    `min_bad_events` is the low-traffic guard: no burn alert fires until the long window
    holds at least that many bad events. For a `probes` SLI an event is a run of the target,
    so at one run a minute a single failed run is 1/60 of the last hour, 16.7 times a 99.9 %
    budget, and would page without it; a total outage pages at its third failed run.

    `shortest_window` is the floor of the scaled alert windows: at one run a minute a shorter
    window holds too few events to mean anything. Lower it only for faster probe loops.
    """

    page: bool = True
    ticket: bool = True
    min_bad_events: int = Field(3, ge=1)
    shortest_window: Duration = Field(300.0, ge=1)
    #: Extra labels on the alerts (routing: ``team: sre``).
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("labels")
    @classmethod
    def _label_names(cls, labels: dict[str, str]) -> dict[str, str]:
        for name in labels:
            if not _LABEL_NAME.fullmatch(name) or name.startswith("__"):
                raise ValueError(f"invalid label name {name!r}")
            if name in _RESERVED_LABELS:
                raise ValueError(f"label {name!r} is set by the generated rules")
        return labels


class AlertingDefaults(StrictModel):
    """The top-level `alerting:` section: defaults for every SLO's alerts."""

    #: The `quorum` of every `probes` SLO that sets none.
    quorum: int = Field(1, ge=1, le=100)


class SLO(StrictModel):
    """One service level objective: a name, a target ratio of good events, a window, an SLI."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    objective: Fraction
    #: Rolling window in whole days (``30d``, ``28d``, ``7d``), or ``calendar-month`` (UTC).
    window: Duration | Literal["calendar-month"] = 30 * _DAY
    description: str = ""
    #: URL (or short text) put on every alert of this SLO as the `runbook` annotation.
    runbook: str = ""
    alerting: Alerting = Alerting()
    #: Locations that must agree before a burn alert holds (a `probes` SLI only): the SLI over
    #: a window is the N-th highest location error ratio (:mod:`slo.objectives.rules.quorum`).
    #: Unset: the top-level `alerting.quorum` (1: every location's runs pooled, as one).
    quorum: int | None = Field(None, ge=1, le=100)
    sli: SLI

    @model_validator(mode="after")
    def _quorum_counts_locations(self) -> SLO:
        if (self.quorum or 1) > 1 and not isinstance(self.sli, ProbesSLI):
            raise ValueError("quorum counts the locations of probe runs: only a `probes` SLI takes it")
        return self

    @property
    def locations_quorum(self) -> int:
        """How many locations must agree: 1 (pooled) unless the SLO or `alerting.quorum` says more."""
        return self.quorum or 1

    @field_validator("objective")
    @classmethod
    def _objective_below_one(cls, objective: float) -> float:
        if not 0 < objective < 1:
            raise ValueError("objective must be above 0 and below 100 (percent)")
        return objective

    @field_validator("window")
    @classmethod
    def _whole_days(cls, window: float | str) -> float | str:
        if isinstance(window, float) and (window % _DAY or not _DAY <= window <= 90 * _DAY):
            raise ValueError(
                f"window must be whole days from 1d to 90d, or {CALENDAR_MONTH} "
                f"(got {format_duration(window)})"
            )
        return window

    @property
    def error_budget(self) -> float:
        """The allowed share of bad events, e.g. 0.001 for 99.9 %."""
        return 1 - self.objective

    @property
    def window_seconds(self) -> float:
        """The window's length; a calendar month counts as 30 days (for alert scaling)."""
        return 30 * _DAY if self.window == CALENDAR_MONTH else float(self.window)

    @property
    def window_name(self) -> str:
        """``30d``, ``7d`` or ``calendar-month``: the `window` label of the SLO-window series."""
        # Days, as people say it ("28d", not format_duration's "4w"); windows are whole days.
        return self.window if isinstance(self.window, str) else f"{round(self.window / _DAY)}d"


class Budgets(StrictModel):
    """Threshold limits from the seed chapter; they become the classic threshold alerts."""

    api_error_rate: Fraction = 0.05
    api_p95_latency: Duration = Field(2.0, gt=0)
    tokens_per_hour: float = Field(100_000, gt=0)
    cost_usd: float = Field(1000, gt=0)
    sandbox_violations_per_minute: float = Field(10, gt=0)
    cpu: Fraction = 0.8
    memory: Fraction = 0.8
    #: `SyntheticProbesStale` fires when no probe run has been pushed for this long
    #: (a few probe intervals: five one-minute runs by default).
    probes_stale_after: Duration = Field(300.0, gt=0)
