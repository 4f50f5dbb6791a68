"""LLM gateway (LiteLLM-style): alive, ready, each configured model group served by a
healthy deployment, and a real completion, plain and streamed, that comes back valid, from
the model asked for, with usage, within its latency budgets.

Written against a real LiteLLM proxy: usage is streamed only when asked for
(``stream_options``), an answer from a fallback model is a 200 that only its headers give
away (``x-litellm-attempted-fallbacks``, ``x-litellm-model-group``), and ``/health`` names
provider models, with stack traces, so the probe reads it per model group.
"""

import json
import time
import warnings
from dataclasses import dataclass, field

import pytest

from slo import (
    EventLines,
    ProbeFailure,
    classify_status,
    describe,
    error_message,
    expect_json,
    expect_status,
    format_ms,
    probe_config,
    require_shape,
    safe_url,
)

pytestmark = pytest.mark.probe(target="gateway", slo="gateway-availability")

#: Response headers a LiteLLM proxy sets on every completion; the served model is recorded
#: from them (JUnit properties), and a fallback is told from them.
SERVED_HEADERS = {
    "served_model_group": "x-litellm-model-group",
    "served_model": "x-litellm-model-name",
    "served_model_id": "x-litellm-model-id",
    "attempted_fallbacks": "x-litellm-attempted-fallbacks",
    "response_cost_usd": "x-litellm-response-cost",
}


class GatewayDegraded(UserWarning):
    """Some deployments of a model group are down, but the group still answers."""


def gateway_models(config):
    """The model groups whose health is probed: `probes.gateway.models`, or the target's model."""
    settings = config.probes.gateway
    target = config.environment.targets.get(settings.target)
    return settings.models or ([target.model] if target else [])


def pytest_generate_tests(metafunc):
    if "model_group" in metafunc.fixturenames:
        metafunc.parametrize("model_group", gateway_models(probe_config(metafunc.config)))


def chat_request(slo_config, *, stream=False):
    settings = slo_config.probes.gateway
    request = {
        "model": slo_config.target(settings.target).model,
        "messages": [{"role": "user", "content": settings.prompt}],
        "max_tokens": settings.max_tokens,
        "stream": stream,
    }
    if stream:
        # Like OpenAI's API, LiteLLM streams usage only when asked to.
        request["stream_options"] = {"include_usage": True}
    return request


def test_gateway_liveliness(http):
    expect_status(http().get("/health/liveliness"))


def test_gateway_readiness(http):
    """LiteLLM answers ``{"status": "healthy", "db": "Not connected"}`` without a database,
    and 503 when a configured one is unreachable; older releases said ``connected``."""
    response = http().get("/health/readiness")
    readiness = expect_json(response)
    status = readiness.get("status") if isinstance(readiness, dict) else None
    assert status in ("healthy", "connected"), (
        f"{describe(response)} reports status {status!r}, expected healthy or connected"
    )
    db = readiness.get("db", "Not connected")
    assert db in ("connected", "Not connected"), f"{describe(response)} reports its database {db!r}"


def test_gateway_model_healthy(http, model_group):
    """``/health?model=NAME`` checks only that group's deployments (``/health`` alone calls
    every deployment live on each request, unless the proxy runs background health checks).
    All of them down fails; some down is a warning that names them."""
    client = http()
    response = client.get("/health", params={"model": model_group})
    # LiteLLM answers 503 when the group has no healthy deployment, with the same body.
    health = expect_json(response, [200, 503])
    require_shape(response, health, {"healthy_endpoints": list, "unhealthy_endpoints": list})
    healthy, unhealthy = health["healthy_endpoints"], health["unhealthy_endpoints"]
    total = len(healthy) + len(unhealthy)
    if not unhealthy:
        assert healthy, f"{describe(response)} lists no deployment of model group {model_group}"
        return
    deployments = _deployments(client)
    named = "; ".join(_describe_deployment(entry, model_group, deployments) for entry in unhealthy)
    if not healthy:
        first = unhealthy[0] if isinstance(unhealthy[0], dict) else {}
        status = first.get("exception_status")
        reason = classify_status(status, str(first.get("error", "")))[0] if isinstance(status, int) else None
        raise ProbeFailure(
            f"{describe(response)}: model group {model_group} down, "
            f"{len(unhealthy)} of {total} deployment(s) unhealthy: {named}",
            reason if reason and reason != "http_status" else "upstream",
        )
    warnings.warn(
        GatewayDegraded(
            f"{describe(response)}: model group {model_group} degraded, "
            f"{len(unhealthy)} of {total} deployment(s) unhealthy: {named}"
        ),
        stacklevel=1,
    )


