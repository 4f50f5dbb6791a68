"""OpenAI chat completions, simulated: request validation, token counts, response bodies.

Replies are deterministic and token counts derive from the input length (about four
characters per token, plus a small per-message overhead, like real tokenizers), so probes can
assert on usage and cost without a model behind the gateway.
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

REPLY = "Hello from the reference stack. This reply is deterministic."
MESSAGE_OVERHEAD_TOKENS = 3


class InvalidRequest(ValueError):
    """A request the gateway rejects with 400; ``param`` names the offending field."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class ChatRequest:
    """The parts of a chat completion request the simulation uses."""

    model: str
    prompt_tokens: int
    stream: bool = False
    max_tokens: int | None = None
    #: ``stream_options.include_usage``: like OpenAI and LiteLLM, usage is streamed only then.
    include_usage: bool = False


def count_tokens(text: str) -> int:
    """Roughly four characters per token, the usual rule of thumb for English text."""
    return math.ceil(len(text) / 4)


def _message_text(index: int, message: object) -> str:
    if not isinstance(message, dict) or not isinstance(message.get("role"), str):
        raise InvalidRequest(f"messages[{index}] must be an object with a string 'role'", "messages")
    content = message.get("content")
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        # Content parts: only text parts carry tokens we can count.
        return "".join(
            part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    raise InvalidRequest(f"messages[{index}].content must be a string or a list", "messages")


def parse_chat_request(body: bytes) -> ChatRequest:
    """Validate a ``/v1/chat/completions`` body; raises :class:`InvalidRequest`."""
    try:
        payload = json.loads(body)
    except ValueError:
        raise InvalidRequest("request body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise InvalidRequest("request body must be a JSON object")
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a string", "model")
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' is required and must be a non-empty list", "messages")
    prompt_tokens = sum(
        count_tokens(_message_text(index, message)) + MESSAGE_OVERHEAD_TOKENS
        for index, message in enumerate(messages)
    )
    stream = payload.get("stream", False)
    if not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be true or false", "stream")
    max_tokens = payload.get("max_tokens")
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        raise InvalidRequest("'max_tokens' must be a positive integer", "max_tokens")
    options = payload.get("stream_options")
    if options is not None and (not stream or not isinstance(options, dict)):
        raise InvalidRequest(
            "'stream_options' is an object, allowed only with stream: true", "stream_options"
        )
    include_usage = bool(options and options.get("include_usage") is True)
    return ChatRequest(model, prompt_tokens, stream, max_tokens, include_usage)


@dataclass(frozen=True)
class Completion:
    """One simulated answer: its text, token usage and why it stopped."""

    id: str
    created: int
    model: str
    content: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str

    @property
    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


def complete(request: ChatRequest) -> Completion:
    """Produce the deterministic reply, cut at ``max_tokens`` like a real model would be."""
    content, finish_reason = REPLY, "stop"
    if request.max_tokens is not None and count_tokens(content) > request.max_tokens:
        content, finish_reason = content[: request.max_tokens * 4], "length"
    return Completion(
        id=f"chatcmpl-{uuid.uuid4().hex[:24]}",
        created=int(time.time()),
        model=request.model,
        content=content,
        prompt_tokens=request.prompt_tokens,
        completion_tokens=count_tokens(content),
        finish_reason=finish_reason,
    )


def completion_body(completion: Completion) -> dict[str, Any]:
    """The ``chat.completion`` object of a non-streaming response."""
    return {
        "id": completion.id,
        "object": "chat.completion",
        "created": completion.created,
        "model": completion.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": completion.content},
                "finish_reason": completion.finish_reason,
            }
        ],
        "usage": completion.usage,
    }


def _chunk(
    completion: Completion, delta: dict[str, str], finish_reason: str | None = None, usage: bool = False
) -> bytes:
    choice: dict[str, Any] = {"index": 0, "delta": delta}
    if finish_reason is not None:
        choice["finish_reason"] = finish_reason
    chunk: dict[str, Any] = {
        "id": completion.id,
        "object": "chat.completion.chunk",
        "created": completion.created,
        "model": completion.model,
        "choices": [choice],
    }
    if usage:
        chunk["usage"] = completion.usage
    return f"data: {json.dumps(chunk)}\n\n".encode()


def stream_events(completion: Completion, *, include_usage: bool = False) -> Iterator[bytes]:
    """Server-sent events as LiteLLM sends them: the role with the first word, one chunk per
    word, the finish chunk, a usage chunk only when asked for, ``[DONE]``."""
    words = re.findall(r"\S+\s*", completion.content) or [""]
    yield _chunk(completion, {"role": "assistant", "content": words[0]})
    for word in words[1:]:
        yield _chunk(completion, {"content": word})
    yield _chunk(completion, {}, completion.finish_reason)
    if include_usage:
        yield _chunk(completion, {}, usage=True)
    yield b"data: [DONE]\n\n"


def error_event(message: str, status: int) -> bytes:
    """The error event LiteLLM sends inside a 200 stream when the upstream fails mid-answer."""
    error = {"message": message, "type": None, "param": None, "code": str(status)}
    return f"data: {json.dumps({'error': error})}\n\n".encode()
