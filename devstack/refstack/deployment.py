"""The simulated deployment both services report on: models, token usage, cost, sessions.

One object shared by the API service and the gateway, so a completion served by the gateway
shows up in the API's ``/health`` and in ``claude_code_tokens_used_total``: the stack behaves
like one coherent deployment, which is what end-to-end probes expect.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from devstack.refstack.telemetry import ApiMetrics, GatewayMetrics


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens, the unit providers publish prices in."""

    input_per_mtok: float
    output_per_mtok: float


KNOWN_PRICES = {
    "claude-sonnet-4": ModelPrice(3.0, 15.0),
    "claude-haiku-3-5": ModelPrice(0.8, 4.0),
}
DEFAULT_MODELS = tuple(KNOWN_PRICES)
# Models named with --models that we have no price for are billed like the larger model, so
# the cost gauge still moves.
FALLBACK_PRICE = KNOWN_PRICES["claude-sonnet-4"]


class Deployment:
    """Token usage, cost and active sessions, thread-safe, mirrored into both registries."""

    def __init__(
        self,
        models: Sequence[str],
        api_metrics: ApiMetrics,
        gateway_metrics: GatewayMetrics,
        *,
        active_sandboxes: int = 2,
    ) -> None:
        self.models = tuple(models)
        self.active_sandboxes = active_sandboxes
        self.api_metrics = api_metrics
        self.gateway_metrics = gateway_metrics
        self._lock = threading.Lock()
        self._tokens = {model: {"input": 0, "output": 0} for model in self.models}
        self._cost = 0.0
        self._sessions = 0
        # Series exist from the start at zero so rate() has a baseline before the first request.
        for model in self.models:
            gateway_metrics.spend.labels(model=model)
            for kind in ("input", "output"):
                api_metrics.tokens.labels(model=model, type=kind)
                gateway_metrics.tokens.labels(model=model, type=kind)

    def record_completion(self, model: str, input_tokens: int, output_tokens: int) -> None:
        """Account one completion's tokens and cost."""
        price = KNOWN_PRICES.get(model, FALLBACK_PRICE)
        cost = (input_tokens * price.input_per_mtok + output_tokens * price.output_per_mtok) / 1e6
        with self._lock:
            used = self._tokens[model]
            used["input"] += input_tokens
            used["output"] += output_tokens
            self._cost += cost
            total_cost = self._cost
            for metrics in (self.api_metrics, self.gateway_metrics):
                metrics.tokens.labels(model=model, type="input").inc(input_tokens)
                metrics.tokens.labels(model=model, type="output").inc(output_tokens)
            self.api_metrics.cost.set(total_cost)
            self.gateway_metrics.spend.labels(model=model).inc(cost)

    @contextmanager
    def session(self) -> Iterator[None]:
        """Count a completion in flight as an active session for its duration."""
        with self._lock:
            self._sessions += 1
            self.api_metrics.active_sessions.set(self._sessions)
        try:
            yield
        finally:
            with self._lock:
                self._sessions -= 1
                self.api_metrics.active_sessions.set(self._sessions)

    def add_sandbox_violations(self, count: int) -> None:
        """Count injected sandbox violations as events."""
        self.api_metrics.sandbox_violations.inc(count)

    def usage(self) -> tuple[int, dict[str, dict[str, int]], float]:
        """Active sessions, tokens used per model and total cost, read consistently."""
        with self._lock:
            tokens = {model: dict(used) for model, used in self._tokens.items()}
            return self._sessions, tokens, self._cost
