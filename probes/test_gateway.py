"""LLM gateway (LiteLLM-style): alive, ready, every model endpoint healthy, and a real
completion that comes back valid, with usage, within its latency budget."""

import json
import time

import pytest

from slo import ProbeFailure, describe, expect_json, expect_status, format_ms, require_shape

pytestmark = pytest.mark.probe(target="gateway", slo="gateway-availability")


def chat_request(slo_config, *, stream=False):
    settings = slo_config.probes.gateway
    return {
        "model": slo_config.target(settings.target).model,
        "messages": [{"role": "user", "content": settings.prompt}],
        "max_tokens": settings.max_tokens,
        "stream": stream,
    }


def test_gateway_liveliness(http):
    expect_status(http().get("/health/liveliness"))


def test_gateway_readiness(http):
    response = http().get("/health/readiness")
    readiness = expect_json(response)
    status = readiness.get("status") if isinstance(readiness, dict) else None
    assert status in ("healthy", "connected"), (
        f"{describe(response)} reports status {status!r}, expected healthy or connected"
    )


def test_gateway_model_endpoints_healthy(http):
    response = http().get("/health")
    health = expect_json(response)
    require_shape(response, health, {"healthy_endpoints": list, "unhealthy_endpoints": list})
    unhealthy = health["unhealthy_endpoints"]
    assert not unhealthy, f"{describe(response)} lists {len(unhealthy)} unhealthy endpoint(s): " + ", ".join(
        f"{e.get('model', '?')}: {e.get('error', '')}".strip(": ") for e in unhealthy
    )
    assert health["healthy_endpoints"], f"{describe(response)} lists no healthy endpoint"


def test_chat_completion(http, slo_config):
    budget = slo_config.probes.gateway.completion_budget
    response = http().post("/v1/chat/completions", json=chat_request(slo_config))
    completion = expect_json(response)
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
    assert elapsed <= budget, f"{describe(response)} took {format_ms(elapsed)}, budget {format_ms(budget)}"


def test_streaming_time_to_first_token(http, slo_config):
    client = http()
    if not client.target.stream:
        pytest.skip("target gateway does not set stream: true (streaming probe disabled)")
    budget = slo_config.probes.gateway.first_token_budget
    started = time.perf_counter()
    first_token = None
    usage = None
    done = False
    seen = []
    with client.stream(
        "POST", "/v1/chat/completions", json=chat_request(slo_config, stream=True)
    ) as response:
        if response.status_code != 200:
            response.read()
            expect_status(response)
        for line in response.iter_lines():
            if len(seen) < 3:
                seen.append(line)
            if not line.startswith("data:"):
                continue
            data = line.removeprefix("data:").strip()
            if data == "[DONE]":
                done = True
                break
            try:
                chunk = json.loads(data)
            except json.JSONDecodeError:
                raise ProbeFailure(f"{describe(response)} streamed a malformed chunk: {data[:120]}") from None
            delta = (chunk.get("choices") or [{}])[0].get("delta", {})
            if first_token is None and delta.get("content"):
                first_token = time.perf_counter() - started
            usage = chunk.get("usage") or usage
    if usage is None and first_token is None and not done:
        raise ProbeFailure(f"{describe(response)} returned a malformed event stream: {' '.join(seen)[:160]}")
    assert done, f"{describe(response)} stream ended without [DONE]"
    assert first_token is not None, f"{describe(response)} streamed no content"
    assert usage, f"{describe(response)} streamed no usage"
    assert first_token <= budget, (
        f"{describe(response)} first token after {format_ms(first_token)}, budget {format_ms(budget)}"
    )