def _deployments(client):
    """model_id -> (public name, api_base) from ``/model/info``; empty if it is not readable.

    ``/health`` names the provider's model (``openai/gpt-4o-mini``) and shows ``api_base``
    only to admin keys; ``/model/info`` has the public name and the configured base.
    """
    try:
        response = client.get("/model/info")
        data = response.json().get("data", []) if response.is_success else []
    except (ProbeFailure, ValueError, AttributeError):
        return {}
    found = {}
    for deployment in data if isinstance(data, list) else []:
        if not isinstance(deployment, dict):
            continue
        info = deployment.get("model_info") or {}
        params = deployment.get("litellm_params") or {}
        if isinstance(info, dict) and isinstance(params, dict) and info.get("id"):
            found[info["id"]] = (deployment.get("model_name"), params.get("api_base"))
    return found


def _describe_deployment(entry, model_group, deployments):
    if not isinstance(entry, dict):
        return str(entry)[:120]
    model_id = entry.get("model_id") or ""
    public, configured_base = deployments.get(model_id, (model_group, None))
    api_base = entry.get("api_base") or configured_base
    where = [
        f"{entry['model']}" if entry.get("model") else "",
        f"model_id {model_id[:12]}" if model_id else "",
    ]
    if api_base:
        where.append(f"api_base {safe_url(str(api_base))}")
    error = error_message(str(entry.get("error", "")))[0] or "no error given"
    return f"{public or model_group} ({', '.join(w for w in where if w)}): {error}"


def record_served_model(response, request):
    """Which deployment answered, as the gateway says: the report's properties (JUnit
    ``<property>``; the fixture ``record_property`` warns under the plugin's xunit2)."""
    for name, header in SERVED_HEADERS.items():
        if header in response.headers:
            request.node.user_properties.append((name, response.headers[header]))


def fallback_problem(response, requested, allowed):
    """Why the answer came from another model than the one asked for, or None."""
    if allowed:
        return None
    attempted = response.headers.get("x-litellm-attempted-fallbacks", "0").strip()
    group = response.headers.get("x-litellm-model-group", "")
    if attempted not in ("", "0") or (group and group != requested):
        return (
            f"{describe(response)} was answered by model group {group or '?'} after "
            f"{attempted or '?'} fallback(s) (x-litellm-attempted-fallbacks); "
            "set probes.gateway.allow_fallbacks to accept fallback answers"
        )
    return None


def test_chat_completion(http, slo_config, request):
    settings = slo_config.probes.gateway
    body = chat_request(slo_config)
    response = http().post("/v1/chat/completions", json=body)
    completion = expect_json(response)
    record_served_model(response, request)
    problem = fallback_problem(response, body["model"], settings.allow_fallbacks)
    if problem:
        raise ProbeFailure(problem, "fallback")
    require_shape(
        response,
        completion,
        {
            "choices.0.message.content": str,
            "usage.prompt_tokens": int,
            "usage.completion_tokens": int,
            "usage.total_tokens": int,
        },
    )
    usage = completion["usage"]
    assert completion["choices"][0]["message"]["content"].strip(), (
        f"{describe(response)} returned empty content"
    )
    assert usage["completion_tokens"] > 0, f"{describe(response)} reports 0 completion tokens"
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"], (
        f"{describe(response)} usage does not add up: {usage}"
    )
    elapsed = response.elapsed.total_seconds()
    budget = settings.completion_budget
    assert elapsed <= budget, f"{describe(response)} took {format_ms(elapsed)}, budget {format_ms(budget)}"


