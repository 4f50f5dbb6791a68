"""The OpenAI-compatible LLM gateway (default port 4000), shaped like a LiteLLM proxy.

Routes: ``/health/liveliness``, ``/health/readiness`` (both unauthenticated, as in LiteLLM,
because orchestrator probes carry no API key; the detailed payload is at
``/health/readiness/details``, with the key), ``/health`` (per-deployment health, one model
group with ``?model=NAME``), ``/model/info``, ``/v1/models``, ``/v1/chat/completions``
(plain and streaming) and ``/metrics`` (307 to ``/metrics/``, which needs the key).

The shapes are LiteLLM 1.108's: ``/health`` answers 200 even when deployments fail, each
entry naming the provider's model (``anthropic/claude-sonnet-4``) with its ``model_id``,
``api_base``, a multi-line ``error`` and ``exception_status``, and 503 for ``?model=NAME``
when none of that group is healthy. Streams carry usage only with
``stream_options.include_usage``; completions carry the ``x-litellm-*`` headers, fallbacks
included, so the probes pass and fail here as they do on LiteLLM.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from contextlib import AbstractContextManager, nullcontext
from random import Random
from typing import Any
from urllib.parse import parse_qs

from devstack.refstack.completions import (
    ChatRequest,
    Completion,
    InvalidRequest,
    complete,
    completion_body,
    error_event,
    parse_chat_request,
    stream_events,
)
from devstack.refstack.deployment import Deployment
from devstack.refstack.faults import COMMON_FIELDS, Faults, FaultState
from devstack.refstack.server import (
    Request,
    Response,
    Service,
    Stream,
    error_response,
    json_response,
)

FAULT_FIELDS = COMMON_FIELDS | {"unhealthy_endpoints", "fallback_models", "stream_error", "stream_cut"}
COMPLETIONS_PATH = "/v1/chat/completions"
API_BASE = "https://api.anthropic.com"
RATE_LIMITED = "litellm.RateLimitError: AnthropicException - rate limit exceeded (fault)"


def model_id(model: str) -> str:
    """A stable deployment id, shaped like LiteLLM's (a SHA-256 of the deployment)."""
    return hashlib.sha256(f"refstack/{model}".encode()).hexdigest()


def _deployment(model: str) -> dict[str, Any]:
    return {"model": f"anthropic/{model}", "model_id": model_id(model), "api_base": API_BASE}


def _health_error(message: str) -> str:
    # LiteLLM's health errors carry the stack trace after the first line.
    return f'{message}\nstack trace: Traceback (most recent call last):\n  File "refstack", line 1'


