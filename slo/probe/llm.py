"""What a streamed LLM answer took, token by token, and what an answer's headers say it cost.

:class:`TokenTiming` is fed the moment each content delta arrives and gives the time to first
token, the mean and worst gap between tokens, output tokens per second and total time;
:func:`record_stream_timing`, :func:`record_usage` and :func:`record_answer_headers` record
them as probe values (metric names in :mod:`slo.report.genai`).

:func:`read_chat_stream` reads an OpenAI chat completion stream (``data:`` chunks, usage
when asked for, ``[DONE]``); :func:`read_messages_stream` the Anthropic Messages event stream
(``POST /v1/messages`` with ``stream: true``) that coding clients speak: ``message_start``,
``content_block_start``, ``content_block_delta``..., ``content_block_stop``,
``message_delta`` (with the output usage), ``message_stop``; ``ping`` may come at any time
and an ``error`` event ends the stream. :meth:`StreamedAnswer.finish_problem` is the one
rule of how either must end.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

from slo.probe.failures import error_message
from slo.probe.run import ProbeRun, probe_run
from slo.redact import excerpt
from slo.report import genai

__all__ = [
    "ChatStream",
    "MessagesStream",
    "StreamedAnswer",
    "TokenTiming",
    "read_chat_stream",
    "read_messages_stream",
    "record_answer_headers",
    "record_deployment_health",
    "record_stream_timing",
    "record_usage",
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


@dataclass
class TokenTiming:
    """Arrival times of a stream's content deltas, from `started` (``time.perf_counter()``)."""

    started: float
    arrivals: list[float] = field(default_factory=list)
    ended: float | None = None
    #: Output tokens as the stream's usage reports them (None: not reported).
    output_tokens: int | None = None
    #: Told of each token, e.g. a reader's first-token deadline (`slo.probe.sse.EventLines`).
    on_token: Callable[[], None] | None = field(default=None, repr=False, compare=False)

    def token(self) -> None:
        self.arrivals.append(time.perf_counter())
        if self.on_token is not None:
            self.on_token()

    def end(self) -> None:
        self.ended = time.perf_counter()

    @property
    def first_token(self) -> float | None:
        return self.arrivals[0] - self.started if self.arrivals else None

    @property
    def gaps(self) -> list[float]:
        return [later - earlier for earlier, later in zip(self.arrivals, self.arrivals[1:], strict=False)]

    @property
    def total(self) -> float | None:
        return self.ended - self.started if self.ended is not None else None

    @property
    def tokens_per_second(self) -> float | None:
        """Output tokens after the first over the time they took (decode speed, without the
        wait for the first token); None when there is nothing to divide."""
        if self.output_tokens is None or self.output_tokens < 2 or self.ended is None or not self.arrivals:
            return None
        decoding = self.ended - self.arrivals[0]
        return (self.output_tokens - 1) / decoding if decoding > 0 else None

    def values(self) -> dict[str, float]:
        """The timings this stream has, by metric name."""
        gaps = self.gaps
        found = {
            genai.FIRST_TOKEN: self.first_token,
            genai.TIME_PER_TOKEN: sum(gaps) / len(gaps) if gaps else None,
            genai.MAX_GAP: max(gaps) if gaps else None,
            genai.TOKENS_PER_SECOND: self.tokens_per_second,
            genai.OPERATION_DURATION: self.total,
        }
        return {name: value for name, value in found.items() if value is not None}


def record_stream_timing(probe: ProbeRun | pytest.FixtureRequest, timing: TokenTiming, **labels: str) -> None:
    """Each timing as a histogram observation and as the last value (a ``gen_ai_last_*`` gauge)."""
    for name, value in timing.values().items():
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
    still serves with one deployment down is pushed and alerted on, not only warned about."""
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


@dataclass
class StreamedAnswer(ABC):
    """What one streamed answer delivered, and the one rule of how a stream must finish:
    no error event, no malformed event, its end marker (:attr:`END`), then (Messages API)
    its events in order. Subclasses read one API's events."""

    timing: TokenTiming
    #: First line of the message of an error event inside the 200 stream.
    error: str | None = None
    malformed: str | None = None
    #: The body was being read: a transport error from here on cut the stream.
    reading: bool = False

    #: The event that ends a stream well, and what one unit of the stream is called.
    END: ClassVar[str] = ""
    UNIT: ClassVar[str] = ""

    @property
    @abstractmethod
    def count(self) -> int:
        """Units read (chunks, events)."""

    @property
    @abstractmethod
    def finished(self) -> bool:
        """The end marker came."""

    @property
    @abstractmethod
    def input_tokens(self) -> object:
        """Input tokens as the stream's usage reports them (None: not reported)."""

    @property
    @abstractmethod
    def output_tokens(self) -> object:
        """Output tokens likewise."""

    def seen(self) -> str:
        return f"{self.count} {self.UNIT}(s)"

    def cut(self, failure: BaseException) -> str:
        """Why a transport error while the body was being read is a broken stream."""
        return f"stream cut after {self.seen()}, before {self.END}: {failure}"

    def finish_problem(self) -> str | None:
        """What is wrong with how the stream ended, or None."""
        after = f"after {self.seen()}"
        if self.error is not None:
            return f"stream failed {after} with an error event: {self.error}"
        if self.malformed is not None:
            return f"streamed a malformed {self.UNIT} {after}: {self.malformed}"
        if not self.finished:
            return self.unfinished()
        order = self.order_problem()
        return f"event stream {order}" if order is not None else None

    def unfinished(self) -> str:
        return f"stream ended after {self.seen()} without {self.END}"

    def order_problem(self) -> str | None:
        return None


