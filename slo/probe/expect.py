"""Assertions for probes that fail with a message the person on call understands. In a probe::

health = expect_json(http("api").get("/health"))
# ProbeFailure: api GET /health returned 503 in 12 ms: {"error": "upstream down"}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from slo.exchange.failures import ProbeFailure, classify_status
from slo.probe.client import TARGET_EXTENSION
from slo.redact import excerpt, scrub
from slo.units import format_ms

__all__ = ["describe", "expect_json", "expect_metrics", "expect_status", "json_path", "require_shape"]

#: One scrape: sample name -> [(labels, value)]. A declared family with no sample yet has an
#: empty list, so "the family exists" and "it has a value" can be told apart.
Samples = dict[str, list[tuple[dict[str, str], float]]]


def describe(response: httpx.Response) -> str:
    """``api GET /health``: who was asked what, for the start of a failure message.

    A JSON request naming a ``model`` (a chat completion) names it too:
    ``gateway POST /v1/chat/completions model=claude-sonnet-4``.
    """
    request = response.request
    target = request.extensions.get(TARGET_EXTENSION, request.url.host)
    model = _requested_model(request)
    return scrub(f"{target} {request.method} {request.url.path}" + (f" model={model}" if model else ""))


def _requested_model(request: httpx.Request) -> str:
    if "json" not in request.headers.get("content-type", ""):
        return ""
    try:
        body = json.loads(request.content)
    except (httpx.RequestNotRead, ValueError):
        return ""
    model = body.get("model") if isinstance(body, dict) else None
    return model if isinstance(model, str) else ""


def _text(response: httpx.Response) -> str:
    try:
        return response.text
    except (httpx.ResponseNotRead, UnicodeDecodeError):
        return ""


def _excerpt(response: httpx.Response) -> str:
    """One bounded, scrubbed line of the body: targets echo requests, secrets included."""
    try:
        content = response.content
    except httpx.ResponseNotRead:
        return ""
    return excerpt(content[:16384].decode(response.encoding or "utf-8", errors="replace"))


def _elapsed(response: httpx.Response) -> str:
    try:
        return format_ms(response.elapsed.total_seconds())
    except RuntimeError:  # a streamed response that is still open
        return "?"


def expect_status(response: httpx.Response, expected: int | list[int] = 200) -> httpx.Response:
    """The response, or a failure whose reason says what kind of error status it was.

    The message carries the first line of the error the target sent (an OpenAI-style
    ``error.message``), or an excerpt of the body when it sent no such message.
    """
    allowed = [expected] if isinstance(expected, int) else list(expected)
    if response.status_code not in allowed:
        wanted = " or ".join(map(str, allowed))
        reason, message = classify_status(response.status_code, _text(response))
        kind = "" if reason == "http_status" else f", {reason}"
        raise ProbeFailure(
            f"{describe(response)} returned {response.status_code} (expected {wanted}{kind}) "
            f"in {_elapsed(response)}: {message or _excerpt(response)}",
            reason,
        )
    return response


def expect_json(response: httpx.Response, status: int | list[int] = 200) -> Any:
    """The JSON body of a response with the expected status, or a clear failure."""
    expect_status(response, status)
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ProbeFailure(
            f"{describe(response)} returned malformed JSON in {_elapsed(response)}: {_excerpt(response)}"
        ) from None


def expect_metrics(response: httpx.Response) -> Samples:
    """The samples of a Prometheus text exposition, or a clear failure if it does not parse."""
    expect_status(response)
    samples: Samples = {}
    try:
        for family in text_string_to_metric_families(response.text):
            samples.setdefault(family.name, [])
            for sample in family.samples:
                samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    except ValueError as exc:
        raise ProbeFailure(
            f"{describe(response)} is not valid Prometheus text: {excerpt(str(exc))}"
        ) from None
    return samples


def json_path(document: Any, path: str) -> Any:
    """``json_path(doc, "usage.total_tokens")``; list items by index (``choices.0``)."""
    current = document
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            raise KeyError(path)
    return current


def require_shape(
    response: httpx.Response, document: Any, shape: Mapping[str, type | tuple[type, ...]]
) -> None:
    """Every dotted path in `shape` exists with the given type; one message lists all misses."""
    problems = []
    for path, expected_type in shape.items():
        try:
            value = json_path(document, path)
        except KeyError:
            problems.append(f"{path} missing")
            continue
        if not isinstance(value, expected_type) or (isinstance(value, bool) and expected_type is not bool):
            names = (
                expected_type.__name__
                if isinstance(expected_type, type)
                else "/".join(t.__name__ for t in expected_type)
            )
            problems.append(f"{path} is {type(value).__name__}, expected {names}")
    if problems:
        raise ProbeFailure(
            f"{describe(response)} returned an unexpected body: {'; '.join(problems)}: {_excerpt(response)}"
        )
