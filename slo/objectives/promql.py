"""A tiny client for the Prometheus HTTP API: instant queries and the rule list.

::

    with PrometheusClient("http://127.0.0.1:9090") as prometheus:
        prometheus.query("sum(up)")   # [Sample(labels={}, value=3.0)]

Every failure (unreachable, HTTP error, PromQL error, unexpected answer) is one
:class:`PrometheusError` line that names the server and, for a query, the problem.
A bearer token comes from ``PROMETHEUS_TOKEN``, never from a command line or a file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import httpx

from slo import redact

__all__ = ["PrometheusClient", "PrometheusError", "Sample"]


class PrometheusError(Exception):
    """Prometheus could not answer; the message is meant for the user."""


@dataclass(frozen=True)
class Sample:
    """One element of an instant vector (or a scalar, with no labels)."""

    labels: dict[str, str]
    value: float


class PrometheusClient:
    """Instant queries against one Prometheus; use as a context manager to close it."""

    def __init__(self, url: str, *, timeout: float = 10.0, token: str | None = None) -> None:
        # A password in the URL works, and is never shown: messages name `self.url`.
        redact.register_url(url)
        if not url.startswith(("http://", "https://")):
            raise PrometheusError(
                f"invalid Prometheus URL {redact.safe_url(url)!r} (expected http://host:9090)"
            )
        self.url = redact.safe_url(url.rstrip("/"))
        token = token if token is not None else os.environ.get("PROMETHEUS_TOKEN", "")
        redact.register(token)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(base_url=url.rstrip("/"), timeout=timeout, headers=headers)

    def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        try:
            response = self._client.get(path, params=params)
        except httpx.HTTPError as exc:
            raise PrometheusError(
                f"Prometheus at {self.url}: {type(exc).__name__}: {redact.excerpt(str(exc))}"
            ) from None
        try:
            body = response.json()
        except ValueError:
            raise PrometheusError(
                f"Prometheus at {self.url}: HTTP {response.status_code}, not a Prometheus API answer"
            ) from None
        if not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error", "") if isinstance(body, dict) else ""
            raise PrometheusError(
                f"Prometheus at {self.url}: HTTP {response.status_code}: "
                f"{redact.excerpt(str(error or 'request failed'))}"
            )
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[Sample]:
        """Evaluate `expr` at `at` (a Unix time; now when None)."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._get("/api/v1/query", params)
        kind, result = data.get("resultType"), data.get("result")
        if kind == "vector":
            return [Sample(dict(item["metric"]), float(item["value"][1])) for item in result]
        if kind == "scalar":
            return [Sample({}, float(result[1]))]
        raise PrometheusError(f"Prometheus at {self.url}: {expr!r} returned a {kind}, not a vector")

    def rule_groups(self) -> list[dict[str, Any]]:
        """The loaded rule groups with each rule's health and last error (``/api/v1/rules``)."""
        groups: list[dict[str, Any]] = self._get("/api/v1/rules")["groups"]
        return groups

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
