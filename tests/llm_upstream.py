"""A loopback OpenAI-compatible upstream that streams like a real model, for LiteLLM to front.

LiteLLM's mocks stream their whole answer at once, before any delay (``mock_delay`` holds back
the end of the stream, not its first token) and answer ``/v1/messages`` with a stream: true
request with one JSON body. This upstream streams token by token with real gaps, so the
proxy's own streaming paths (chat, and its translation to Anthropic events for
``/v1/messages``) are what the probes read. The model asked for picks the behaviour:

- ``steady``: :data:`WORDS` one per chunk, :data:`GAP` apart, usage, ``[DONE]``;
- ``slow-first``: the same after :data:`SLOW_FIRST` without a byte;
- ``stall``: a :data:`STALL` pause after the second token;
- ``low-headroom``: ``steady`` whose rate-limit headers say 1 request and 10 tokens are left;
- ``bad-tool-args``: a tool call whose arguments are not JSON;
- ``throttled``: 429 with ``Retry-After: 20`` and OpenAI's rate-limit error body, always.

A plain request with ``tools`` is answered with one call of the first tool (arguments
:data:`TOOL_ARGUMENTS`, ``finish_reason: tool_calls``) until the last message is the tool's
result, which is answered with text, as a model does in a tool-use round trip.

Every answer carries ``x-ratelimit-remaining-requests`` / ``-tokens``, as OpenAI's do.
"""

from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

__all__ = ["GAP", "RETRY_AFTER", "SLOW_FIRST", "STALL", "TOOL_ARGUMENTS", "WORDS", "Upstream"]

WORDS = ["po", "ng", " po", "ng", " pong"]
GAP = 0.02
SLOW_FIRST = 1.5
STALL = 1.0
TOOL_ARGUMENTS = {"word": "pong"}
RETRY_AFTER = 20


class Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))) or b"{}")
        model = str(body.get("model", "steady"))
        low = model == "low-headroom"
        headers = {
            "x-ratelimit-remaining-requests": "1" if low else "4999",
            "x-ratelimit-remaining-tokens": "10" if low else "3999000",
            "x-ratelimit-limit-requests": "5000",
            "x-ratelimit-limit-tokens": "4000000",
        }
        if model == "throttled":
            self._throttled()
            return
        usage = {"prompt_tokens": 7, "completion_tokens": len(WORDS), "total_tokens": 7 + len(WORDS)}
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": "".join(WORDS)}
            finish = "stop"
            messages = body.get("messages") or [{}]
            if body.get("tools") and messages[-1].get("role") != "tool":
                arguments = "{word: pong" if model == "bad-tool-args" else json.dumps(TOOL_ARGUMENTS)
                call = {"name": body["tools"][0]["function"]["name"], "arguments": arguments}
                message = {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": "call_upstream_1", "type": "function", "function": call}],
                }
                finish = "tool_calls"
            answer = {
                "id": "chatcmpl-upstream",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": usage,
            }
            payload = json.dumps(answer).encode()
            self.send_response(200)
            for name, value in {**headers, "content-type": "application/json"}.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        self.send_response(200)
        for name, value in {**headers, "content-type": "text/event-stream"}.items():
            self.send_header(name, value)
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        if model == "slow-first":
            time.sleep(SLOW_FIRST)
        for index, word in enumerate(WORDS):
            delta: dict[str, Any] = {"content": word}
            if index == 0:
                delta["role"] = "assistant"
            self._event(model, {"index": 0, "delta": delta, "finish_reason": None})
            time.sleep(STALL if model == "stall" and index == 1 else GAP)
        self._event(model, {"index": 0, "delta": {}, "finish_reason": "stop"})
        if (body.get("stream_options") or {}).get("include_usage"):
            self._event(model, None, usage)
        self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")

    def _throttled(self) -> None:
        error = {
            "message": "Rate limit reached for requests",
            "type": "requests",
            "code": "rate_limit_exceeded",
        }
        payload = json.dumps({"error": error}).encode()
        self.send_response(429)
        self.send_header("content-type", "application/json")
        self.send_header("retry-after", str(RETRY_AFTER))
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _event(self, model: str, choice: dict[str, Any] | None, usage: dict[str, int] | None = None) -> None:
        chunk: dict[str, Any] = {
            "id": "chatcmpl-upstream",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [choice] if choice else [],
        }
        if usage:
            chunk["usage"] = usage
        self._chunk(f"data: {json.dumps(chunk)}\n\n".encode())

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        pass
