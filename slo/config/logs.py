"""The `logs:` section: the seed's log analysis (34.3.5) as budgets over a window.

logs:
  files: [/var/log/claude-code/*.log, /var/log/claude-code/*.log.*]   # rotated ones too
  window: 24h
  max_errors: 50
  elasticsearch: {url: http://elk.internal:9200, index: claude-code-*, api_key: ${ES_API_KEY}}
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator

from slo.config.fields import Duration, StrictModel, Url

__all__ = ["ElasticsearchSource", "LogFormat", "LogsProbe"]


class LogFormat(StrictModel):
    """How to read one log line: JSON lines (Filebeat's shape) or a regular expression."""

    timestamp: str = "@timestamp"
    level: str = "level"
    #: Request latency in seconds.
    latency: str = "latency"
    #: Levels counted as errors (compared case-insensitively).
    error_levels: list[str] = Field(default_factory=lambda: ["ERROR"], min_length=1)
    #: For plain-text logs: a regular expression with named groups `timestamp`, `level` and
    #: optionally `latency`; empty for JSON lines.
    pattern: str = ""

    @field_validator("pattern")
    @classmethod
    def _has_groups(cls, pattern: str) -> str:
        if pattern:
            try:
                groups = re.compile(pattern).groupindex
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
            missing = {"timestamp", "level"} - set(groups)
            if missing:
                raise ValueError(f"pattern needs the named groups {', '.join(sorted(missing))}")
        return pattern


class ElasticsearchSource(StrictModel):
    """Elasticsearch with Filebeat's indices; counted with the `_count` API."""

    url: Url = Field(repr=False)
    index: str = "claude-code-*"
    #: ``Authorization: ApiKey ...``; or `username` and `password` for basic auth.
    api_key: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    timeout: Duration = 10.0
    verify: bool = True
    ca_file: Path | None = None

    @field_validator("api_key", "username", "password", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value


class LogsProbe(StrictModel):
    #: Glob patterns of local log files; rotated files (``app.log.1``, ``app.log.2.gz``) count.
    files: list[str] = Field(default_factory=list)
    elasticsearch: ElasticsearchSource | None = None
    format: LogFormat = LogFormat()
    #: The seed's "errors in the last 24 h" and "requests slower than 2 s".
    window: Duration = Field(86400.0, gt=0)
    max_errors: int = Field(0, ge=0)
    slow_threshold: Duration = Field(2.0, gt=0)
    max_slow_requests: int = Field(0, ge=0)
    #: The anomaly rule: requests in the last `anomaly_window` over `anomaly_factor` times
    #: those of the window before it.
    anomaly_window: Duration = Field(3600.0, gt=0)
    anomaly_factor: float = Field(2.0, gt=1)
    #: Fewer requests than this in the current window are never called an anomaly.
    anomaly_min_requests: int = Field(100, ge=1)
    #: Lines longer than this are skipped (counted as unreadable), so one bad line costs bounded memory.
    max_line_bytes: int = Field(1 << 20, ge=1024)
    #: Reading the files in all (a .gz that inflates to gigabytes stops here), within the run deadline.
    deadline: Duration = Field(30.0, gt=0)

    @model_validator(mode="after")
    def _a_source(self) -> LogsProbe:
        if not self.files and self.elasticsearch is None:
            raise ValueError("needs files, elasticsearch or both")
        return self
