"""LLM gateway (LiteLLM-style): alive, ready, and per model group (`probes.gateway.models`, or
``discover`` from ``/v1/models``): served by a healthy deployment, and a real completion,
plain and streamed, in each API the target's clients speak (`apis`: OpenAI ``chat``,
Anthropic ``messages``), that comes back valid, from the model asked for, with usage, within
that model's budgets; with `tool_use`, a tool-use round trip in each API; the rate-limit
headroom left, and the key's and its team's budget left (LiteLLM's ``/key/info``,
``/team/info``), where a floor is set.

Every answer's cost and headroom, and every stream's token timing (first token, gaps,
tokens per second, total), are recorded as probe values labelled `model` and `api` and
pushed with the run (names in :mod:`slo.report.genai`).

Written against a real LiteLLM proxy: usage is streamed only when asked for
(``stream_options``), an answer from a fallback model is a 200 that only its headers give
away (``x-litellm-attempted-fallbacks``, ``x-litellm-model-group``), ``/health`` names
provider models, with stack traces, so the probe reads it per model group, and retries a
throttled deployment for as long as its Retry-After asks, so it has a budget of its own.
Which groups are probed, and whether the run may spend on them, is decided once per run
(:func:`slo.gateway_plan`).
"""

import time

import pytest

from slo import (
    ChatStream,
    DiscoveryFailure,
    EventLines,
    MessagesStream,
    ProbeFailure,
    TokenTiming,
    classify_status,
    describe,
    error_message,
    expect_json,
    expect_status,
    format_ms,
    gateway_plan,
    read_budgets,
    read_chat_stream,
    read_messages_stream,
    record_answer_headers,
    record_budgets,
    record_deployment_health,
    record_stream_timing,
    record_usage,
    require_shape,
    safe_url,
    tool_call_problem,
    tool_use_problem,
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


def pytest_generate_tests(metafunc):
    if "gateway_model" in metafunc.fixturenames:
        models = gateway_plan(metafunc.config).models
        metafunc.parametrize("gateway_model", models, ids=[model.name for model in models])


@pytest.fixture
def model(gateway_model, pytestconfig):
    """This probe's model group and its settings; a failed discovery fails the probe, and the
    spend guard (`probes.gateway.max_run_cost`) may refuse to start it."""
    if isinstance(gateway_model, DiscoveryFailure):
        raise ProbeFailure(gateway_model.failure, "http_status")
    refusal = gateway_plan(pytestconfig).refusal
    if refusal is not None:
        pytest.skip(refusal)
    return gateway_model


def require_api(slo_config, api):
    apis = slo_config.probes.gateway.apis
    if api not in apis:
        pytest.skip(f"probes.gateway.apis is {apis}, without {api}")


def chat_request(slo_config, model, *, stream=False):
    request = {
        "model": model.name,
        "messages": [{"role": "user", "content": slo_config.probes.gateway.prompt}],
        "max_tokens": model.max_tokens,
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


def test_gateway_model_healthy(http, slo_config, probe, model):
    """``/health?model=NAME`` checks only that group's deployments (``/health`` alone calls
    every deployment live on each request, unless the proxy runs background health checks).
    All of them down fails; some down is degraded (:func:`judge_deployments`).

    It has its own budget, `probes.gateway.health_timeout`: LiteLLM retries a throttled
    deployment after its Retry-After, for as long as the upstream asks. Past the budget each
    deployment is asked once, without retries (:func:`ask_each_deployment`), so a throttled
    one is found as ``rate_limit`` with its Retry-After, within the probe's timeout."""
    model_group = model.name
    client = http()
    budget = min(slo_config.probes.gateway.health_timeout, client.target.timeout)
    started = time.monotonic()
    try:
        response = client.get("/health", params={"model": model_group}, timeout=budget)
    except ProbeFailure as failure:
        if failure.reason != "timeout":
            raise
        left = client.target.timeout - (time.monotonic() - started)
        asked = ask_each_deployment(client, slo_config, model_group, left)
        if not asked:  # no deployment of the group to ask (/model/info unreadable): no verdict
            raise
        judge_deployments(
            probe,
            f"{client.name} GET /health?model={model_group}: no verdict within the "
            f"{format_ms(budget)} health_timeout; asked each deployment once without retries",
            model_group,
            [(name, None) for name, problem in asked if problem is None],
            [(name, problem) for name, problem in asked if problem is not None],
        )
        return
    # LiteLLM answers 503 when the group has no healthy deployment, with the same body.
    health = expect_json(response, [200, 503])
    require_shape(response, health, {"healthy_endpoints": list, "unhealthy_endpoints": list})
    healthy, unhealthy = health["healthy_endpoints"], health["unhealthy_endpoints"]
    deployments = _deployments(client)
    if not healthy and not unhealthy:
        if response.status_code == 503 and any(group == model_group for group, _, _ in deployments.values()):
            pytest.skip(
                f"{describe(response)}: LiteLLM's health cache is still empty (its background health "
                f"checks have not finished since it started): no verdict on model group {model_group} yet"
            )
        raise ProbeFailure(f"{describe(response)} lists no deployment of model group {model_group}")
    judge_deployments(
        probe,
        describe(response),
        model_group,
        [(_deployment_name(entry, model_group, deployments), None) for entry in healthy],
        [(_deployment_name(entry, model_group, deployments), _entry_problem(entry)) for entry in unhealthy],
    )


def judge_deployments(probe, where, model_group, healthy, unhealthy):
    """Each deployment's health recorded, then the verdict: all down fails with the reason of
    the first one's error, some down is degraded. `healthy` and `unhealthy` are (deployment,
    problem) pairs, a problem being (reason, first error line), a deployment (label, how a
    message names it)."""
    record_deployment_health(
        probe,
        model_group,
        {**{name[0]: True for name, _ in healthy}, **{name[0]: False for name, _ in unhealthy}},
    )
    if not unhealthy:
        return
    total = len(healthy) + len(unhealthy)
    named = "; ".join(f"{name[1]}: {problem[1]}" for name, problem in unhealthy)
    if not healthy:
        raise ProbeFailure(
            f"{where}: model group {model_group} down, "
            f"{len(unhealthy)} of {total} deployment(s) unhealthy: {named}",
            unhealthy[0][1][0],
        )
    # Some deployments down while the group still serves: the probe is degraded (it passes,
    # a good availability event), the reason names each one with its first error line, and
    # the pushed synthetic_gen_ai_deployment_healthy gauge, per deployment, is 0 for them,
    # which the generated SyntheticGatewayDeploymentDown rule alerts on. The verdict first:
    # a reason is one capped line, and how it was found matters least.
    probe.degrade(
        f"model group {model_group} degraded, {len(unhealthy)} of {total} deployment(s) "
        f"unhealthy: {named} ({where})"
    )


def _entry_problem(entry):
    """(reason, first error line) of one of LiteLLM's unhealthy endpoints."""
    if not isinstance(entry, dict):
        return "upstream", str(entry)[:120]
    error = error_message(str(entry.get("error", "")))[0] or "no error given"
    status = entry.get("exception_status")
    reason = classify_status(status, error)[0] if isinstance(status, int) else "upstream"
    return (reason if reason != "http_status" else "upstream"), error


def ask_each_deployment(client, slo_config, model_group, seconds):
    """Each deployment of `model_group` asked for one token, by its model id (LiteLLM routes
    a deployment's id to that deployment), without retries (``num_retries``, ``max_retries``),
    in `seconds` at most: (deployment, None) when it answered, else (deployment, problem)."""
    deadline = time.monotonic() + max(seconds, 0.0)
    deployments = _deployments(client)
    ids = [model_id for model_id, (group, _, _) in deployments.items() if group == model_group]
    asked = []
    for model_id in ids:
        name = _deployment_name({"model_id": model_id}, model_group, deployments)
        left = deadline - time.monotonic()
        if left <= 0:
            asked.append((name, ("timeout", "not asked: the probe's timeout was spent")))
            continue
        body = {
            "model": model_id,
            "messages": [{"role": "user", "content": slo_config.probes.gateway.prompt}],
            "max_tokens": 1,
            "num_retries": 0,
            "max_retries": 0,
        }
        try:
            response = client.post("/v1/chat/completions", json=body, timeout=left)
        except ProbeFailure as failure:
            asked.append((name, (failure.reason, str(failure))))
            continue
        if response.is_success:
            asked.append((name, None))
            continue
        reason, error = classify_status(response.status_code, response.text)
        retry_after = response.headers.get("retry-after") or response.headers.get("llm_provider-retry-after")
        wait = f", Retry-After {retry_after} s" if retry_after else ""
        asked.append((name, (reason, f"{response.status_code}{wait}: {error or 'no error given'}")))
    return asked


def _deployments(client):
    """model_id -> (model group, provider model, api_base) from ``/model/info``; empty if it
    is not readable.

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
            found[info["id"]] = (deployment.get("model_name"), params.get("model"), params.get("api_base"))
    return found


def _deployment_name(entry, model_group, deployments):
    """One deployment as people tell it apart: a label (its provider model and model id) and
    how a message names it (its group, provider model, model id and api_base)."""
    if not isinstance(entry, dict):
        return str(entry)[:60], str(entry)[:120]
    model_id = entry.get("model_id") or ""
    _, provider_model, configured_base = deployments.get(model_id, (None, None, None))
    api_base = entry.get("api_base") or configured_base
    label = [str(entry.get("model") or provider_model or ""), f"model_id {model_id[:12]}" if model_id else ""]
    where = [*label, f"api_base {safe_url(str(api_base))}" if api_base else ""]
    return " ".join(w for w in label if w) or "unnamed", f"{model_group} ({', '.join(w for w in where if w)})"


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


def test_chat_completion(http, slo_config, request, model):
    require_api(slo_config, "chat")
    settings = slo_config.probes.gateway
    body = chat_request(slo_config, model)
    response = http().post("/v1/chat/completions", json=body)
    completion = expect_json(response)
    record_served_model(response, request)
    record_answer_headers(request, response.headers, model=model.name, api="chat")
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
    record_usage(request, usage["prompt_tokens"], usage["completion_tokens"], model=model.name, api="chat")
    assert completion["choices"][0]["message"]["content"].strip(), (
        f"{describe(response)} returned empty content"
    )
    assert usage["completion_tokens"] > 0, f"{describe(response)} reports 0 completion tokens"
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"], (
        f"{describe(response)} usage does not add up: {usage}"
    )
    elapsed = response.elapsed.total_seconds()
    budget = model.completion_budget
    assert elapsed <= budget, f"{describe(response)} took {format_ms(elapsed)}, budget {format_ms(budget)}"


def event_lines(client, response, timing, model, deadline):
    """The stream's lines, bounded in size, ending in a timeout (naming what it saw) when no
    token comes within the first-token budget plus a target timeout (a late first token is
    still measured, keep-alives for ever are not), or none for `max_token_gap` after one."""
    lines = EventLines(
        response,
        first_token_deadline=model.first_token_budget + client.target.timeout,
        cap=client.target.max_response_bytes,
        started=timing.started,
        max_token_gap=model.max_token_gap,
        deadline=deadline,
    )
    timing.on_token = lines.token_arrived
    return lines


def stream_answer(client, request, slo_config, model, api, path, body, read, reader, headers=None):
    """POST `body` streamed to `path` and read the answer into `read` with `reader`; fail as
    the stream's finish rule says (:meth:`StreamedAnswer.finish_problem`), or on a fallback;
    then record its usage and token timing. Returns the response for the first-token check."""
    try:
        # Deadlines a target timeout past the budgets: a late stream is still measured (how
        # late), one of keep-alives or empty deltas ends as a timeout.
        deadline = max(model.completion_budget, model.first_token_budget) + client.target.timeout
        # No headers, no first token: a gateway holding the request (retrying a throttled
        # upstream) is a late first token, and is given up on as one.
        first_token = model.first_token_budget + client.target.timeout
        with client.stream(
            "POST", path, json=body, headers=headers, deadline=deadline, headers_deadline=first_token
        ) as response:
            if response.status_code != 200:
                client.read(response)
                expect_status(response)
            record_answer_headers(request, response.headers, model=model.name, api=api)
            content_type = response.headers.get("content-type", "")
            if not content_type.startswith("text/event-stream"):
                client.read(response)
                raise ProbeFailure(
                    f"{describe(response)} asked for a stream, got {content_type or 'no content type'}",
                    "stream",
                )
            reader(event_lines(client, response, read.timing, model, deadline), read)
    except ProbeFailure as failure:
        if not read.reading or failure.reason == "timeout":
            raise
        raise ProbeFailure(f"{describe(response)} {read.cut(failure)}", "stream", failure.record) from None
    record_served_model(response, request)
    problem = read.finish_problem()
    if problem is not None:
        raise ProbeFailure(f"{describe(response)} {problem}", "stream")
    problem = fallback_problem(response, body["model"], slo_config.probes.gateway.allow_fallbacks)
    if problem:
        raise ProbeFailure(problem, "fallback")
    read.timing.output_tokens = read.output_tokens if isinstance(read.output_tokens, int) else None
    record_usage(request, read.input_tokens, read.output_tokens, model=model.name, api=api)
    record_stream_timing(request, read.timing, model=model.name, api=api)
    return response


def test_streaming_time_to_first_token(http, slo_config, request, model):
    require_api(slo_config, "chat")
    client = http()
    if not client.target.stream:
        pytest.skip("target gateway does not set stream: true (streaming probe disabled)")
    body = chat_request(slo_config, model, stream=True)
    read = ChatStream(TokenTiming(time.perf_counter()))
    response = stream_answer(
        client, request, slo_config, model, "chat", "/v1/chat/completions", body, read, read_chat_stream
    )
    # First token and usage are separate failures, reported together when both fail.
    problems = first_token_problems(read.timing, model)
    if not read.usage:
        problems.append("streamed no usage (asked for with stream_options.include_usage)")
    assert not problems, f"{describe(response)} " + "; ".join(problems)


def first_token_problems(timing, model):
    first = timing.first_token
    if first is None:
        return ["streamed no content"]
    if first > model.first_token_budget:
        return [f"first token after {format_ms(first)}, budget {format_ms(model.first_token_budget)}"]
    return []


#: The Messages API version header Anthropic's clients send (LiteLLM accepts and ignores it).
ANTHROPIC_VERSION = {"anthropic-version": "2023-06-01"}
MESSAGE_SHAPE = {
    "type": str,
    "role": str,
    "content.0.type": str,
    "stop_reason": str,
    "usage.input_tokens": int,
    "usage.output_tokens": int,
}


def messages_request(slo_config, model, *, stream=False):
    return {
        "model": model.name,
        "max_tokens": model.max_tokens,
        "messages": [{"role": "user", "content": slo_config.probes.gateway.prompt}],
        "stream": stream,
    }


def test_messages(http, slo_config, request, model):
    """``POST /v1/messages`` as Claude Code sends it: an Anthropic message with text content,
    a stop reason and usage, from the model asked for, within the model's completion budget."""
    require_api(slo_config, "messages")
    body = messages_request(slo_config, model)
    response = http().post("/v1/messages", json=body, headers=ANTHROPIC_VERSION)
    message = expect_json(response)
    record_served_model(response, request)
    record_answer_headers(request, response.headers, model=model.name, api="messages")
    problem = fallback_problem(response, body["model"], slo_config.probes.gateway.allow_fallbacks)
    if problem:
        raise ProbeFailure(problem, "fallback")
    require_shape(response, message, MESSAGE_SHAPE)
    usage = message["usage"]
    record_usage(request, usage["input_tokens"], usage["output_tokens"], model=model.name, api="messages")
    kind = (message["type"], message["role"])
    assert kind == ("message", "assistant"), (
        f"{describe(response)} is a {kind[0]!r} from {kind[1]!r}, not a message from the assistant"
    )
    text = "".join(
        block.get("text", "")
        for block in message["content"]
        if isinstance(block, dict) and block.get("type") == "text"
    )
    assert text.strip(), f"{describe(response)} returned no text content"
    assert usage["output_tokens"] > 0, f"{describe(response)} reports 0 output tokens"
    elapsed = response.elapsed.total_seconds()
    budget = model.completion_budget
    assert elapsed <= budget, f"{describe(response)} took {format_ms(elapsed)}, budget {format_ms(budget)}"


def test_messages_streaming(http, slo_config, request, model):
    """The Messages event stream: message_start, a content block with text deltas,
    message_delta with the output usage, message_stop; an ``error`` event, a malformed event
    or a stream that ends without message_stop fails (reason ``stream``), and the first text
    delta must come within the model's first-token budget."""
    require_api(slo_config, "messages")
    client = http()
    if not client.target.stream:
        pytest.skip("target gateway does not set stream: true (streaming probe disabled)")
    body = messages_request(slo_config, model, stream=True)
    read = MessagesStream(TokenTiming(time.perf_counter()))
    response = stream_answer(
        client,
        request,
        slo_config,
        model,
        "messages",
        "/v1/messages",
        body,
        read,
        read_messages_stream,
        headers=ANTHROPIC_VERSION,
    )
    problems = first_token_problems(read.timing, model)
    assert not problems, f"{describe(response)} " + "; ".join(problems)


#: The tool the tool-use probes offer: one required argument, so a well-formed call is plain.
TOOL_NAME = "lookup_word"
TOOL_DESCRIPTION = "Look a word up in the monitoring probe's dictionary."
TOOL_PARAMETERS = {
    "type": "object",
    "properties": {"word": {"type": "string", "description": "The word to look up."}},
    "required": ["word"],
}
TOOL_PROMPT = f"Look up the word pong with the {TOOL_NAME} tool, then reply with what it says."
TOOL_RESULT = "pong: the gateway works."
#: Room for a tool call's JSON arguments, which the probes' 8-token answers have not.
TOOL_MAX_TOKENS = 128


def require_tool_use(slo_config, api):
    require_api(slo_config, api)
    if not slo_config.probes.gateway.tool_use:
        pytest.skip("probes.gateway.tool_use is off (tool-use round trip not probed)")


def tool_answer(client, request, slo_config, model, api, path, body, headers=None):
    """One step of a round trip: the answer's JSON, its cost and usage recorded, from the
    model asked for."""
    response = client.post(path, json=body, headers=headers)
    answer = expect_json(response)
    record_answer_headers(request, response.headers, model=model.name, api=api)
    problem = fallback_problem(response, body["model"], slo_config.probes.gateway.allow_fallbacks)
    if problem:
        raise ProbeFailure(problem, "fallback")
    usage = answer.get("usage") if isinstance(answer, dict) else None
    if isinstance(usage, dict):
        tokens = (
            ("prompt_tokens", "completion_tokens") if api == "chat" else ("input_tokens", "output_tokens")
        )
        record_usage(request, usage.get(tokens[0]), usage.get(tokens[1]), model=model.name, api=api)
    return response, answer


def test_tool_use(http, slo_config, request, model):
    """The chat tool-use round trip a coding assistant runs: a tool offered, a well-formed
    ``tool_calls`` back (a JSON object of arguments), the tool's result sent, a text answer."""
    require_tool_use(slo_config, "chat")
    client = http()
    prompt = [{"role": "user", "content": TOOL_PROMPT}]
    tool = {
        "type": "function",
        "function": {"name": TOOL_NAME, "description": TOOL_DESCRIPTION, "parameters": TOOL_PARAMETERS},
    }
    body = {
        "model": model.name,
        "messages": prompt,
        "tools": [tool],
        "max_tokens": max(model.max_tokens, TOOL_MAX_TOKENS),
    }
    response, first = tool_answer(client, request, slo_config, model, "chat", "/v1/chat/completions", body)
    require_shape(response, first, {"choices.0.message": dict})
    message = first["choices"][0]["message"]
    problem = tool_call_problem(message.get("tool_calls"), TOOL_NAME)
    if problem is not None:
        raise ProbeFailure(f"{describe(response)} {problem}")
    calls = [
        {
            "id": call["id"],
            "type": "function",
            "function": {"name": TOOL_NAME, "arguments": call["function"]["arguments"]},
        }
        for call in message["tool_calls"]
    ]
    results = [{"role": "tool", "tool_call_id": call["id"], "content": TOOL_RESULT} for call in calls]
    turn = [{"role": "assistant", "content": message.get("content"), "tool_calls": calls}, *results]
    response, final = tool_answer(
        client,
        request,
        slo_config,
        model,
        "chat",
        "/v1/chat/completions",
        {**body, "messages": [*prompt, *turn]},
    )
    require_shape(response, final, {"choices.0.message": dict})
    answer = final["choices"][0]["message"]
    text = answer.get("content")
    if answer.get("tool_calls") or not isinstance(text, str) or not text.strip():
        raise ProbeFailure(
            f"{describe(response)} answered the tool's result without text "
            f"(content {text!r}, {len(answer.get('tool_calls') or [])} more tool call(s))"
        )


def test_messages_tool_use(http, slo_config, request, model):
    """The same round trip in the Messages API, as Claude Code runs it: ``tool_use`` blocks and
    ``stop_reason: tool_use``, then ``tool_result`` blocks back and a text answer that ends
    the turn."""
    require_tool_use(slo_config, "messages")
    client = http()
    prompt = [{"role": "user", "content": TOOL_PROMPT}]
    tool = {"name": TOOL_NAME, "description": TOOL_DESCRIPTION, "input_schema": TOOL_PARAMETERS}
    body = {
        "model": model.name,
        "max_tokens": max(model.max_tokens, TOOL_MAX_TOKENS),
        "messages": prompt,
        "tools": [tool],
    }
    response, first = tool_answer(
        client, request, slo_config, model, "messages", "/v1/messages", body, ANTHROPIC_VERSION
    )
    require_shape(response, first, {"content": list})
    problem = tool_use_problem(first["content"], first.get("stop_reason"), TOOL_NAME)
    if problem is not None:
        raise ProbeFailure(f"{describe(response)} {problem}")
    uses = [
        block for block in first["content"] if isinstance(block, dict) and block.get("type") == "tool_use"
    ]
    results = [{"type": "tool_result", "tool_use_id": use["id"], "content": TOOL_RESULT} for use in uses]
    turn = [{"role": "assistant", "content": first["content"]}, {"role": "user", "content": results}]
    response, final = tool_answer(
        client,
        request,
        slo_config,
        model,
        "messages",
        "/v1/messages",
        {**body, "messages": [*prompt, *turn]},
        ANTHROPIC_VERSION,
    )
    require_shape(response, final, {"content": list})
    blocks = [block for block in final["content"] if isinstance(block, dict)]
    text = "".join(str(block.get("text", "")) for block in blocks if block.get("type") == "text")
    stop = final.get("stop_reason")
    if not text.strip() or stop == "tool_use":
        kinds = ", ".join(str(block.get("type")) for block in blocks) or "nothing"
        raise ProbeFailure(
            f"{describe(response)} answered the tool's result without text that ends the turn "
            f"(content: {kinds}, stop_reason {stop!r})"
        )


@pytest.mark.probe(target="gateway", kind="budget")
def test_rate_limit_headroom(http, slo_config, request, model):
    """What is left of the caller's rate limits (``x-ratelimit-remaining-requests`` /
    ``-tokens`` on an answer) is above `probes.gateway.min_remaining_requests` /
    `min_remaining_tokens`: a key about to be throttled is found before the assistant stalls."""
    settings = slo_config.probes.gateway
    floors = {"requests": settings.min_remaining_requests, "tokens": settings.min_remaining_tokens}
    if not any(floors.values()):
        pytest.skip(
            "no probes.gateway.min_remaining_requests or min_remaining_tokens (headroom only recorded)"
        )
    body = {**chat_request(slo_config, model), "max_tokens": 1 if not model.reasoning else model.max_tokens}
    response = http().post("/v1/chat/completions", json=body)
    expect_status(response)
    headroom = record_answer_headers(request, response.headers, model=model.name, api="chat")
    problems = [
        f"{headroom[resource]} {resource} left, floor {floor}"
        for resource, floor in floors.items()
        if floor and resource in headroom and headroom[resource] < floor
    ]
    missing = [resource for resource, floor in floors.items() if floor and resource not in headroom]
    assert not missing, (
        f"{describe(response)} has no x-ratelimit-remaining-{'/'.join(missing)} header to judge"
    )
    if problems:
        raise ProbeFailure(f"{describe(response)} model {model.name}: " + "; ".join(problems), "rate_limit")


@pytest.mark.probe(target="gateway", kind="budget")
def test_budget_left(http, slo_config, request):
    """What is left of the target key's LiteLLM budget and its team's (``/key/info``,
    ``/team/info``) is above `probes.gateway.min_remaining_budget`: a budget about to run out
    is found before the gateway refuses the assistant with ``budget_exceeded``. Both are kept
    in LiteLLM's database; a gateway without one fails here, saying so."""
    floor = slo_config.probes.gateway.min_remaining_budget
    if floor is None:
        pytest.skip("no probes.gateway.min_remaining_budget (key and team budgets not read)")
    client = http()
    budgets = read_budgets(client)
    record_budgets(request, budgets)
    where = f"{client.name} /key/info"
    limited = [budget for budget in budgets if budget.left is not None]
    assert limited, (
        f"{where}: {'; '.join(budget.describe() for budget in budgets)}: no budget to hold to "
        f"probes.gateway.min_remaining_budget ${floor:.2f}"
    )
    low = [budget for budget in limited if budget.left < floor or budget.left <= 0]
    if low:
        raise ProbeFailure(
            f"{where}: " + "; ".join(f"{budget.describe()}, floor ${floor:.2f}" for budget in low), "budget"
        )
