"""Load scenarios for `slo load`: one Locust user class per kind of traffic.

Targets, auth, timeouts, weights and think time all come from `monitoring.yaml` (the file
named by SLO_CONFIG, environment SLO_ENV), so this file holds only what the traffic does.

To add a scenario: copy a class, give it a new scenario name and a target from the config,
and give that name a weight under `load.scenarios`. Requests are named by their path (pass
`name=` when the path holds IDs); thresholds for one go under `load.endpoints` as Locust
names it, e.g. "GET /health". Validate responses with `catch_response=True`: a 200 with a
broken body is an outage for the caller too.

Streamed answers: read them with `read_chat_stream` (see `ChatStream` below), which makes the
stream's total time the request's response time and hands its first-token time and tokens/s
to the exact recorder.

Run it with `slo load` (exact percentiles, verdict, exit code), or with plain Locust,
`locust -f load/locustfile.py`, for its web UI (only Locust's own statistics then).
"""

import time

from locust import FastHttpUser, events, task

from slo.config import Target
from slo.loadgate import recorder
from slo.loadgate.users import LoadPlan, expect_json, read_chat_stream

recorder.install(events)
plan = LoadPlan.from_environment(events)


@plan.scenario("api_health", target="api")
class ApiHealth(FastHttpUser):
    """The API's health endpoint, as load balancers and the health checker call it."""

    @task
    def health(self) -> None:
        with self.client.get("/health", catch_response=True) as response:
            expect_json(response, status="healthy")


@plan.scenario("sandbox_status", target="api")
class SandboxStatus(FastHttpUser):
    """The code sandboxes' status, polled by every IDE session."""

    @task
    def status(self) -> None:
        with self.client.get("/sandbox/status", catch_response=True) as response:
            expect_json(response, status="ok")


@plan.scenario("chat_completion", target="gateway")
class ChatCompletion(FastHttpUser):
    """A short, non-streaming chat completion through the OpenAI-compatible gateway."""

    target: Target  # set by @plan.scenario: the config's target, here for its model

    @task
    def complete(self) -> None:
        request = {
            "model": self.target.model,
            "messages": [{"role": "user", "content": "Reply with the word pong."}],
            "max_tokens": 8,
        }
        with self.client.post("/v1/chat/completions", json=request, catch_response=True) as response:
            body = expect_json(response, object="chat.completion")
            if body is not None and not body.get("choices"):
                response.failure("completion has no choices")


# The prompt mix of `chat_stream`: what a coding assistant sends. Most requests are short
# questions, some carry a file's worth of context, a few a large part of a repository (the
# weights of the tasks below: 6 : 3 : 1). Long prompts are what stretch the first token
# (prefill), long answers what exposes a slow decode.
_CODE = (
    "def merge(intervals):\n"
    "    intervals.sort(key=lambda pair: pair[0])\n"
    "    merged = [intervals[0]]\n"
    "    for start, end in intervals[1:]:\n"
    "        if start <= merged[-1][1]:\n"
    "            merged[-1][1] = max(merged[-1][1], end)\n"
    "        else:\n"
    "            merged.append([start, end])\n"
    "    return merged\n\n"
)  # about 100 tokens
SHORT_PROMPT = "Reply with the word pong."
MEDIUM_PROMPT = f"Review this function and name one bug:\n\n{_CODE * 4}"  # about 400 tokens
LONG_PROMPT = f"Summarize what these modules do, one line each:\n\n{_CODE * 30}"  # about 3000 tokens


@plan.scenario("chat_stream", target="gateway")
class ChatStream(FastHttpUser):
    """Streamed chat completions with a mix of prompt sizes, as a coding assistant streams them.

    Each answer's time to first token, output tokens per second and total time are recorded
    exactly (`load.endpoints."POST /v1/chat/completions"`: ttft_p95, tokens_per_second_p50);
    an error event inside the 200, a stream without [DONE] or without content fails the request.
    """

    target: Target  # set by @plan.scenario

    @task(6)
    def short(self) -> None:
        self.stream(SHORT_PROMPT, max_tokens=16)

    @task(3)
    def medium(self) -> None:
        self.stream(MEDIUM_PROMPT, max_tokens=128)

    @task(1)
    def long(self) -> None:
        self.stream(LONG_PROMPT, max_tokens=256)

    def stream(self, prompt: str, max_tokens: int) -> None:
        request = {
            "model": self.target.model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
            "stream": True,
            # LiteLLM streams usage only when asked: it gives the exact output token count.
            "stream_options": {"include_usage": True},
        }
        # Identity: the events are read as they arrive, not after a gzip block fills.
        headers = {"Accept": "text/event-stream", "Accept-Encoding": "identity"}
        started = time.perf_counter()
        with self.client.post(
            "/v1/chat/completions", json=request, headers=headers, stream=True, catch_response=True
        ) as response:
            read_chat_stream(
                response,
                started,
                max_bytes=self.target.max_response_bytes,
                timeout=plan.settings.stream_timeout,
            )
