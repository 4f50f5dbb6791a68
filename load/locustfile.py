"""Load scenarios for `slo load`: one Locust user class per kind of traffic.

Targets, auth, timeouts, weights and think time all come from `monitoring.yaml` (the file
named by SLO_CONFIG, environment SLO_ENV), so this file holds only what the traffic does.

To add a scenario: copy a class, give it a new scenario name and a target from the config,
and give that name a weight under `load.scenarios`. Requests are named by their path (pass
`name=` when the path holds IDs); thresholds for one go under `load.endpoints` as Locust
names it, e.g. "GET /health". Validate responses with `catch_response=True`: a 200 with a
broken body is an outage for the caller too.

Run it with `slo load` (exact percentiles, verdict, exit code), or with plain Locust,
`locust -f load/locustfile.py`, for its web UI (only Locust's own statistics then).
"""

from locust import FastHttpUser, events, task

from slo.config import Target
from slo.loadgate import recorder
from slo.loadgate.users import LoadPlan, expect_json

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
