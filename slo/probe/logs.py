"""The seed's log analysis (34.3.5) as counts over windows, from files or Elasticsearch.

    counts = count_files(settings, now=time.time())          # JSON lines, rotated files too
    counts = count_elasticsearch(settings, client, now)       # the seed's queries, via `_count`
    counts.errors, counts.slow, anomaly(counts, settings)

Both backends count the same things: error entries and slow requests in the last `window`,
and log entries (requests) in the last `anomaly_window` and the one before it.
"""

from __future__ import annotations

import base64
import glob
import gzip
import json
import re
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, cast

from slo.config.logs import ElasticsearchSource, LogFormat, LogsProbe
from slo.config.targets import Target
from slo.exchange.deadline import probe_deadline
from slo.exchange.failures import ProbeFailure
from slo.files import open_regular
from slo.probe.client import ProbeClient
from slo.probe.expect import describe, expect_json
from slo.units import format_duration

__all__ = [
    "LogCounts",
    "anomaly",
    "count_elasticsearch",
    "count_files",
    "elasticsearch_queries",
    "elasticsearch_target",
    "iso",
]


@dataclass(frozen=True)
class LogCounts:
    errors: int
    slow: int
    #: Entries in the last `anomaly_window`, and in the window before it.
    current: int
    previous: int
    #: Lines that could not be read as an entry (files only).
    unreadable: int = 0
    #: Where the first of them is (``api.log line 12``), so someone can look at it.
    first_unreadable: str = ""


def iso(timestamp: float) -> str:
    """UTC, millisecond precision: the shape Elasticsearch's default date format reads."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def anomaly(counts: LogCounts, settings: LogsProbe) -> str | None:
    """The seed's rule: this window's requests over `anomaly_factor` times the previous one's."""
    if counts.current < settings.anomaly_min_requests:
        return None
    if counts.current > settings.anomaly_factor * counts.previous:
        return (
            f"{counts.current} requests in the last {_span(settings.anomaly_window)}, over "
            f"{settings.anomaly_factor:g} x the {counts.previous} of the "
            f"{_span(settings.anomaly_window)} before"
        )
    return None


def _span(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    return f"{seconds / 60:g}m" if seconds % 60 == 0 else f"{seconds:g}s"


# --- files ---------------------------------------------------------------------------------


def log_files(patterns: list[str], since: float) -> list[Path]:
    """Files matching the patterns, skipping any last written before `since` (all old lines).

    No file at all is a failure: the service stopped logging, or the patterns are wrong.
    """
    found = {Path(path) for pattern in patterns for path in glob.glob(pattern)}
    found = {path for path in found if path.is_file()}
    if not found:
        raise ProbeFailure(f"logs: no file matches {', '.join(patterns)} (logs.files)")
    return sorted(path for path in found if path.stat().st_mtime >= since)


def _open(raw: BinaryIO, path: Path) -> BinaryIO:
    # logrotate's `compress` leaves app.log.2.gz beside app.log.1
    if path.suffix == ".gz":
        return cast(BinaryIO, gzip.open(raw, "rb"))
    return raw


def _lines(path: Path, cap: int) -> Iterator[bytes | None]:
    """Each line of the file; None for one longer than `cap` (read past without keeping it)."""
    # A FIFO put in a file's place after the glob must not hang the probe.
    with open_regular(path) as raw, _open(raw, path) as stream:
        while True:
            line = stream.readline(cap + 1)
            if not line:
                return
            if len(line) > cap and not line.endswith(b"\n"):
                while (rest := stream.readline(cap)) and not rest.endswith(b"\n"):
                    pass
                yield None
                continue
            yield line


def _timestamp(value: Any) -> float | None:
    # A number no float holds (400 digits) or a date no clock reaches is not a timestamp.
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            # epoch seconds, or milliseconds (what Filebeat and many loggers write)
            return value / 1000 if value > 1e11 else float(value)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value)
            # No zone written: taken as UTC, like Elasticsearch does.
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    except (ValueError, OverflowError, OSError):
        return None
    return None


