"""A streamed chat completion as a load scenario reads it: what arrived, and whether it is an answer.

The chat probe's rules hold for every request of the load too: a stream that carries an error
event inside its HTTP 200 (``data: {"error": ...}``, as LiteLLM sends when the upstream fails
mid-answer), sends a malformed chunk, ends without ``data: [DONE]`` or delivers no content is
a failed request. The timing is :class:`slo.probe.llm.TokenTiming`, so a first token and a
token rate mean the same in a probe and in a load run.

>>> stream = ChatStream(TokenTiming(started=0.0))
>>> stream.read(['data: {"choices": [{"delta": {"content": "po"}}]}', "", "data: [DONE]"])
>>> stream.problem(), stream.deltas, stream.done
(None, 1, True)
>>> ChatStream(TokenTiming(started=0.0)).problem()
'stream ended after 0 chunk(s) without [DONE]'
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from slo.exchange.failures import error_message
from slo.loadgate.samples import StreamSample
from slo.probe.llm import TokenTiming

__all__ = ["ChatStream"]

_EXCERPT = 120


@dataclass
class ChatStream:
    """One OpenAI-style chat completion stream, read line by line (see the module doc)."""

    timing: TokenTiming
    done: bool = False
    chunks: int = 0
    #: Chunks whose delta carried content: the output tokens when the usage says nothing.
    deltas: int = 0
    #: ``usage.completion_tokens`` of the stream's usage chunk (``include_usage``), if any.
    usage_tokens: int | None = None
    #: The first line of an error event's message.
    error: str | None = None
    malformed: str | None = None

    def read(self, lines: Iterable[str]) -> None:
        """Read event lines until ``[DONE]``, an error event, a malformed chunk or their end."""
        for line in lines:
            if not line.startswith("data:"):
                continue  # blank separators, ": keep-alive" comments, event names
            data = line.removeprefix("data:").strip()
            if data == "[DONE]":
                self.done = True
                self.timing.end()
                return
            try:
                chunk = json.loads(data)
            except ValueError:
                chunk = None
            if not isinstance(chunk, dict):
                self.malformed = data[:_EXCERPT]
                return
            if "error" in chunk:
                self.error = error_message(data)[0] or "no message"
                return
            self.chunks += 1
            choices = chunk.get("choices")
            choice = choices[0] if isinstance(choices, list) and choices else None
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if isinstance(delta, dict) and delta.get("content"):
                self.deltas += 1
                self.timing.token()
            usage = chunk.get("usage")
            tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
            if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens >= 0:
                self.usage_tokens = tokens

    def problem(self) -> str | None:
        """Why this stream is a failed request (the probe's words), or None."""
        after = f"after {self.chunks} chunk(s)"
        if self.error is not None:
            return f"stream failed {after} with an error event: {self.error}"
        if self.malformed is not None:
            return f"stream sent a malformed chunk {after}: {self.malformed}"
        if not self.done:
            return f"stream ended {after} without [DONE]"
        if not self.deltas:
            return f"stream ended {after} without any content"
        return None

    def sample(self) -> StreamSample:
        """What the recorder keeps of it: the first token (whenever one came) and, for an answer
        that ended well, output tokens per second from the usage, else from counted deltas."""
        timing = self.timing
        first = timing.first_token
        rate = None
        if self.problem() is None:
            timing.output_tokens = self.deltas if self.usage_tokens is None else self.usage_tokens
            rate = timing.tokens_per_second
        return StreamSample(
            first_token_ms=None if first is None else 1000 * first,
            tokens_per_second=rate,
            tokens_from_usage=self.usage_tokens is not None,
        )