@dataclass
class StreamRead:
    """What one chat completion stream delivered, each part judged on its own."""

    first_token: float | None = None
    usage: dict | None = None
    done: bool = False
    chunks: int = 0
    #: First line of the message of an error frame (``data: {"error": ...}``) in the stream.
    error: str | None = None
    malformed: str | None = None
    head: list = field(default_factory=list)
    #: The body was being read: a transport error from here on cut the stream.
    reading: bool = False


def read_stream(lines, started, read):
    """Read server-sent events into `read` until ``[DONE]``, an error frame or the end of
    the body; what was read survives a transport error that cuts the stream. `lines` keeps
    memory bounded and ends keep-alives or empty deltas at the first-token deadline."""
    read.reading = True
    for line in lines:
        if len(read.head) < 3:
            read.head.append(line)
        if not line.startswith("data:"):
            continue
        data = line.removeprefix("data:").strip()
        if data == "[DONE]":
            read.done = True
            break
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError:
            read.malformed = data[:120]
            break
        if not isinstance(chunk, dict):
            read.malformed = data[:120]
            break
        if "error" in chunk:
            read.error = error_message(data)[0] or "no message"
            break
        read.chunks += 1
        choice = (chunk.get("choices") or [{}])[0]
        delta = (choice.get("delta") if isinstance(choice, dict) else None) or {}
        if read.first_token is None and delta.get("content"):
            read.first_token = time.perf_counter() - started
            lines.token_arrived()
        read.usage = chunk.get("usage") or read.usage


def test_streaming_time_to_first_token(http, slo_config, request):
    client = http()
    if not client.target.stream:
        pytest.skip("target gateway does not set stream: true (streaming probe disabled)")
    settings = slo_config.probes.gateway
    body = chat_request(slo_config, stream=True)
    started = time.perf_counter()
    read = StreamRead()
    try:
        # Deadlines a target timeout past the budgets: a late stream is still measured (how
        # late), one of keep-alives or empty deltas ends as a timeout.
        grace = client.target.timeout
        deadline = max(settings.completion_budget, settings.first_token_budget) + grace
        with client.stream("POST", "/v1/chat/completions", json=body, deadline=deadline) as response:
            if response.status_code != 200:
                client.read(response)
                expect_status(response)
            cap = client.target.max_response_bytes
            first_token_deadline = settings.first_token_budget + grace
            lines = EventLines(response, first_token_deadline=first_token_deadline, cap=cap, started=started)
            read_stream(lines, started, read)
    except ProbeFailure as failure:
        if not read.reading or failure.reason == "timeout":
            raise
        raise ProbeFailure(
            f"{describe(response)} stream cut after {read.chunks} chunk(s), before [DONE]: {failure}",
            "stream",
            failure.record,
        ) from None
    record_served_model(response, request)
    what = describe(response)
    after = f"after {read.chunks} chunk(s)"
    if read.error is not None:
        raise ProbeFailure(f"{what} stream failed {after} with an error event: {read.error}", "stream")
    if read.malformed is not None:
        raise ProbeFailure(f"{what} streamed a malformed chunk {after}: {read.malformed}", "stream")
    if not read.done and not read.chunks:
        raise ProbeFailure(f"{what} returned a malformed event stream: {' '.join(read.head)[:160]}", "stream")
    if not read.done:
        raise ProbeFailure(f"{what} stream ended {after} without [DONE]", "stream")
    problem = fallback_problem(response, body["model"], settings.allow_fallbacks)
    if problem:
        raise ProbeFailure(problem, "fallback")
    # First token and usage are separate failures, reported together when both fail.
    problems = []
    if read.first_token is None:
        problems.append("streamed no content")
    elif read.first_token > settings.first_token_budget:
        budget = format_ms(settings.first_token_budget)
        problems.append(f"first token after {format_ms(read.first_token)}, budget {budget}")
    if not read.usage:
        problems.append("streamed no usage (asked for with stream_options.include_usage)")
    assert not problems, f"{what} " + "; ".join(problems)
