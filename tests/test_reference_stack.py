"""The reference stack over real loopback HTTP, run as a subprocess like users run it."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from devstack.refstack import ReferenceStack, ReferenceStackError
from devstack.refstack.gateway import API_BASE, model_id

MODEL = "claude-sonnet-4"
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "Write a haiku about SLOs."}]}


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=5.0) as http:
        yield http


def samples(metrics_text: str) -> dict[str, list[Sample]]:
    """Samples by sample name (``..._total``, ``..._bucket``) from a text exposition."""
    found: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(sample)
    return found


def sample_value(metrics_text: str, name: str, **labels: str) -> float:
    matching = [s.value for s in samples(metrics_text).get(name, []) if s.labels == labels]
    assert len(matching) == 1, f"expected one {name}{labels}, got {matching}"
    return matching[0]


def is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


# --- process lifecycle -------------------------------------------------------------------


def test_announces_urls_and_exits_zero_on_sigterm() -> None:
    stack = ReferenceStack().start()
    process = stack.process
    assert process is not None
    assert stack.api_url.startswith("http://127.0.0.1:")
    assert stack.gateway_url.startswith("http://127.0.0.1:")
    assert stack.api_url != stack.gateway_url
    httpx.get(f"{stack.api_url}/health", trust_env=False)
    assert stack.stop() == 0
    assert process.poll() == 0
    assert stack.stderr_text() == ""  # quiet unless --verbose
    with pytest.raises(ReferenceStackError, match="not running"):
        _ = stack.api_url


def test_verbose_logs_requests_to_stderr() -> None:
    with ReferenceStack("--verbose") as stack:
        httpx.get(f"{stack.api_url}/sandbox/status", trust_env=False)
    assert '"GET /sandbox/status HTTP/1.1" 200' in stack.stderr_text()


def test_startup_failure_reports_stderr() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        # The later --api-port wins over the 0 ReferenceStack passes first.
        # The line names the busy port and the flag that chose it.
        with pytest.raises(
            ReferenceStackError,
            match=rf"(?s)status 1.*cannot listen on 127.0.0.1 port {port} \(api, --api-port\)",
        ):
            ReferenceStack("--api-port", port).start()


def test_invalid_fault_flag_is_a_usage_error_naming_the_flag() -> None:
    with pytest.raises(ReferenceStackError, match=r"(?s)status 2.*--error-rate"):
        ReferenceStack("--error-rate", "1.5").start()


def test_shutdown_releases_hung_requests() -> None:
    stack = ReferenceStack("--hang").start()
    process = stack.process
    assert process is not None
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            httpx.get(f"{stack.api_url}/health", timeout=30.0, trust_env=False)
        except httpx.HTTPError as exc:
            outcome.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(0.3)
    started = time.monotonic()
    assert stack.stop() == 0
    assert time.monotonic() - started < 3.0
    caller.join(5.0)
    assert not caller.is_alive()
    assert outcome
    assert isinstance(outcome[0], httpx.RemoteProtocolError)
    assert process.poll() == 0


def test_startup_flags_set_faults_of_both_services() -> None:
    args = ("--latency-ms", "20", "--error-rate", "1", "--status", "500")
    with ReferenceStack(*args, "--sandbox-violations", "3") as stack:
        api, gateway = stack.faults("api"), stack.faults("gateway")
        for faults in (api, gateway):
            assert faults["latency_ms"] == 20.0
            assert faults["error_rate"] == 1.0
            assert faults["status"] == 500
        assert api["sandbox_violations"] == 3
        assert "sandbox_violations" not in gateway
        assert httpx.get(f"{stack.gateway_url}/health/liveliness", trust_env=False).status_code == 500
        metrics = httpx.get(f"{stack.api_url}/metrics", trust_env=False).text
        assert sample_value(metrics, "claude_sandbox_violations_total") == 3.0


# --- API service routes ------------------------------------------------------------------


def test_api_health_shape(stack: ReferenceStack, client: httpx.Client) -> None:
    response = client.get(f"{stack.api_url}/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert isinstance(body["active_sessions"], int)
    assert isinstance(body["total_cost"], float)
    assert MODEL in body["tokens_used"]
    for used in body["tokens_used"].values():
        assert set(used) == {"input", "output"}
        assert all(isinstance(count, int) for count in used.values())
    assert set(body["checks"]) >= {"disk", "memory"}
    assert body["checks"]["disk"]["status"] in ("healthy", "unhealthy")


def test_sandbox_status_shape(stack: ReferenceStack, client: httpx.Client) -> None:
    response = client.get(f"{stack.api_url}/sandbox/status")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["violations"] == 0
    assert isinstance(body["active_sandboxes"], int)


def test_api_metrics_have_seed_families(stack: ReferenceStack, client: httpx.Client) -> None:
    client.get(f"{stack.api_url}/health")
    response = client.get(f"{stack.api_url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    for name in (
        "claude_code_api_requests_total",
        "claude_code_api_latency_seconds_bucket",
        "claude_code_active_sessions",
        "claude_code_tokens_used_total",
        "claude_code_cost_usd",
        "claude_sandbox_violations_total",
        "process_cpu_seconds_total",
    ):
        assert name in found, name
    buckets = {s.labels["le"] for s in found["claude_code_api_latency_seconds_bucket"]}
    assert {"0.005", "2.0", "10.0", "+Inf"} <= buckets
    assert (
        sample_value(response.text, "claude_code_api_requests_total", endpoint="/health", status="200") >= 1
    )
    # Monitoring traffic is not service traffic: /metrics itself is never counted.
    assert all(s.labels["endpoint"] != "/metrics" for s in found["claude_code_api_requests_total"])


def test_unknown_path_is_404_and_counted_as_other(stack: ReferenceStack, client: httpx.Client) -> None:
    response = client.get(f"{stack.api_url}/no/such/path")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"
    metrics = client.get(f"{stack.api_url}/metrics").text
    assert sample_value(metrics, "claude_code_api_requests_total", endpoint="other", status="404") >= 1


def test_wrong_method_is_405(stack: ReferenceStack, client: httpx.Client) -> None:
    response = client.post(f"{stack.api_url}/health", json={})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"


# --- gateway routes ----------------------------------------------------------------------


def test_gateway_liveliness_and_readiness(stack: ReferenceStack, client: httpx.Client) -> None:
    live = client.get(f"{stack.gateway_url}/health/liveliness")
    assert live.status_code == 200
    assert live.json() == "I'm alive!"
    ready = client.get(f"{stack.gateway_url}/health/readiness")
    assert ready.status_code == 200
    assert ready.json() == {"status": "healthy", "db": "Not connected"}


def test_gateway_health_lists_endpoints(stack: ReferenceStack, client: httpx.Client) -> None:
    body = client.get(f"{stack.gateway_url}/health").json()
    assert body["unhealthy_endpoints"] == []
    assert body["unhealthy_count"] == 0
    assert body["healthy_count"] == len(body["healthy_endpoints"]) >= 1
    assert {"model": f"anthropic/{MODEL}", "model_id": model_id(MODEL), "api_base": API_BASE} in body[
        "healthy_endpoints"
    ]


def test_chat_completion_shape(stack: ReferenceStack, client: httpx.Client) -> None:
    response = client.post(f"{stack.gateway_url}/v1/chat/completions", json=CHAT)
    assert response.status_code == 200
    body = response.json()
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert isinstance(body["created"], int)
    assert body["model"] == MODEL
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"]
    assert choice["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens"] > 0
    assert usage["completion_tokens"] > 0


def test_prompt_tokens_grow_with_input_and_reach_the_api(stack: ReferenceStack, client: httpx.Client) -> None:
    def prompt_tokens(text: str) -> int:
        chat = {"model": MODEL, "messages": [{"role": "user", "content": text}]}
        response = client.post(f"{stack.gateway_url}/v1/chat/completions", json=chat)
        return int(response.json()["usage"]["prompt_tokens"])

    before = client.get(f"{stack.api_url}/health").json()
    short, long = prompt_tokens("hi"), prompt_tokens("hi " * 400)
    assert long > short
    assert prompt_tokens("hi") == short  # deterministic
    after = client.get(f"{stack.api_url}/health").json()
    input_delta = after["tokens_used"][MODEL]["input"] - before["tokens_used"][MODEL]["input"]
    assert input_delta == 2 * short + long
    assert after["total_cost"] > before["total_cost"]
    metrics = client.get(f"{stack.api_url}/metrics").text
    counted = sample_value(metrics, "claude_code_tokens_used_total", model=MODEL, type="input")
    assert counted == after["tokens_used"][MODEL]["input"]
    assert sample_value(metrics, "claude_code_cost_usd") == pytest.approx(after["total_cost"], abs=1e-6)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", None),
        (b"[]", None),
        (json.dumps({"messages": CHAT["messages"]}).encode(), "model"),
        (json.dumps({"model": MODEL}).encode(), "messages"),
        (json.dumps({"model": MODEL, "messages": []}).encode(), "messages"),
        (json.dumps({**CHAT, "model": "no-such-model"}).encode(), "model"),
    ],
)
def test_invalid_chat_request_is_400(
    stack: ReferenceStack, client: httpx.Client, body: bytes, param: str | None
) -> None:
    response = client.post(
        f"{stack.gateway_url}/v1/chat/completions",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["message"]


def test_streaming_completion(stack: ReferenceStack, client: httpx.Client) -> None:
    stack.set_faults("gateway", latency_ms=150)
    started = time.perf_counter()
    events: list[str] = []
    first_event_after = 0.0
    request = {**CHAT, "stream": True}
    with client.stream("POST", f"{stack.gateway_url}/v1/chat/completions", json=request) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                if not events:
                    first_event_after = time.perf_counter() - started
                events.append(line.removeprefix("data: "))
    assert first_event_after >= 0.15
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(chunk["choices"][0]["delta"].get("content", "") for chunk in chunks)
    assert text
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in chunk for chunk in chunks), "like LiteLLM: usage only when asked for"


def test_streaming_usage_only_with_stream_options(stack: ReferenceStack, client: httpx.Client) -> None:
    request = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    with client.stream("POST", f"{stack.gateway_url}/v1/chat/completions", json=request) as response:
        events = [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    usage = json.loads(events[-2])["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0


def test_health_of_one_model_group_is_503_when_it_is_down(
    stack: ReferenceStack, client: httpx.Client
) -> None:
    stack.set_faults("gateway", unhealthy_endpoints=[MODEL])
    down = client.get(f"{stack.gateway_url}/health", params={"model": MODEL})
    assert down.status_code == 503
    [entry] = down.json()["unhealthy_endpoints"]
    assert entry["model_id"] == model_id(MODEL)
    assert entry["exception_status"] == 500
    assert entry["error"].splitlines()[0] == "litellm.APIConnectionError: endpoint marked unhealthy (fault)"
    other = client.get(f"{stack.gateway_url}/health", params={"model": "claude-haiku-3-5"})
    assert other.status_code == 200
    assert other.json()["unhealthy_endpoints"] == []


def test_gateway_metrics(stack: ReferenceStack, client: httpx.Client) -> None:
    client.post(f"{stack.gateway_url}/v1/chat/completions", json=CHAT)
    redirect = client.get(f"{stack.gateway_url}/metrics")
    assert (redirect.status_code, redirect.headers["location"]) == (307, "/metrics/"), "as LiteLLM does"
    response = client.get(f"{stack.gateway_url}/metrics/")
    assert response.status_code == 200
    endpoint = "/v1/chat/completions"
    count = sample_value(
        response.text,
        "litellm_proxy_total_requests_metric_total",
        endpoint=endpoint,
        status_code="200",
    )
    assert count >= 1
    assert "litellm_request_total_latency_metric_bucket" in samples(response.text)


# --- faults ------------------------------------------------------------------------------


def test_latency_is_injected(stack: ReferenceStack, client: httpx.Client) -> None:
    def observed() -> tuple[float, float]:
        metrics = client.get(f"{stack.api_url}/metrics").text
        name = "claude_code_api_latency_seconds"
        fast = sample_value(metrics, f"{name}_bucket", endpoint="/health", le="0.1")
        return fast, sample_value(metrics, f"{name}_count", endpoint="/health")

    client.get(f"{stack.api_url}/health")  # the series exist from the first request on
    fast_before, count_before = observed()
    stack.set_faults("api", latency_ms=200)
    started = time.perf_counter()
    assert client.get(f"{stack.api_url}/health").status_code == 200
    assert 0.2 <= time.perf_counter() - started < 1.5
    fast_after, count_after = observed()
    # The histogram saw the injected latency too: one more request, none of them fast.
    assert (fast_after - fast_before, count_after - count_before) == (0, 1)


def test_latency_jitter_stays_in_range(stack: ReferenceStack, client: httpx.Client) -> None:
    stack.set_faults("api", latency_ms=100, latency_jitter_ms=50)
    durations = []
    for _ in range(8):
        started = time.perf_counter()
        client.get(f"{stack.api_url}/sandbox/status")
        durations.append(time.perf_counter() - started)
    assert min(durations) >= 0.05
    assert max(durations) < 1.0
    assert max(durations) - min(durations) > 0.005


def test_latency_does_not_block_other_requests(stack: ReferenceStack) -> None:
    stack.set_faults("api", latency_ms=200)
    limits = httpx.Limits(max_connections=50)
    with httpx.Client(trust_env=False, timeout=10.0, limits=limits) as http:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=50) as pool:
            statuses = list(pool.map(lambda _: http.get(f"{stack.api_url}/health").status_code, range(50)))
        elapsed = time.perf_counter() - started
    assert statuses == [200] * 50
    # Serialized, 50 requests would take 10 s; concurrent ones about 0.2 s. The bound only
    # tells the two apart, with room for a loaded CI machine.
    assert elapsed < 5.0, "requests waited for each other"


@pytest.mark.parametrize(
    ("service", "path"),
    [("api", "/health"), ("api", "/sandbox/status"), ("gateway", "/health/liveliness")],
)
def test_error_rate_one_answers_the_status(
    stack: ReferenceStack, client: httpx.Client, service: Any, path: str
) -> None:
    stack.set_faults(service, error_rate=1.0, status=502)
    response = client.get(f"{stack.url(service)}{path}")
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["type"] == "injected_fault"
    assert "fault injected" in error["message"]


def test_injected_errors_are_counted(stack: ReferenceStack, client: httpx.Client) -> None:
    stack.set_faults("api", error_rate=1.0)
    assert client.get(f"{stack.api_url}/health").status_code == 503  # the default status
    metrics = client.get(f"{stack.api_url}/metrics").text
    assert sample_value(metrics, "claude_code_api_requests_total", endpoint="/health", status="503") >= 1


def test_chat_completion_error_fault(stack: ReferenceStack, client: httpx.Client) -> None:
    stack.set_faults("gateway", error_rate=1.0, status=429)
    response = client.post(f"{stack.gateway_url}/v1/chat/completions", json=CHAT)
    assert response.status_code == 429
    assert response.json()["error"]["type"] == "injected_fault"


def test_partial_error_rate_is_roughly_that_share(stack: ReferenceStack, client: httpx.Client) -> None:
    stack.set_faults("api", error_rate=0.5)
    statuses = [client.get(f"{stack.api_url}/sandbox/status").status_code for _ in range(200)]
    assert 50 <= statuses.count(503) <= 150
    assert statuses.count(503) + statuses.count(200) == 200


def test_gateway_health_reports_unhealthy_endpoints(stack: ReferenceStack, client: httpx.Client) -> None:
    stack.set_faults("gateway", unhealthy_endpoints=[MODEL])
    body = client.get(f"{stack.gateway_url}/health").json()
    assert [e["model"] for e in body["unhealthy_endpoints"]] == [f"anthropic/{MODEL}"]
    assert body["unhealthy_count"] == 1
    assert MODEL not in [e["model"] for e in body["healthy_endpoints"]]
    stack.set_faults("gateway", unhealthy_endpoints=[], error_rate=1.0)
    response = client.get(f"{stack.gateway_url}/health")
    # Like LiteLLM: the health route answers, and lists every failing endpoint.
    assert response.status_code == 200
    assert response.json()["healthy_count"] == 0
    assert response.json()["unhealthy_count"] >= 1


def test_malformed_gives_non_json(stack: ReferenceStack, client: httpx.Client) -> None:
    stack.set_faults("api", malformed=True)
    stack.set_faults("gateway", malformed=True)
    for response in (
        client.get(f"{stack.api_url}/health"),
        client.get(f"{stack.gateway_url}/health"),
        client.post(f"{stack.gateway_url}/v1/chat/completions", json=CHAT),
    ):
        assert response.status_code == 200
        assert not is_json(response.text)


def test_hang_times_out_while_other_service_answers(stack: ReferenceStack, client: httpx.Client) -> None:
    stack.set_faults("api", hang=True)
    with ThreadPoolExecutor(max_workers=1) as pool:
        started = time.perf_counter()
        hung = pool.submit(httpx.get, f"{stack.api_url}/health", timeout=1.0, trust_env=False)
        other = client.get(f"{stack.gateway_url}/health")
        assert other.status_code == 200
        assert time.perf_counter() - started < 0.9
        with pytest.raises(httpx.ReadTimeout):
            hung.result()
    assert time.perf_counter() - started >= 1.0
    # The hung service can still be inspected and repaired.
    assert client.get(f"{stack.api_url}/metrics").status_code == 200
    assert client.get(f"{stack.api_url}/_faults").json()["hang"] is True


def test_clearing_hang_releases_waiting_requests(stack: ReferenceStack, client: httpx.Client) -> None:
    stack.set_faults("gateway", hang=True)
    with ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(
            httpx.get, f"{stack.gateway_url}/health/readiness", timeout=10.0, trust_env=False
        )
        time.sleep(0.3)
        assert not waiting.done()
        stack.clear_faults("gateway")
        assert waiting.result(timeout=5.0).status_code == 200


def test_sandbox_violations_reported_and_counted(stack: ReferenceStack, client: httpx.Client) -> None:
    def counted() -> float:
        metrics = client.get(f"{stack.api_url}/metrics").text
        return sample_value(metrics, "claude_sandbox_violations_total")

    before = counted()
    stack.set_faults("api", sandbox_violations=4)
    assert client.get(f"{stack.api_url}/sandbox/status").json()["violations"] == 4
    assert counted() == before + 4
    # Each injection is a new batch of events; updating another field injects none.
    stack.set_faults("api", sandbox_violations=4)
    stack.set_faults("api", latency_ms=1)
    assert counted() == before + 8
    stack.clear_faults("api")
    assert client.get(f"{stack.api_url}/sandbox/status").json()["violations"] == 0
    assert counted() == before + 8


# --- the /_faults control route ----------------------------------------------------------


def test_get_faults_defaults(stack: ReferenceStack) -> None:
    assert stack.faults("api") == {
        "latency_ms": 0.0,
        "latency_jitter_ms": 0.0,
        "error_rate": 0.0,
        "status": 503,
        "hang": False,
        "malformed": False,
        "sandbox_violations": 0,
    }
    assert stack.faults("gateway")["unhealthy_endpoints"] == []


def test_partial_update_keeps_other_fields(stack: ReferenceStack) -> None:
    stack.set_faults("api", latency_ms=10, status=500)
    faults = stack.set_faults("api", error_rate=0.25)
    assert faults["latency_ms"] == 10.0
    assert faults["status"] == 500
    assert faults["error_rate"] == 0.25
    assert stack.faults("gateway")["error_rate"] == 0.0  # per service


def test_delete_restores_a_healthy_service(stack: ReferenceStack, client: httpx.Client) -> None:
    stack.set_faults("api", error_rate=1.0, malformed=True, latency_ms=50)
    assert client.get(f"{stack.api_url}/health").status_code == 503
    faults = stack.clear_faults("api")
    assert faults["error_rate"] == 0.0
    assert faults["malformed"] is False
    response = client.get(f"{stack.api_url}/health")
    assert response.status_code == 200
    assert response.json()["status"] == "healthy"


def test_faults_route_is_never_faulted(stack: ReferenceStack, client: httpx.Client) -> None:
    stack.set_faults("api", error_rate=1.0, malformed=True, latency_ms=2000)
    started = time.perf_counter()
    assert client.get(f"{stack.api_url}/_faults").json()["error_rate"] == 1.0
    assert client.get(f"{stack.api_url}/metrics").status_code == 200
    assert time.perf_counter() - started < 1.0
    stack.set_faults("api", hang=True)
    assert client.delete(f"{stack.api_url}/_faults", timeout=2.0).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"latency": 5}, "latency"),
        ({"latency_ms": "fast"}, "latency_ms"),
        ({"latency_ms": -1}, "latency_ms"),
        ({"error_rate": 1.5}, "error_rate"),
        ({"status": 200}, "status"),
        ({"status": 503.5}, "status"),
        ({"hang": 1}, "hang"),
        ({"malformed": "yes"}, "malformed"),
        ({"sandbox_violations": True}, "sandbox_violations"),
        ({"unhealthy_endpoints": [MODEL]}, "unhealthy_endpoints"),  # gateway only
    ],
)
def test_bad_fault_update_is_400_naming_the_field(
    stack: ReferenceStack, client: httpx.Client, body: dict[str, Any], field: str
) -> None:
    before = stack.faults("api")
    response = client.put(f"{stack.api_url}/_faults", json=body)
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert f"'{field}'" in message
    assert "\n" not in message
    assert stack.faults("api") == before  # nothing half-applied


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]"])
def test_fault_update_must_be_a_json_object(stack: ReferenceStack, client: httpx.Client, body: bytes) -> None:
    response = client.put(f"{stack.api_url}/_faults", content=body)
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]["message"]


def test_set_faults_helper_raises_with_the_servers_message(stack: ReferenceStack) -> None:
    with pytest.raises(ReferenceStackError, match="error_rate"):
        stack.set_faults("gateway", error_rate=2)


# --- auth --------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["flag", "env"])
def test_api_key_required_when_configured(how: str) -> None:
    args, env = (("--api-key", "s3cret"), {}) if how == "flag" else ((), {"REFSTACK_API_KEY": "s3cret"})
    good = {"Authorization": "Bearer s3cret"}
    bad = {"Authorization": "Bearer wrong"}
    with (
        ReferenceStack(*args, env=env) as stack,
        httpx.Client(trust_env=False, timeout=5.0) as http,
    ):
        protected = [
            ("GET", f"{stack.api_url}/health"),
            ("GET", f"{stack.api_url}/sandbox/status"),
            ("GET", f"{stack.gateway_url}/health"),
            ("POST", f"{stack.gateway_url}/v1/chat/completions"),
        ]
        for method, url in protected:
            for headers in ({}, bad):
                response = http.request(method, url, json=CHAT, headers=headers)
                assert response.status_code == 401, url
                assert response.json()["error"]["type"] == "auth_error"
            assert http.request(method, url, json=CHAT, headers=good).status_code == 200, url
        # Control, scraping and orchestrator probes work without the key.
        assert http.get(f"{stack.api_url}/_faults").status_code == 200
        assert http.get(f"{stack.api_url}/metrics").status_code == 200
        assert http.get(f"{stack.gateway_url}/health/liveliness").status_code == 200
        # The gateway's metrics need the key, as LiteLLM's do by default.
        assert http.get(f"{stack.gateway_url}/metrics/").status_code == 401
        assert http.get(f"{stack.gateway_url}/metrics/", headers=good).status_code == 200
        metrics = http.get(f"{stack.api_url}/metrics").text
        assert sample_value(metrics, "claude_code_api_requests_total", endpoint="/health", status="401") == 2


def test_no_auth_by_default(stack: ReferenceStack, client: httpx.Client) -> None:
    response = client.get(f"{stack.api_url}/health", headers={"Authorization": "Bearer anything"})
    assert response.status_code == 200
