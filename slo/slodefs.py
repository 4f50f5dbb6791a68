"""SLO and budget definitions: the `slos:` and `budgets:` sections of `monitoring.yaml`.

One definition drives the probe assertions, the load gate, the generated rules, the
dashboard and the release gate, so every consumer reads these models and nothing else.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from slo.model import Duration, Fraction, StrictModel

__all__ = [
    "SLI",
    "SLO",
    "Budgets",
    "EventsSLI",
    "HistogramSLI",
    "ProbeLatencySLI",
    "ProbesSLI",
]


class ProbesSLI(StrictModel):
    """Failed probe runs over all runs, from the `synthetic_probe_*` counters."""

    kind: Literal["probes"]
    target: str
    #: Regular expression on the `probe` label (the pytest node id); all probes when empty.
    probe: str = ""


class ProbeLatencySLI(StrictModel):
    """Probe requests slower than `threshold`, from `synthetic_probe_latency_seconds`."""

    kind: Literal["probe_latency"]
    target: str
    threshold: Duration = 2.0
    probe: str = ""


class EventsSLI(StrictModel):
    """Any ratio given as PromQL; ``{{window}}`` is replaced by each range (``5m``, ``1h``...)."""

    kind: Literal["events"]
    error_query: str
    total_query: str

    @field_validator("error_query", "total_query")
    @classmethod
    def _has_window(cls, query: str) -> str:
        if "{{window}}" not in query:
            raise ValueError("query must contain the {{window}} placeholder")
        return query


class HistogramSLI(StrictModel):
    """Requests slower than `threshold`, from a service's latency histogram."""

    kind: Literal["histogram"]
    #: Base name of the histogram, e.g. `claude_code_api_latency_seconds`.
    metric: str
    threshold: Duration = 2.0
    #: Extra label matchers, e.g. `job="claude-code-api"`.
    selector: str = ""


SLI = Annotated[
    ProbesSLI | ProbeLatencySLI | EventsSLI | HistogramSLI, Field(discriminator="kind")
]


class SLO(StrictModel):
    """One service level objective: a name, a target ratio of good events, a window, an SLI."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    objective: Fraction
    #: Rolling window (``30d``); ``calendar-month`` for the month to date.
    window: Duration | Literal["calendar-month"] = 30 * 86400.0
    description: str = ""
    runbook: str = ""
    sli: SLI

    @field_validator("objective")
    @classmethod
    def _objective_below_one(cls, objective: float) -> float:
        if not 0 < objective < 1:
            raise ValueError("objective must be above 0 and below 100 (percent)")
        return objective

    @property
    def error_budget(self) -> float:
        """The allowed share of bad events, e.g. 0.001 for 99.9 %."""
        return 1 - self.objective


class Budgets(StrictModel):
    """Threshold limits from the seed chapter; they become the classic threshold alerts."""

    api_error_rate: Fraction = 0.05
    api_p95_latency: Duration = 2.0
    tokens_per_hour: float = Field(100_000, gt=0)
    cost_usd: float = Field(1000, gt=0)
    sandbox_violations_per_minute: float = Field(10, gt=0)
    cpu: Fraction = 0.8
    memory: Fraction = 0.8
