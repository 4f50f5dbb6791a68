"""What one load run measured: the file the Locust master writes and `slo load` judges.

Both sides import this module and nothing of Locust's, so the verdict is computed (and unit
tested) in a plain process. The file is JSON; histograms travel as HdrHistogram histoblobs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slo.loadgate.histogram import LatencyHistogram

__all__ = [
    "CONFIG_ERROR_PREFIX",
    "CONFIG_ERROR_STATUS",
    "FORMAT",
    "CpuUsage",
    "EndpointRecord",
    "ErrorRecord",
    "LocustFigures",
    "ResultsError",
    "RunResults",
]

#: Bumped when the file changes incompatibly: a master and `slo load` of different versions
#: must refuse each other rather than misread.
FORMAT = 1

#: A Locust process that finds a config mistake prints one line with this prefix and exits
#: with this status; `slo load` shows that line as its own usage error.
CONFIG_ERROR_STATUS = 4
CONFIG_ERROR_PREFIX = "slo load: "


class ResultsError(Exception):
    """The results file is missing, unreadable or from another version."""


@dataclass(frozen=True)
class LocustFigures:
    """Locust's own statistics for an endpoint, kept to show how far its rounding is off."""

    requests: int
    failures: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


@dataclass
class EndpointRecord:
    """Every measured request to one endpoint (``"METHOD name"``, as Locust names it)."""

    method: str
    name: str
    requests: int = 0
    failures: int = 0
    histogram: LatencyHistogram = field(default_factory=LatencyHistogram)
    locust: LocustFigures | None = None

    @property
    def key(self) -> str:
        return f"{self.method} {self.name}"

    def record(self, response_time_ms: float, failed: bool) -> None:
        self.requests += 1
        self.failures += failed
        self.histogram.record(response_time_ms)

    def merge(self, other: EndpointRecord) -> None:
        self.requests += other.requests
        self.failures += other.failures
        self.histogram.merge(other.histogram)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "method": self.method,
            "name": self.name,
            "requests": self.requests,
            "failures": self.failures,
            "histogram": self.histogram.encode(),
        }
        if self.locust is not None:
            data["locust"] = vars(self.locust)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EndpointRecord:
        locust = data.get("locust")
        return cls(
            method=data["method"],
            name=data["name"],
            requests=data["requests"],
            failures=data["failures"],
            histogram=LatencyHistogram.decode(data["histogram"]),
            locust=LocustFigures(**locust) if locust else None,
        )


@dataclass(frozen=True)
class CpuUsage:
    """CPU one Locust process used while measuring: over 90 % of a core means saturated."""

    process: str
    cpu_seconds: float
    wall_seconds: float
    #: Locust's own check (10 s averages) fired in this process.
    locust_warned: bool = False

    @property
    def percent(self) -> float:
        return 100.0 * self.cpu_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0


@dataclass(frozen=True)
class ErrorRecord:
    """One kind of failure, as Locust groups them (endpoint and message)."""

    endpoint: str
    message: str
    occurrences: int


@dataclass
class RunResults:
    """The measured part of one run (warm-up excluded), merged over every worker."""

    started: float
    measured_from: float
    measured_to: float
    users: int
    #: Workers that reported measurements (0: a single process ran the users).
    workers: int
    endpoints: dict[str, EndpointRecord] = field(default_factory=dict)
    #: Locust's own figures for all requests together.
    locust_total: LocustFigures | None = None
    cpu: list[CpuUsage] = field(default_factory=list)
    errors: list[ErrorRecord] = field(default_factory=list)
    #: What the Locust master noticed that weakens the results (a worker lost mid-run).
    warnings: list[str] = field(default_factory=list)

    @property
    def measured_seconds(self) -> float:
        return max(0.0, self.measured_to - self.measured_from)

    def write(self, path: Path) -> None:
        data = {
            "format": FORMAT,
            "started": self.started,
            "measured_from": self.measured_from,
            "measured_to": self.measured_to,
            "users": self.users,
            "workers": self.workers,
            "endpoints": [record.to_json() for record in self.endpoints.values()],
            "locust_total": None if self.locust_total is None else vars(self.locust_total),
            "cpu": [vars(usage) for usage in self.cpu],
            "errors": [vars(error) for error in self.errors],
            "warnings": self.warnings,
        }
        # Written whole, then renamed: a reader never sees half a file.
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(data), encoding="utf-8")
        partial.replace(path)

    @classmethod
    def read(cls, path: Path) -> RunResults:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ResultsError(f"{path}: no results (Locust did not finish the run)") from None
        except (OSError, ValueError) as exc:
            raise ResultsError(f"{path}: unreadable results: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ResultsError(f"{path}: results of another version (format {FORMAT} expected)")
        endpoints = [EndpointRecord.from_json(item) for item in data["endpoints"]]
        return cls(
            started=data["started"],
            measured_from=data["measured_from"],
            measured_to=data["measured_to"],
            users=data["users"],
            workers=data["workers"],
            endpoints={record.key: record for record in endpoints},
            locust_total=LocustFigures(**data["locust_total"]) if data["locust_total"] else None,
            cpu=[CpuUsage(**item) for item in data["cpu"]],
            errors=[ErrorRecord(**item) for item in data["errors"]],
            warnings=data["warnings"],
        )
