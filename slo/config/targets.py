"""Targets, environments and declarative checks: what the probes talk to."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from slo import conventions
from slo.config.cache import RedisTarget
from slo.config.fields import Duration, StrictModel, Url
from slo.units import format_duration

__all__ = ["Check", "Environment", "Target", "check_header_values"]

#: RFC 9110 field names are tokens; values visible ASCII, spaces and tabs.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")


def check_header_values(value: object) -> None:
    """Header names and values that can be sent, or a ValueError that never shows the value
    (it is usually a secret)."""
    items = value.items() if isinstance(value, dict) else [("", value)]
    for name, secret in items:
        if name and not _HEADER_NAME.fullmatch(str(name)):
            raise ValueError(f"header name {str(name)[:40]!r} is not a valid HTTP header name")
        text = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        if isinstance(text, str) and not _HEADER_VALUE.fullmatch(text):
            where = f"header {name}" if name else "value"
            problem = "a line break" if ("\n" in text or "\r" in text) else "a non-ASCII or control character"
            raise ValueError(f"{where} contains {problem} and cannot be sent (the value is not shown)")


def _degraded_within(limit_name: str, degraded_after: float | None, limit: float | None) -> None:
    """A degraded answer is one that still passes: its threshold must be below the one that fails."""
    if degraded_after is not None and limit is not None and degraded_after >= limit:
        raise ValueError(
            f"degraded_after ({format_duration(degraded_after)}) must be below {limit_name} "
            f"({format_duration(limit)}): an answer that slow fails, it cannot be degraded"
        )


class Target(StrictModel):
    """One service the probes talk to; the HTTP client applies all of it to every request."""

    #: ``redis`` targets are split off into :attr:`Environment.redis` before this model sees them.
    kind: Literal["http"] = "http"
    url: Url
    #: Sent as ``Authorization: Bearer <token>``; write it as ``${ENV_VAR}``.
    token: SecretStr | None = None
    #: Extra request headers; values are treated as secrets in every report.
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    timeout: Duration = 5.0
    #: An answer slower than this (but within the timeout) makes its probe degraded, not
    #: failed: good for availability SLOs, bad for a `degraded` SLI's "fast enough" one.
    degraded_after: Duration | None = None
    #: TLS verification: on by default; false only for a lab, never for production.
    verify: bool = True
    #: A CA bundle to trust instead of the system's (private PKI).
    ca_file: Path | None = None
    #: node_exporter on the target host, for the resources probe.
    node_exporter: Url | None = None
    #: Chat model the gateway probes request.
    model: str = "claude-sonnet-4"
    #: Also measure time to first token of a streaming completion.
    stream: bool = False
    #: A response body larger than this (raw or decompressed) fails the probe unread.
    max_response_bytes: int = Field(conventions.MAX_RESPONSE_BYTES, ge=1024, le=1 << 30)

    def request_headers(self) -> dict[str, str]:
        """The headers every request to this target carries, secrets revealed: for clients only."""
        headers = {name: value.get_secret_value() for name, value in self.headers.items()}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token.get_secret_value()}"
        return headers

    @model_validator(mode="after")
    def _degraded_before_timeout(self) -> Target:
        _degraded_within("timeout", self.degraded_after, self.timeout)
        return self

    @field_validator("kind", mode="before")
    @classmethod
    def _known_kind(cls, kind: object) -> object:
        if kind != "http":
            raise ValueError(f"unknown target kind {kind!r} (known: http, redis)")
        return kind

    @field_validator("token", "headers")
    @classmethod
    def _sendable(cls, value: object) -> object:
        check_header_values(value)
        return value

    @field_validator("token", "node_exporter", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        # `${TOKEN:-}` expands to "" when unset: that means no auth, not an empty bearer.
        return None if value == "" else value


class Environment(StrictModel):
    targets: dict[str, Target]
    #: The targets written with ``kind: redis``, kept apart so HTTP code never meets one.
    redis: dict[str, RedisTarget] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _split_kinds(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("targets"), dict) or "redis" in data:
            return data
        targets = data["targets"]
        redis = {n: t for n, t in targets.items() if isinstance(t, dict) and t.get("kind") == "redis"}
        if not redis:
            return data
        http = {n: t for n, t in targets.items() if n not in redis}
        return {**data, "targets": http, "redis": redis}


class Check(StrictModel):
    """A declarative HTTP check: becomes one parametrised probe, no Python needed."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    target: str | None = None
    path: str = "/"
    #: Absolute URL, instead of target + path. Kept out of reprs: it may carry credentials.
    url: Url | None = Field(None, repr=False)
    method: Literal["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"] = "GET"
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    body: Any = Field(None, repr=False)
    status: int | list[int] = 200
    #: Dotted JSON paths and the values they must equal, e.g. ``{"status": "healthy"}``.
    json_fields: dict[str, Any] = Field(default_factory=dict, alias="json")
    body_regex: str | None = None
    latency: Duration | None = None
    timeout: Duration | None = None
    #: A slower answer (within `latency` and `timeout`) makes the check degraded, not failed;
    #: unset, the target's `degraded_after` applies.
    degraded_after: Duration | None = None
    slo: str = ""

    @model_validator(mode="after")
    def _degraded_before_failing(self) -> Check:
        _degraded_within("latency", self.degraded_after, self.latency)
        _degraded_within("timeout", self.degraded_after, self.timeout)
        return self

    @field_validator("headers")
    @classmethod
    def _sendable(cls, value: object) -> object:
        check_header_values(value)
        return value

    @field_validator("body_regex")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return pattern
