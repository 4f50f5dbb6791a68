"""What a streamed LLM answer took and what an answer's headers say it cost, as probe values;
whether an answer called the tool it was offered.

The stream itself is read by :mod:`slo.llmstream` (shared with the load gate);
:func:`record_stream_timing`, :func:`record_usage` and :func:`record_answer_headers` record
what it measured as probe values (metric names in :mod:`slo.report.genai`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest

from slo.llmstream import TokenTiming
from slo.probe.run import ProbeRun, probe_run
from slo.redact import excerpt
from slo.report import genai

__all__ = [
    "record_answer_headers",
    "record_deployment_health",
    "record_stream_timing",
    "record_usage",
    "timing_values",
    "tool_call_problem",
    "tool_use_problem",
]

#: Response headers with what is left of the caller's rate limits (OpenAI's, passed on by
#: LiteLLM), by the `resource` label they are recorded with.
RATELIMIT_HEADERS = {
    "requests": "x-ratelimit-remaining-requests",
    "tokens": "x-ratelimit-remaining-tokens",
}
COST_HEADER = "x-litellm-response-cost"


def timing_values(timing: TokenTiming) -> dict[str, float]:
    """The timings a stream has, by metric name."""
    gaps = timing.gaps
    found = {
        genai.FIRST_TOKEN: timing.first_token,
        genai.TIME_PER_TOKEN: sum(gaps) / len(gaps) if gaps else None,
        genai.MAX_GAP: max(gaps) if gaps else None,
        genai.TOKENS_PER_SECOND: timing.tokens_per_second,
        genai.OPERATION_DURATION: timing.total,
    }
    return {name: value for name, value in found.items() if value is not None}


def record_stream_timing(probe: ProbeRun | pytest.FixtureRequest, timing: TokenTiming, **labels: str) -> None:
    """Each timing as a histogram observation and as the last value (a ``gen_ai_last_*`` gauge)."""
    for name, value in timing_values(timing).items():
        probe_run(probe).labelled_value(name, value, "histogram", labels)
        probe_run(probe).labelled_value(genai.last_gauge(name), value, "gauge", labels)


def record_usage(
    probe: ProbeRun | pytest.FixtureRequest, input_tokens: object, output_tokens: object, **labels: str
) -> None:
    for token_type, count in (("input", input_tokens), ("output", output_tokens)):
        if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
            probe_run(probe).labelled_value(genai.TOKENS, count, "counter", {**labels, "type": token_type})


def record_deployment_health(
    probe: ProbeRun | pytest.FixtureRequest, model_group: str, deployments: Mapping[str, bool]
) -> None:
    """Each deployment of `model_group` healthy (1) or not (0), by its label: a group that
    still serves with one deployment down (a degraded probe) is pushed and alerted on per deployment."""
    for deployment, healthy in deployments.items():
        labels = {"model": model_group, "deployment": deployment}
        probe_run(probe).labelled_value(genai.DEPLOYMENT_HEALTHY, 1 if healthy else 0, "gauge", labels)


def record_answer_headers(
    probe: ProbeRun | pytest.FixtureRequest, headers: Mapping[str, str], **labels: str
) -> dict[str, int]:
    """The answer's cost (a counter) and rate-limit headroom (gauges); returns the headroom
    read, by resource. A header that is absent or not a number is not recorded."""
    cost = _number(headers.get(COST_HEADER))
    if cost is not None and cost >= 0:
        probe_run(probe).labelled_value(genai.COST, cost, "counter", labels)
    headroom = {}
    for resource, header in RATELIMIT_HEADERS.items():
        remaining = _number(headers.get(header))
        if remaining is not None:
            headroom[resource] = int(remaining)
            probe_run(probe).labelled_value(
                genai.RATELIMIT_REMAINING, remaining, "gauge", {**labels, "resource": resource}
            )
    return headroom


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and value == value and abs(value) != float("inf") else None


def tool_call_problem(calls: object, tool: str) -> str | None:
    """What is wrong with a chat answer's ``tool_calls`` for a request offering `tool`, or None:
    at least one call, each with an ``id``, ``type: function``, the tool's name and
    ``arguments`` that are a JSON object (a string, as OpenAI's API sends them)."""
    if not isinstance(calls, list) or not calls:
        return f"answered without calling the {tool} tool (no tool_calls)"
    for index, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(call, dict) or not isinstance(function, dict):
            return f"sent tool_calls.{index} without a function: {_excerpt(call)}"
        if not isinstance(call.get("id"), str) or not call["id"] or call.get("type") != "function":
            return f"sent tool_calls.{index} without an id or type function: {_excerpt(call)}"
        if function.get("name") != tool:
            return f"called {function.get('name')!r}, not the {tool} tool offered"
        arguments = function.get("arguments")
        if not isinstance(_json_object(arguments), dict):
            return f"sent tool_calls.{index} with arguments that are not a JSON object: {_excerpt(arguments)}"
    return None


def tool_use_problem(content: object, stop_reason: object, tool: str) -> str | None:
    """The same for a Messages API answer: ``tool_use`` content blocks with an ``id``, the
    tool's name and an ``input`` object, and ``stop_reason: tool_use`` (what a coding client
    waits for before it runs the tool)."""
    blocks = [block for block in content if isinstance(block, dict)] if isinstance(content, list) else []
    uses = [block for block in blocks if block.get("type") == "tool_use"]
    if not uses:
        kinds = ", ".join(str(block.get("type")) for block in blocks) or "nothing"
        return f"answered without a tool_use block (content: {kinds}, stop_reason {stop_reason!r})"
    for use in uses:
        if not isinstance(use.get("id"), str) or not use["id"]:
            return f"sent a tool_use block without an id: {_excerpt(use)}"
        if use.get("name") != tool:
            return f"called {use.get('name')!r}, not the {tool} tool offered"
        if not isinstance(use.get("input"), dict):
            return f"sent a tool_use block whose input is not an object: {_excerpt(use.get('input'))}"
    if stop_reason != "tool_use":
        return f"sent a tool_use block with stop_reason {stop_reason!r}, not tool_use"
    return None


def _json_object(text: object) -> object:
    try:
        return json.loads(text) if isinstance(text, str) else None
    except json.JSONDecodeError:
        return None


def _excerpt(value: object) -> str:
    return excerpt(json.dumps(value) if not isinstance(value, str) else value, 120)
