"""The OpenAI-compatible LLM gateway (default port 4000), shaped like a LiteLLM proxy.

Routes: ``/health/liveliness``, ``/health/readiness`` (both unauthenticated, as in LiteLLM,
because orchestrator probes carry no API key), ``/health`` (per-model endpoint health),
``/v1/models``, ``/v1/chat/completions`` (plain and streaming) and ``/metrics``.

``/health`` answers 200 even when models fail, like LiteLLM: ``error_rate`` is rolled per
model endpoint and the failures are listed in ``unhealthy_endpoints``, so a probe that only
checks the status code misses them, which is exactly what a good probe must not do.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from random import Random
from typing import Any

from slo.dev.refstack.completions import (
    InvalidRequest,
    complete,
    completion_body,
    parse_chat_request,
    stream_events,
)
from slo.dev.refstack.deployment import Deployment
from slo.dev.refstack.faults import COMMON_FIELDS, Faults, FaultState
from slo.dev.refstack.server import (
    Request,
    Response,
    Service,
    Stream,
    error_response,
    json_response,
)

FAULT_FIELDS = COMMON_FIELDS | {"unhealthy_endpoints"}
COMPLETIONS_PATH = "/v1/chat/completions"


class GatewayService(Service):
    """A LiteLLM-like proxy in front of the deployment's simulated models."""

    def __init__(
        self, deployment: Deployment, faults: Faults | None = None, *, rng: Random | None = None
    ) -> None:
        super().__init__("gateway", FaultState(FAULT_FIELDS, faults, rng=rng), deployment.gateway_metrics)
        self.deployment = deployment
        self.add("GET", "/health/liveliness", self._liveliness, auth=False)
        self.add("GET", "/health/readiness", self._readiness, auth=False)
        self.add("GET", "/health", self._health, errors=False)
        self.add("GET", "/v1/models", self._models)
        self.add("POST", COMPLETIONS_PATH, self._chat_completions)

    def in_flight(self, path: str) -> AbstractContextManager[None]:
        # A completion in flight is an active session, injected latency included.
        return self.deployment.session() if path == COMPLETIONS_PATH else nullcontext()

    def _liveliness(self, request: Request) -> Response:
        return json_response("I'm alive!")

    def _readiness(self, request: Request) -> Response:
        return json_response(
            {
                "status": "connected",
                "db": "connected",
                "cache": None,
                "litellm_version": "refstack",
                "success_callbacks": [],
            }
        )

    def _health(self, request: Request) -> Response:
        faults = self.faults.current()
        healthy: list[dict[str, Any]] = []
        unhealthy: list[dict[str, Any]] = []
        for model in self.deployment.models:
            if model in faults.unhealthy_endpoints:
                unhealthy.append({"model": model, "error": "endpoint marked unhealthy (fault)"})
            elif self.faults.roll_error(faults):
                error = f"fault injected: status={faults.status}"
                unhealthy.append({"model": model, "error": error})
            else:
                healthy.append({"model": model})
        # A name outside the deployment's models is still reported: the fault asked for it.
        unhealthy += [
            {"model": name, "error": "endpoint marked unhealthy (fault)"}
            for name in faults.unhealthy_endpoints
            if name not in self.deployment.models
        ]
        return json_response(
            {
                "healthy_endpoints": healthy,
                "unhealthy_endpoints": unhealthy,
                "healthy_count": len(healthy),
                "unhealthy_count": len(unhealthy),
            }
        )

    def _models(self, request: Request) -> Response:
        data = [
            {"id": model, "object": "model", "created": 0, "owned_by": "refstack"}
            for model in self.deployment.models
        ]
        return json_response({"object": "list", "data": data})

    def _chat_completions(self, request: Request) -> Response | Stream:
        try:
            chat = parse_chat_request(request.body)
        except InvalidRequest as exc:
            return error_response(400, str(exc), "invalid_request_error", param=exc.param)
        if chat.model not in self.deployment.models:
            message = f"invalid model name {chat.model!r}; available: {', '.join(self.deployment.models)}"
            return error_response(400, message, "invalid_request_error", param="model")
        completion = complete(chat)
        self.deployment.record_completion(chat.model, completion.prompt_tokens, completion.completion_tokens)
        if chat.stream:
            return Stream(stream_events(completion))
        return json_response(completion_body(completion))
