"""A streamed chat completion as a load scenario judges it: the probe's rules, and what the
recorder keeps.

The stream is read by :func:`slo.llmstream.read_chat_stream`, the reader the chat probe uses,
so its rules hold for every request of the load too: a stream that carries an error event
inside its HTTP 200 (``data: {"error": ...}``, as LiteLLM sends when the upstream fails
mid-answer), sends a malformed chunk or ends without ``data: [DONE]`` is a failed request
(:meth:`~slo.llmstream.StreamedAnswer.finish_problem`), and so is one that delivers no content.

>>> stream = ChatStream(TokenTiming(started=0.0))
>>> read_chat_stream(['data: {"choices": [{"delta": {"content": "po"}}]}', "", "data: [DONE]"], stream)
>>> problem(stream), sample(stream).tokens_from_usage
(None, False)
"""

from __future__ import annotations

from slo.llmstream import ChatStream, TokenTiming, read_chat_stream
from slo.loadgate.samples import StreamSample

__all__ = ["ChatStream", "TokenTiming", "problem", "read_chat_stream", "sample"]


def problem(stream: ChatStream) -> str | None:
    """Why this stream is a failed request (the probe's words), or None."""
    finished = stream.finish_problem()
    if finished is None and not stream.timing.arrivals:
        return f"stream ended after {stream.seen()} without any content"
    return finished


def _usage_tokens(stream: ChatStream) -> int | None:
    tokens = stream.output_tokens
    return tokens if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens >= 0 else None


def sample(stream: ChatStream) -> StreamSample:
    """What the recorder keeps of it: the first token (whenever one came) and, for an answer
    that ended well, output tokens per second from the usage, else from counted deltas."""
    timing = stream.timing
    first = timing.first_token
    usage_tokens = _usage_tokens(stream)
    rate = None
    if problem(stream) is None:
        timing.output_tokens = len(timing.arrivals) if usage_tokens is None else usage_tokens
        rate = timing.tokens_per_second
    return StreamSample(
        first_token_ms=None if first is None else 1000 * first,
        tokens_per_second=rate,
        tokens_from_usage=usage_tokens is not None,
    )
