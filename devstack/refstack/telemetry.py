"""Prometheus metrics of the reference stack, one private registry per service.

The API service exposes the seed chapter's ``claude_code_*`` families (the names its alert
rules and Grafana panels query); the gateway exposes a small LiteLLM-like set. Private
registries, never the global one, so two stacks in one process (or a test importing this
module) never collide.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.process_collector import ProcessCollector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0)
"""Latency buckets in seconds; 2.0 is a bucket boundary because the seed's P95 SLO is < 2 s."""


class ApiMetrics:
    """The seed chapter's families, as the API service's ``/metrics`` exposes them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "claude_code_api_requests_total",
            "Total API requests",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "claude_code_api_latency_seconds",
            "API request latency",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.active_sessions = Gauge(
            "claude_code_active_sessions", "Number of active sessions", registry=self.registry
        )
        self.tokens = Counter(
            "claude_code_tokens_used_total",
            "Total tokens used",
            ["model", "type"],
            registry=self.registry,
        )
        self.cost = Gauge("claude_code_cost_usd", "Total cost incurred in USD", registry=self.registry)
        self.sandbox_violations = Counter(
            "claude_sandbox_violations_total", "Sandbox violations", registry=self.registry
        )
        ProcessCollector(registry=self.registry)

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        """Count one served request and its latency."""
        self.requests.labels(endpoint=endpoint, status=str(status)).inc()
        self.latency.labels(endpoint=endpoint).observe(seconds)

    def exposition(self) -> bytes:
        """The text exposition format of every family."""
        return generate_latest(self.registry)


class GatewayMetrics:
    """A small set under LiteLLM's names: requests, failures, latency, tokens and spend."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "litellm_proxy_total_requests_metric",
            "Total requests served by the gateway",
            ["endpoint", "status_code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "litellm_request_total_latency_metric",
            "Gateway request latency in seconds",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.failed = Counter(
            "litellm_proxy_failed_requests_metric",
            "Requests the gateway answered with an error",
            ["endpoint", "exception_status"],
            registry=self.registry,
        )
        self.tokens = Counter(
            "litellm_total_tokens_metric",
            "Tokens processed by the gateway",
            ["model", "type"],
            registry=self.registry,
        )
        self.spend = Counter("litellm_spend_metric", "Spend in USD", ["model"], registry=self.registry)

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        """Count one served request and its latency."""
        self.requests.labels(endpoint=endpoint, status_code=str(status)).inc()
        if status >= 400:
            self.failed.labels(endpoint=endpoint, exception_status=str(status)).inc()
        self.latency.labels(endpoint=endpoint).observe(seconds)

    def exposition(self) -> bytes:
        """The text exposition format of every family."""
        return generate_latest(self.registry)
