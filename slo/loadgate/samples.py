"""What one load run measured: the file the Locust master writes and `slo load` judges.

Both sides import this module and nothing of Locust's, so the verdict is computed (and unit
tested) in a plain process. The file is JSON; histograms travel as HdrHistogram histoblobs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slo.loadgate.histogram import LatencyHistogram, RateHistogram

__all__ = [
    "CONFIG_ERROR_PREFIX",
    "CONFIG_ERROR_STATUS",
    "FORMAT",
    "STREAM_CONTEXT_KEY",
    "CpuUsage",
    "EndpointRecord",
    "ErrorRecord",
    "LocustFigures",
    "ResultsError",
    "RunResults",
    "StreamSample",
]

#: Bumped when the file changes incompatibly: a master and `slo load` of different versions
#: must refuse each other rather than misread.
FORMAT = 1

#: A Locust process that finds a config mistake prints one line with this prefix and exits
#: with this status; `slo load` shows that line as its own usage error.
CONFIG_ERROR_STATUS = 4
CONFIG_ERROR_PREFIX = "slo load: "


#: Where a streamed request's :class:`StreamSample` travels to the recorder: the Locust
#: request event's ``context`` (plain Locust ignores it).
STREAM_CONTEXT_KEY = "slo_stream"


@dataclass(frozen=True)
class StreamSample:
    """What one streamed answer measured beside its total time (the request's response time)."""

    #: Until the first content delta; None when none came (the request failed first).
    first_token_ms: float | None
    #: Output tokens after the first over the time they took; None when it cannot be said
    #: (fewer than two tokens, or a stream that did not end).
    tokens_per_second: float | None
    #: The output tokens came from the stream's usage chunk (else from counting deltas).
    tokens_from_usage: bool


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
    #: Streamed answers only, made at the first one (an endpoint that never streams carries
    #: none): time to first token (ms) and output tokens per second.
    first_token: LatencyHistogram | None = None
    token_rate: RateHistogram | None = None
    #: Rate samples whose output tokens came from the usage chunk, and from counted deltas.
    tokens_from_usage: int = 0
    tokens_counted: int = 0

    @property
    def key(self) -> str:
        return f"{self.method} {self.name}"

    def record(self, response_time_ms: float, failed: bool, stream: StreamSample | None = None) -> None:
        self.requests += 1
        self.failures += failed
        self.histogram.record(response_time_ms)
        if stream is None:
            return
        if stream.first_token_ms is not None:
            self.first_token = self.first_token or LatencyHistogram()
            self.first_token.record(stream.first_token_ms)
        if stream.tokens_per_second is not None:
            self.token_rate = self.token_rate or RateHistogram()
            self.token_rate.record(stream.tokens_per_second)
            self.tokens_from_usage += stream.tokens_from_usage
            self.tokens_counted += not stream.tokens_from_usage

    def merge(self, other: EndpointRecord) -> None:
        self.requests += other.requests
        self.failures += other.failures
        self.histogram.merge(other.histogram)
        if other.first_token is not None:
            self.first_token = self.first_token or LatencyHistogram()
            self.first_token.merge(other.first_token)
        if other.token_rate is not None:
            self.token_rate = self.token_rate or RateHistogram()
            self.token_rate.merge(other.token_rate)
        self.tokens_from_usage += other.tokens_from_usage
        self.tokens_counted += other.tokens_counted

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
        if self.first_token is not None:
            data["first_token"] = self.first_token.encode()
        if self.token_rate is not None:
            data["token_rate"] = self.token_rate.encode()
            data["tokens_from_usage"] = self.tokens_from_usage
            data["tokens_counted"] = self.tokens_counted
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EndpointRecord:
        locust = data.get("locust")
        first_token, token_rate = data.get("first_token"), data.get("token_rate")
        return cls(
            method=data["method"],
            name=data["name"],
            requests=data["requests"],
            failures=data["failures"],
            histogram=LatencyHistogram.decode(data["histogram"]),
            locust=LocustFigures(**locust) if locust else None,
            first_token=LatencyHistogram.decode(first_token) if first_token else None,
            token_rate=RateHistogram.decode(token_rate) if token_rate else None,
            tokens_from_usage=data.get("tokens_from_usage", 0),
            tokens_counted=data.get("tokens_counted", 0),
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