def _entry(
    line: bytes, fmt: LogFormat, pattern: re.Pattern[str] | None
) -> tuple[float, str, float | None] | None:
    """(time, level, latency) of one line, or None when it is not an entry of this format."""
    text = line.decode("utf-8", "replace").strip()
    if not text:
        return None
    fields: dict[str, Any]
    if pattern is not None:
        match = pattern.search(text)
        if match is None:
            return None
        fields = {"timestamp": match["timestamp"], "level": match["level"]}
        fields["latency"] = match.groupdict().get("latency")
        keys = ("timestamp", "level", "latency")
    else:
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):  # digits past Python's limit, nesting past the stack
            return None
        if not isinstance(document, dict):
            return None
        fields = document
        keys = (fmt.timestamp, fmt.level, fmt.latency)
    when = _timestamp(fields.get(keys[0]))
    if when is None:
        return None
    latency: float | None
    try:
        latency = float(fields[keys[2]]) if fields.get(keys[2]) is not None else None
    except (TypeError, ValueError, OverflowError):
        latency = None
    return when, str(fields.get(keys[1], "")), latency


def count_files(settings: LogsProbe, now: float) -> LogCounts:
    """Count the entries of the configured files; raises ProbeFailure when none can be read."""
    fmt = settings.format
    pattern = re.compile(fmt.pattern) if fmt.pattern else None
    error_levels = {level.upper() for level in fmt.error_levels}
    window_start = now - settings.window
    current_start = now - settings.anomaly_window
    previous_start = now - 2 * settings.anomaly_window
    files = log_files(settings.files, min(window_start, previous_start))
    deadline = probe_deadline(settings.deadline)
    errors = slow = current = previous = unreadable = entries = 0
    first_unreadable = ""
    for path in files:
        try:
            for number, line in enumerate(_lines(path, settings.max_line_bytes), 1):
                if time.monotonic() >= deadline:
                    raise ProbeFailure(
                        f"logs {path}: reading stopped at the deadline (logs.deadline "
                        f"{settings.deadline:g}s or the run deadline) after {entries + unreadable} lines",
                        "timeout",
                    )
                entry = _entry(line, fmt, pattern) if line is not None else None
                if entry is None:
                    unreadable += 1
                    first_unreadable = first_unreadable or f"{path.name} line {number}"
                    continue
                entries += 1
                when, level, latency = entry
                if when > now:
                    continue
                if when >= window_start:
                    errors += level.upper() in error_levels
                    slow += latency is not None and latency >= settings.slow_threshold
                if when >= current_start:
                    current += 1
                elif when >= previous_start:
                    previous += 1
        except (OSError, EOFError, zlib.error) as exc:
            raise ProbeFailure(f"logs {path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    if files and entries == 0:
        raise ProbeFailure(
            f"logs {', '.join(settings.files)}: none of {unreadable} lines is an entry with "
            f"{'the pattern' if pattern else f'a {fmt.timestamp} field'} (logs.format), "
            f"the first: {first_unreadable}"
        )
    return LogCounts(errors, slow, current, previous, unreadable, first_unreadable)


# --- Elasticsearch -------------------------------------------------------------------------


def elasticsearch_queries(settings: LogsProbe, now: float) -> dict[str, dict[str, Any]]:
    """The seed's queries, as `_count` bodies (no hits fetched, only counted)."""
    fmt = settings.format
    since = {"range": {fmt.timestamp: {"gte": iso(now - settings.window)}}}
    if len(fmt.error_levels) == 1:
        level: dict[str, Any] = {"match": {fmt.level: fmt.error_levels[0]}}
    else:
        level = {
            "bool": {
                "should": [{"match": {fmt.level: name}} for name in fmt.error_levels],
                "minimum_should_match": 1,
            }
        }
    window = settings.anomaly_window
    return {
        "errors": {"query": {"bool": {"must": [level, since]}}},
        "slow": {
            "query": {"bool": {"must": [{"range": {fmt.latency: {"gte": settings.slow_threshold}}}, since]}}
        },
        "previous": {
            "query": {"range": {fmt.timestamp: {"gte": iso(now - 2 * window), "lt": iso(now - window)}}}
        },
        "current": {"query": {"range": {fmt.timestamp: {"gte": iso(now - window)}}}},
    }


def elasticsearch_target(source: ElasticsearchSource) -> Target:
    """The HTTP target the probe client talks to, with the source's credentials as headers."""
    headers: dict[str, str] = {}
    if source.api_key is not None:
        headers["Authorization"] = f"ApiKey {source.api_key.get_secret_value()}"
    elif source.username is not None:
        password = source.password.get_secret_value() if source.password is not None else ""
        pair = base64.b64encode(f"{source.username}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {pair}"
    return Target.model_validate(
        {"url": source.url, "headers": headers, "timeout": source.timeout, "verify": source.verify,
         "ca_file": source.ca_file}
    )  # fmt: skip


def count_elasticsearch(settings: LogsProbe, client: ProbeClient, now: float) -> LogCounts:
    """Each query through ``POST /<index>/_count``; a shard failure fails the probe (the count
    would be short, and a short error count looks healthy)."""
    assert settings.elasticsearch is not None
    path = f"/{settings.elasticsearch.index}/_count"
    counts: dict[str, int] = {}
    for name, body in elasticsearch_queries(settings, now).items():
        response = client.post(path, json=body)
        answer = expect_json(response)
        shards = answer.get("_shards", {}) if isinstance(answer, dict) else {}
        if shards.get("failed"):
            raise ProbeFailure(
                f"{describe(response)}: {shards['failed']} of {shards.get('total', '?')} shards failed, "
                "so the counts are incomplete"
            )
        if not isinstance(answer, dict) or not isinstance(answer.get("count"), int):
            raise ProbeFailure(f"{describe(response)}: answer has no count (is this Elasticsearch?)")
        counts[name] = answer["count"]
    return LogCounts(counts["errors"], counts["slow"], counts["current"], counts["previous"])


class LogChecks:
    """The log probes' checks on the `logs:` section: counts taken once per source per run,
    each check giving its failure line or None.

        checks = LogChecks(config.logs)
        assert not (problem := checks.too_many_errors("files")), problem
    """

    def __init__(self, settings: LogsProbe) -> None:
        self.settings = settings
        self._counts: dict[str, LogCounts] = {}

    @property
    def sources(self) -> list[str]:
        """The configured sources: ``files``, ``elasticsearch`` or both."""
        return [
            name
            for name, on in (("files", self.settings.files), ("elasticsearch", self.settings.elasticsearch))
            if on
        ]

    def counts(self, source: str) -> LogCounts:
        if source not in self._counts:
            now = time.time()
            if source == "files":
                self._counts[source] = count_files(self.settings, now)
            else:
                assert self.settings.elasticsearch is not None
                with ProbeClient(
                    "elasticsearch", elasticsearch_target(self.settings.elasticsearch)
                ) as client:
                    self._counts[source] = count_elasticsearch(self.settings, client, now)
        return self._counts[source]

    def too_many_errors(self, source: str) -> str | None:
        settings, errors = self.settings, self.counts(source).errors
        if errors <= settings.max_errors:
            return None
        return (
            f"logs ({source}): {errors} errors in the last {format_duration(settings.window)}, "
            f"over {settings.max_errors} (logs.max_errors)"
        )

    def too_many_slow(self, source: str) -> str | None:
        settings, slow = self.settings, self.counts(source).slow
        if slow <= settings.max_slow_requests:
            return None
        return (
            f"logs ({source}): {slow} requests slower than {format_duration(settings.slow_threshold)} "
            f"in the last {format_duration(settings.window)}, over {settings.max_slow_requests} "
            "(logs.max_slow_requests)"
        )

    def rate_anomaly(self, source: str) -> str | None:
        found = anomaly(self.counts(source), self.settings)
        return f"logs ({source}): request-rate anomaly: {found}" if found else None