@dataclass
class ChatStream(StreamedAnswer):
    """What one chat completion stream delivered (``data:`` chunks, then ``[DONE]``)."""

    usage: dict[str, Any] | None = None
    done: bool = False
    chunks: int = 0
    #: The first lines, to show what a stream that is not one looked like.
    head: list[str] = field(default_factory=list)

    END: ClassVar[str] = "[DONE]"
    UNIT: ClassVar[str] = "chunk"

    @property
    def count(self) -> int:
        return self.chunks

    @property
    def finished(self) -> bool:
        return self.done

    @property
    def input_tokens(self) -> object:
        return (self.usage or {}).get("prompt_tokens")

    @property
    def output_tokens(self) -> object:
        return (self.usage or {}).get("completion_tokens")

    def unfinished(self) -> str:
        if not self.chunks:
            return f"returned a malformed event stream: {' '.join(self.head)[:160]}"
        return super().unfinished()


def read_chat_stream(lines: Iterable[str], stream: ChatStream) -> None:
    """Read chat completion chunks into `stream` until ``[DONE]``, an error frame
    (``data: {"error": ...}``) or a malformed chunk, or the end of the body; what was read
    survives a transport error that cuts the stream."""
    stream.reading = True
    for line in lines:
        if len(stream.head) < 3:
            stream.head.append(line)
        if not line.startswith("data:"):
            continue
        data = line.removeprefix("data:").strip()
        if data == "[DONE]":
            stream.done = True
            stream.timing.end()
            return
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError:
            stream.malformed = data[:120]
            return
        if not isinstance(chunk, dict):
            stream.malformed = data[:120]
            return
        if "error" in chunk:
            stream.error = error_message(data)[0] or "no message"
            return
        stream.chunks += 1
        choices = chunk.get("choices") or [{}]
        choice = choices[0] if isinstance(choices, list) and choices else {}
        delta = (choice.get("delta") if isinstance(choice, dict) else None) or {}
        if isinstance(delta, dict) and delta.get("content"):
            stream.timing.token()
        usage = chunk.get("usage")
        if isinstance(usage, dict) and usage:
            stream.usage = usage


@dataclass
class MessagesStream(StreamedAnswer):
    """What one Messages API stream delivered, in the order the protocol requires."""

    #: Event types in arrival order, ``ping`` left out.
    events: list[str] = field(default_factory=list)
    text: str = ""
    usage: dict[str, Any] = field(default_factory=dict)

    END: ClassVar[str] = "message_stop"
    UNIT: ClassVar[str] = "event"

    @property
    def count(self) -> int:
        return len(self.events)

    @property
    def finished(self) -> bool:
        return self.stopped

    @property
    def stopped(self) -> bool:
        return bool(self.events) and self.events[-1] == "message_stop"

    @property
    def input_tokens(self) -> object:
        return self.usage.get("input_tokens")

    @property
    def output_tokens(self) -> object:
        return self.usage.get("output_tokens")

    def unfinished(self) -> str:
        return f"{super().unfinished()} (last: {', '.join(self.events[-3:]) or 'no events'})"

    def order_problem(self) -> str | None:
        """What is out of order in the events, or None: a stream starts with
        ``message_start``, has a content block before ``message_delta``, and ``message_delta``
        carries the output usage before ``message_stop``."""
        events = self.events
        if not events or events[0] != "message_start":
            return f"starts with {events[0] if events else 'nothing'}, not message_start"
        if "content_block_start" not in events:
            return "has no content_block_start"
        if "message_delta" not in events:
            return "has no message_delta"
        if events.index("content_block_start") > events.index("message_delta"):
            return "sends message_delta before any content block"
        if "output_tokens" not in self.usage:
            return "has no usage.output_tokens in message_delta"
        return None


def read_messages_stream(lines: Iterable[str], stream: MessagesStream) -> None:
    """Read Messages API events into `stream` until ``message_stop``, an ``error`` event, a
    malformed event or the end of the body."""
    stream.reading = True
    event = ""
    for line in lines:
        if line.startswith("event:"):
            event = line.removeprefix("event:").strip()
            continue
        if not line.startswith("data:"):
            continue
        data = line.removeprefix("data:").strip()
        try:
            payload = json.loads(data)
        except json.JSONDecodeError:
            stream.malformed = data[:120]
            return
        if not isinstance(payload, dict):
            stream.malformed = data[:120]
            return
        kind = str(payload.get("type") or event)
        if kind == "ping":
            continue
        stream.events.append(kind)
        if kind == "error":
            stream.error = error_message(data)[0] or "no message"
            return
        if kind == "content_block_delta":
            delta = payload.get("delta") or {}
            text = delta.get("text") if isinstance(delta, dict) else None
            if isinstance(text, str) and text:
                stream.timing.token()
                stream.text += text
        elif kind == "message_delta" and isinstance(payload.get("usage"), dict):
            stream.usage.update(payload["usage"])
        elif kind == "message_start":
            message = payload.get("message") or {}
            usage = message.get("usage") if isinstance(message, dict) else None
            if isinstance(usage, dict):
                stream.usage.update({k: v for k, v in usage.items() if k == "input_tokens"})
        elif kind == "message_stop":
            stream.timing.end()
            return


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