class GatewayService(Service):
    """A LiteLLM-like proxy in front of the deployment's simulated models."""

    def __init__(
        self, deployment: Deployment, faults: Faults | None = None, *, rng: Random | None = None
    ) -> None:
        super().__init__("gateway", FaultState(FAULT_FIELDS, faults, rng=rng), deployment.gateway_metrics)
        self.deployment = deployment
        self.add("GET", "/health/liveliness", self._liveliness, auth=False)
        self.add("GET", "/health/readiness", self._readiness, auth=False)
        self.add("GET", "/health/readiness/details", self._readiness_details)
        self.add("GET", "/health", self._health, errors=False)
        self.add("GET", "/model/info", self._model_info)
        self.add("GET", "/v1/models", self._models)
        self.add("POST", COMPLETIONS_PATH, self._chat_completions)
        # LiteLLM mounts its metrics app at /metrics/ and needs the key unless
        # require_auth_for_metrics_endpoint is false.
        self.add("GET", "/metrics", self._metrics_redirect, traffic=False)
        self.add("GET", "/metrics/", self._metrics, traffic=False, monitor_auth=True)

    def in_flight(self, path: str) -> AbstractContextManager[None]:
        # A completion in flight is an active session, injected latency included.
        return self.deployment.session() if path == COMPLETIONS_PATH else nullcontext()

    def _liveliness(self, request: Request) -> Response:
        return json_response("I'm alive!")

    def _readiness(self, request: Request) -> Response:
        # No database, as a LiteLLM proxy without one answers.
        return json_response({"status": "healthy", "db": "Not connected"})

    def _readiness_details(self, request: Request) -> Response:
        return json_response(
            {
                "status": "healthy",
                "db": "Not connected",
                "cache": None,
                "litellm_version": "refstack",
                "success_callbacks": [],
            }
        )

    def _metrics_redirect(self, request: Request) -> Response:
        return Response(307, b"", headers=(("Location", "/metrics/"),))

    def _health(self, request: Request) -> Response:
        faults = self.faults.current()
        wanted = parse_qs(request.query).get("model", [None])[0]
        # A name outside the deployment's models is still reported: the fault asked for it.
        extra = [name for name in faults.unhealthy_endpoints if name not in self.deployment.models]
        healthy: list[dict[str, Any]] = []
        unhealthy: list[dict[str, Any]] = []
        for model in (*self.deployment.models, *extra):
            if wanted is not None and model != wanted:
                continue
            if model in faults.unhealthy_endpoints:
                error, status = "litellm.APIConnectionError: endpoint marked unhealthy (fault)", 500
            elif model in faults.fallback_models:
                error, status = RATE_LIMITED, 429
            elif self.faults.roll_error(faults):
                error, status = f"litellm.APIError: fault injected: status={faults.status}", faults.status
            else:
                healthy.append(_deployment(model))
                continue
            entry = {**_deployment(model), "error": _health_error(error), "exception_status": status}
            unhealthy.append(entry)
        body = {
            "healthy_endpoints": healthy,
            "unhealthy_endpoints": unhealthy,
            "healthy_count": len(healthy),
            "unhealthy_count": len(unhealthy),
        }
        return json_response(body, 503 if wanted is not None and not healthy else 200)

    def _model_info(self, request: Request) -> Response:
        data = [
            {
                "model_name": model,
                "litellm_params": {"model": f"anthropic/{model}", "api_base": API_BASE},
                "model_info": {"id": model_id(model)},
            }
            for model in self.deployment.models
        ]
        return json_response({"data": data})

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
        faults = self.faults.current()
        served, fallbacks = chat.model, 0
        if chat.model in faults.fallback_models:
            others = [m for m in self.deployment.models if m not in faults.fallback_models]
            if not others:
                return error_response(429, RATE_LIMITED, "throttling_error")
            served, fallbacks = others[0], 1
        completion = complete(dataclasses.replace(chat, model=served))
        self.deployment.record_completion(served, completion.prompt_tokens, completion.completion_tokens)
        headers = _served_headers(completion, fallbacks)
        if chat.stream:
            return self._stream(chat, completion, headers, faults.stream_error, faults.stream_cut)
        response = json_response(completion_body(completion))
        return dataclasses.replace(response, headers=headers)

    def _stream(
        self,
        chat: ChatRequest,
        completion: Completion,
        headers: tuple[tuple[str, str], ...],
        error: bool,
        cut: bool,
    ) -> Stream:
        events = stream_events(completion, include_usage=chat.include_usage)
        if error:
            failure = error_event("litellm.APIConnectionError: upstream closed the stream (fault)", 500)
            return Stream(itertools.chain(itertools.islice(events, 1), [failure]), headers=headers)
        if cut:
            return Stream(itertools.islice(events, 1), headers=headers, cut=True)
        return Stream(events, headers=headers)


def _served_headers(completion: Completion, fallbacks: int) -> tuple[tuple[str, str], ...]:
    """The headers LiteLLM puts on every completion: who served it, at what cost."""
    return (
        ("x-litellm-model-group", completion.model),
        ("x-litellm-model-id", model_id(completion.model)),
        ("x-litellm-model-name", f"anthropic/{completion.model}"),
        ("x-litellm-model-api-base", API_BASE),
        ("x-litellm-attempted-retries", "0"),
        ("x-litellm-attempted-fallbacks", str(fallbacks)),
    )
