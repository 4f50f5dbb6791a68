"""A tiny client for the Prometheus HTTP API: instant queries and the rule list.

::

    with PrometheusClient("http://127.0.0.1:9090") as prometheus:
        prometheus.query("sum(up)")   # [Sample(labels={}, value=3.0)]

Every failure (unreachable, HTTP error, PromQL error, unexpected answer) is one
:class:`PrometheusError` line that names the server and, for a query, the problem.
A bearer token comes from ``PROMETHEUS_TOKEN``, never from a command line or a file.

The server is not trusted to behave: each request ends by `timeout` in all (a trickled
answer too), an answer over `max_bytes` (raw or inflated) is refused before it is held, and
JSON nested deeper than the parser's recursion limit is refused instead of crashing.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import httpx

from slo import redact
from slo.exchange.body import ACCEPT_ENCODING, BodyTooLarge, UnsupportedEncoding, read_body
from slo.exchange.deadline import exchange_deadline
from slo.exchange.transport import bounded_transport

__all__ = ["MAX_ANSWER_BYTES", "PrometheusClient", "PrometheusError", "Sample"]

#: What one answer may hold: an SLO command's queries aggregate, and even a rule list of
#: thousands of rules is a few MiB; parsed, an answer takes about ten times its size.
MAX_ANSWER_BYTES = 16 * 1024 * 1024


class PrometheusError(Exception):
    """Prometheus could not answer; the message is meant for the user."""


@dataclass(frozen=True)
class Sample:
    """One element of an instant vector (or a scalar, with no labels)."""

    labels: dict[str, str]
    value: float


class PrometheusClient:
    """Instant queries against one Prometheus; use as a context manager to close it."""

    def __init__(
        self, url: str, *, timeout: float = 10.0, token: str | None = None, max_bytes: int = MAX_ANSWER_BYTES
    ) -> None:
        # A password in the URL works, and is never shown: messages name `self.url`.
        redact.register_url(url)
        if not url.startswith(("http://", "https://")):
            raise PrometheusError(
                f"invalid Prometheus URL {redact.safe_url(url)!r} (expected http://host:9090)"
            )
        self.url = redact.safe_url(url.rstrip("/"))
        token = token if token is not None else os.environ.get("PROMETHEUS_TOKEN", "")
        redact.register(token)
        headers = {"Accept-Encoding": ACCEPT_ENCODING}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.timeout, self.max_bytes = timeout, max_bytes
        self._client = httpx.Client(
            base_url=url.rstrip("/"), timeout=timeout, headers=headers, transport=bounded_transport()
        )

    def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        at = f"Prometheus at {self.url}"
        try:
            # Not a probe run's request: bound by its own deadline, never the run's.
            with (
                exchange_deadline(self.timeout, within_run=False),
                self._client.stream("GET", path, params=params) as response,
            ):
                raw = read_body(response, self.max_bytes)
        except httpx.TimeoutException:
            raise PrometheusError(f"{at}: no whole answer within {self.timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise PrometheusError(f"{at}: {type(exc).__name__}: {redact.excerpt(str(exc))}") from None
        except BodyTooLarge:
            raise PrometheusError(f"{at}: answer over {self.max_bytes} bytes (the client's cap)") from None
        except UnsupportedEncoding as exc:
            raise PrometheusError(f"{at}: {exc}") from None
        try:
            body = json.loads(raw)
        except RecursionError:
            raise PrometheusError(f"{at}: answer nested deeper than the JSON depth limit") from None
        except ValueError:
            raise PrometheusError(f"{at}: HTTP {response.status_code}, not a Prometheus API answer") from None
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
