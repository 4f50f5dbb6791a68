"""The gateway probes against a real LiteLLM proxy: healthy, and each fault a user meets.

One proxy serves every case: each fault is a model group of its own (LiteLLM's mocks, one
upstream that breaks its stream), and each test points the probes' model at one of them.
Each fault must fail the right probe, with the right reason, in one line that names the
model and the evidence.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from litellm_proxy import MASTER_KEY, CutStream, LiteLLMProxy, mock_model, proxy_config, require_litellm
from llm_upstream import RETRY_AFTER, SLOW_FIRST, STALL, WORDS, Upstream
from loopback import loopback_server, url_of
from probe_project import INI, PROBES_DIR, SHIPPED_CONFIG, junit_cases, make_probe_project
from prometheus_client.parser import text_string_to_metric_families

from devstack.daemons import Pushgateway, free_port
from devstack.refstack import ReferenceStack

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
LIVELINESS = "test_gateway::test_gateway_liveliness"
READINESS = "test_gateway::test_gateway_readiness"
CHAT = "test_gateway::test_chat_completion"
STREAM = "test_gateway::test_streaming_time_to_first_token"
MESSAGES = "test_gateway::test_messages"
MESSAGES_STREAM = "test_gateway::test_messages_streaming"
HEADROOM = "test_gateway::test_rate_limit_headroom"
BUDGET = "test_gateway::test_budget_left"
TOOL = "test_gateway::test_tool_use"
MESSAGES_TOOL = "test_gateway::test_messages_tool_use"
WILDCARD = "anthropic/*"
LOOPING_CALL = {
    "id": "call_mock_1",
    "type": "function",
    "function": {"name": "lookup_word", "arguments": '{"word": "pong"}'},
}


def health(model: str) -> str:
    return f"test_gateway::test_gateway_model_healthy[{model}]"


@dataclass(frozen=True)
class Gateway:
    url: str
    proxy: LiteLLMProxy


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    require_litellm()
    with loopback_server(CutStream) as upstream, loopback_server(Upstream) as streaming:
        # Token-by-token streams from a real upstream, priced so LiteLLM reports each cost.
        price = {"input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05}
        streamed = [
            mock_model(
                name, f"openai/{name}", api_base=f"{url_of(streaming)}/v1", mock_response=None, **price
            )
            for name in ("sonnet", "haiku", "slow-first", "stall", "low-headroom", "bad-tool-args")
        ]
        models = [
            *streamed,
            mock_model("claude-sonnet-4", api_base="http://127.0.0.1:9/v1"),
            mock_model("claude-haiku-3-5", "openai/gpt-4o"),
            mock_model("degraded", "openai/gpt-4o-mini"),
            mock_model("degraded", "openai/gpt-4o", mock_response="litellm.InternalServerError"),
            mock_model("broken", mock_response="litellm.InternalServerError"),
            mock_model("slow", mock_delay=3),
            mock_model("rate-limited", mock_response="litellm.RateLimitError"),
            mock_model("overloaded", mock_response="Exception: mock_streaming_error"),
            mock_model("cut-stream", "openai/cut", api_base=f"{url_of(upstream)}/v1", mock_response=None),
            mock_model("primary", mock_response="litellm.RateLimitError"),
            mock_model("messages-primary", mock_response="litellm.RateLimitError"),
            # LiteLLM's mock of tool calls answers every request with them, the tool's result too.
            mock_model("tool-loop", mock_response=None, mock_tool_calls=[LOOPING_CALL]),
            # A throttled upstream (429, Retry-After: 20): one deployment of two, and a whole group.
            mock_model("mixed", "openai/steady", api_base=f"{url_of(streaming)}/v1", mock_response=None),
            mock_model("mixed", "openai/throttled", api_base=f"{url_of(streaming)}/v1", mock_response=None),
            mock_model("down429", "openai/throttled", api_base=f"{url_of(streaming)}/v1", mock_response=None),
            # A wildcard route: LiteLLM lists every model of its cost map it could reach.
            mock_model(WILDCARD, WILDCARD),
        ]
        fallbacks = [{"primary": ["claude-haiku-3-5"]}, {"messages-primary": ["haiku"]}]
        config = proxy_config(models, router={"fallbacks": fallbacks})
        # /v1/messages for an OpenAI-style deployment through chat completions (which the
        # upstream speaks), not LiteLLM's default, the Responses API.
        config["litellm_settings"]["use_chat_completions_url_for_anthropic_messages"] = True
        with LiteLLMProxy(config) as proxy:
            # The first completion after startup loads code paths (seconds on a busy machine):
            # served here, it cannot eat into a probe's latency budget.
            # So is the first of each API and of the streamed upstream.
            headers = {"Authorization": f"Bearer {MASTER_KEY}"}
            # Not LiteLLM's mock on /v1/messages: it reports 2,598 tokens an answer, which the
            # shipped config's token-rate budget would count.
            warm = [("/v1/chat/completions", "claude-sonnet-4"), ("/v1/chat/completions", "sonnet")]
            for (path, model), stream in itertools.product(
                [*warm, ("/v1/messages", "sonnet")], (False, True)
            ):
                warm_up = {"model": model, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
                httpx.post(
                    f"{proxy.url}{path}",
                    json={**warm_up, "stream": stream},
                    headers=headers,
                    timeout=60,
                    trust_env=False,
                ).raise_for_status()
            yield Gateway(proxy.url, proxy)


@pytest.fixture(scope="module")
def pushgateway() -> Iterator[str]:
    with Pushgateway() as daemon:
        yield daemon.url


@dataclass(frozen=True)
class Case:
    outcome: str
    message: str
    reason: str | None
    #: Why a passing probe was degraded (its JUnit property), or "".
    degraded: str = ""


@dataclass(frozen=True)
class Run:
    cases: dict[str, Case]
    output: str

    def __getitem__(self, case_id: str) -> Case:
        """A case by id; a per-model probe also by its id without the model, when one model ran."""
        if case_id in self.cases:
            return self.cases[case_id]
        [case] = [case for name, case in self.cases.items() if name.startswith(f"{case_id}[")]
        return case


def run_gateway(
    pytester: pytest.Pytester,
    pushgateway: str,
    url: str,
    model: str,
    *,
    token: str | None = MASTER_KEY,
    probes: str | tuple[str, ...] = "probes/test_gateway.py",
    gateway_probe: dict[str, Any] | None = None,
    **overrides: Any,
) -> Run:
    """Run the gateway probes at `url` asking for `model`; each case's outcome, message, reason."""
    target: dict[str, Any] = {"url": url, "timeout": "10s", "model": model, "stream": True}
    if token is not None:
        target["token"] = token
    settings = {"completion_budget": "2s", "first_token_budget": "2s", **(gateway_probe or {})}
    make_probe_project(
        pytester,
        None,
        environments={"local": {"targets": {"gateway": target}}},
        probes={"gateway": settings},
        **overrides,
    )
    state = pytester.path / "state.json"
    # Pushed for real: the state file, saved before each push, holds each probe's `reason`.
    selected = (probes,) if isinstance(probes, str) else probes
    result = pytester.runpytest(*selected, "--pushgateway", pushgateway, "--slo-state", str(state))
    reasons = {
        f"{Path(probe.split('::')[0]).stem}::{probe.split('::', 1)[1]}": fields.get("last_failure_reason")
        for group in json.loads(state.read_text())["groups"].values()
        for probe, fields in group.items()
    }
    cases = {
        case_id: Case(case.outcome, case.message, reasons.get(case_id), case.degraded)
        for case_id, case in junit_cases(pytester).items()
    }
    return Run(cases, "\n".join(result.outlines))


def assert_fails(case: Case, reason: str, *fragments: str) -> None:
    assert case.outcome == "failed", case
    assert case.reason == reason, case
    for fragment in fragments:
        assert fragment in case.message, (fragment, case)


def test_healthy_model_passes_every_gateway_probe(
    pytester: pytest.Pytester, pushgateway: str, gateway: Gateway
) -> None:
    cases = run_gateway(pytester, pushgateway, gateway.url, "claude-sonnet-4")
    assert {case_id: case.outcome for case_id, case in cases.cases.items()} == {
        LIVELINESS: "passed",
        READINESS: "passed",
        health("claude-sonnet-4"): "passed",
        f"{CHAT}[claude-sonnet-4]": "passed",
        f"{STREAM}[claude-sonnet-4]": "passed",
        # Off unless configured: apis: [chat, messages], and a headroom floor.
        f"{MESSAGES}[claude-sonnet-4]": "skipped",
        f"{MESSAGES_STREAM}[claude-sonnet-4]": "skipped",
        f"{HEADROOM}[claude-sonnet-4]": "skipped",
        f"{TOOL}[claude-sonnet-4]": "skipped",
        f"{MESSAGES_TOOL}[claude-sonnet-4]": "skipped",
        BUDGET: "skipped",
    }


def test_shipped_config_passes_against_a_healthy_litellm(
    pytester: pytest.Pytester, pushgateway: str, gateway: Gateway
) -> None:
    """`monitoring.yaml` as shipped, only the gateway's URL and key from the environment."""
    shutil.copytree(PROBES_DIR, pytester.path / "probes", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(SHIPPED_CONFIG, pytester.path / "monitoring.yaml")
    pytester.makeini(INI)
    env = {**os.environ, "GATEWAY_URL": gateway.url, "LITELLM_API_KEY": MASTER_KEY, "PUSHGATEWAY_URL": ""}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "--no-push",
        "-k",
        "gateway",
        "probes/",
    ]
    result = subprocess.run(
        command, cwd=pytester.path, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    outcomes = {case_id: case.outcome for case_id, case in junit_cases(pytester).items()}
    model = "claude-sonnet-4"
    assert (
        outcomes[f"{STREAM}[{model}]"] == outcomes[f"{CHAT}[{model}]"] == outcomes[health(model)] == "passed"
    )
    assert outcomes["test_metrics_endpoint::test_metric_families_present[gateway]"] == "passed"


def test_one_broken_deployment_of_two_is_degraded_naming_it(
    pytester: pytest.Pytester, pushgateway: str, gateway: Gateway
) -> None:
    cases = run_gateway(
        pytester,
        pushgateway,
        gateway.url,
        "degraded",
        probes="probes/test_gateway.py::test_gateway_model_healthy",
    )
    case = cases[health("degraded")]
    assert case.outcome == "passed", "degraded passes in pytest"
    assert (
        "model group degraded degraded, 1 of 2 deployment(s) unhealthy: degraded (openai/gpt-4o, model_id "
        in case.degraded
    )
    assert "litellm.InternalServerError: this is a mock internal server error" in case.degraded
    assert any(line.startswith("DEGRADED [gateway]") for line in cases.output.splitlines())
    assert deployment_health(pushgateway, "degraded") == {"openai/gpt-4o": 0, "openai/gpt-4o-mini": 1}


def deployment_health(pushgateway: str, model: str) -> dict[str, float]:
    """The pushed health of each deployment of `model`, by its provider model."""
    gauges = pushed(pushgateway, "synthetic_gen_ai_deployment_healthy", model=model)
    return {dict(labels)["deployment"].split(" model_id ")[0]: value for labels, value in gauges.items()}


def test_model_group_down_fails_health_chat_and_stream(
    pytester: pytest.Pytester, pushgateway: str, gateway: Gateway
) -> None:
    cases = run_gateway(pytester, pushgateway, gateway.url, "broken")
    error = "litellm.InternalServerError: this is a mock internal server error"
    assert_fails(
        cases[health("broken")],
        "upstream",
        "gateway GET /health: model group broken down, 1 of 1 deployment(s) unhealthy: "
        "broken (openai/gpt-4o-mini, model_id ",
        error,
    )
    assert "stack trace" not in cases[health("broken")].message
    assert_fails(cases[CHAT], "upstream", "model=broken returned 500 (expected 200, upstream)", error)
    assert_fails(cases[STREAM], "upstream", "model=broken returned 500", error)
    assert cases[LIVELINESS].outcome == cases[READINESS].outcome == "passed"


def test_slow_model_breaks_the_completion_and_first_token_budgets(
    pytester: pytest.Pytester, pushgateway: str, gateway: Gateway
) -> None:
    cases = run_gateway(pytester, pushgateway, gateway.url, "slow")
    assert_fails(cases[CHAT], "assertion", "model=slow took ", ", budget 2000 ms")
    assert_fails(cases[STREAM], "assertion", "model=slow first token after ", ", budget 2000 ms")
    assert "usage" not in cases[STREAM].message, "usage is streamed when asked for"


def test_rate_limited_model(pytester: pytest.Pytester, pushgateway: str, gateway: Gateway) -> None:
    cases = run_gateway(pytester, pushgateway, gateway.url, "rate-limited")
    error = "litellm.RateLimitError: this is a mock rate limit error"
    assert_fails(cases[CHAT], "rate_limit", "returned 429 (expected 200, rate_limit)", error)
    assert_fails(cases[STREAM], "rate_limit", "returned 429", error)
    assert_fails(cases[health("rate-limited")], "rate_limit", "model group rate-limited down", error)


def test_overloaded_model(pytester: pytest.Pytester, pushgateway: str, gateway: Gateway) -> None:
    cases = run_gateway(
        pytester,
        pushgateway,
        gateway.url,
        "overloaded",
        probes="probes/test_gateway.py::test_chat_completion",
    )
    # LiteLLM's mock answers 529 (Anthropic's "overloaded") up to 1.109, 503 from 1.110: both
    # are an overloaded upstream.
    assert re.search(r"returned (529|503) \(expected 200, overloaded\)", cases[CHAT].message), cases[CHAT]
    assert_fails(cases[CHAT], "overloaded", "mock error raised mid-stream")


def test_stream_failing_after_its_first_chunk(
    pytester: pytest.Pytester, pushgateway: str, gateway: Gateway
) -> None:
    cases = run_gateway(
        pytester,
        pushgateway,
        gateway.url,
        "cut-stream",
        probes="probes/test_gateway.py::test_streaming_time_to_first_token",
    )
    assert_fails(
        cases[STREAM],
        "stream",
        "model=cut-stream stream failed after 1 chunk(s) with an error event: litellm.APIConnectionError",
    )


def test_fallback_answer_fails_unless_allowed(
    pytester: pytest.Pytester, pushgateway: str, gateway: Gateway
) -> None:
    cases = run_gateway(pytester, pushgateway, gateway.url, "primary")
    fallback = "was answered by model group claude-haiku-3-5 after 1 fallback(s)"
    assert_fails(cases[CHAT], "fallback", "model=primary", fallback)
    assert_fails(cases[STREAM], "fallback", "model=primary", fallback)

    allowed = run_gateway(
        pytester,
        pushgateway,
        gateway.url,
        "primary",
        probes="probes/test_gateway.py::test_chat_completion",
        gateway_probe={"allow_fallbacks": True},
    )
    assert allowed[CHAT].outcome == "passed"
    junit = (pytester.path / "reports" / "junit.xml").read_text()
    assert 'name="served_model_group" value="claude-haiku-3-5"' in junit


@pytest.mark.parametrize(
    ("token", "status", "message"),
    [
        (None, "401", "Authentication Error, No api key passed in."),
        ("sk-not-the-master-key", "400", "No connected db."),
    ],
    ids=["missing-key", "wrong-key"],
)
def test_missing_or_wrong_key_is_auth(
    pytester: pytest.Pytester,
    pushgateway: str,
    gateway: Gateway,
    token: str | None,
    status: str,
    message: str,
) -> None:
    cases = run_gateway(pytester, pushgateway, gateway.url, "claude-sonnet-4", token=token)
    for case_id in (CHAT, STREAM):
        assert_fails(cases[case_id], "auth", f"returned {status} (expected 200, auth)", message)
    assert_fails(cases[health("claude-sonnet-4")], "auth", message)
    assert cases[LIVELINESS].outcome == cases[READINESS].outcome == "passed"
    if token:
        assert all(token not in case.message for case in cases.cases.values())


def test_stopped_proxy_is_connection_refused(pytester: pytest.Pytester, pushgateway: str) -> None:
    """What a stopped proxy leaves: nothing listening on its port (a second proxy started
    only to be stopped would cost the suite ten seconds for the same refused connect)."""
    cases = run_gateway(pytester, pushgateway, f"http://127.0.0.1:{free_port()}", "claude-sonnet-4")
    probed = {
        f"{probe}[claude-sonnet-4]"
        for probe in (CHAT, STREAM, MESSAGES, MESSAGES_STREAM, HEADROOM, TOOL, MESSAGES_TOOL)
    }
    assert set(cases.cases) == {LIVELINESS, READINESS, BUDGET, health("claude-sonnet-4"), *probed}
    for case in cases.cases.values():
        if case.outcome != "skipped":
            assert_fails(case, "connect", "connection refused")


#: The gate judges LiteLLM's answers here, not its speed on a loaded two-core CI runner (two
#: proxies and other tests beside it under -n 2): a generous P95, and enough users and time
#: for the 59 samples a P95 claim needs even when the machine is slow.
LOAD = {
    "users": 6,
    "spawn_rate": 50,
    "warmup": "500ms",
    # 59 requests are needed for a P95 verdict: 10 s leaves room for a proxy slowed by a busy
    # machine (about 6 requests a second in all is enough).
    "duration": "10s",
    "think_time_min": "20ms",
    "think_time_max": "40ms",
    "scenarios": {"chat_completion": 1},
    "total": {"p95": "8s", "error_rate": 5, "min_requests": 59},
}


def slo_load(tmp_path: Path, url: str, model: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    target = {"url": url, "token": MASTER_KEY, "timeout": "10s", "model": model}
    config = tmp_path / "monitoring.yaml"
    config.write_text(json.dumps({"environments": {"local": {"targets": {"gateway": target}}}, "load": LOAD}))
    reports = tmp_path / "reports"
    command = [sys.executable, "-m", "slo", "load", "--config", str(config), "--report-dir", str(reports)]
    command += ["--locustfile", str(ROOT / "load" / "locustfile.py")]
    env = {k: v for k, v in os.environ.items() if k not in {"PUSHGATEWAY_URL", "SLO_CONFIG", "SLO_ENV"}}
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, env=env)
    return result, json.loads((reports / "summary.json").read_text())


def test_load_gate_passes_on_a_healthy_model(tmp_path: Path, gateway: Gateway) -> None:
    result, summary = slo_load(tmp_path, gateway.url, "claude-sonnet-4")
    assert result.returncode == 0, result.stdout + result.stderr + json.dumps(summary.get("thresholds"))
    assert summary["verdict"] == "pass"
    assert summary["endpoints"]["POST /v1/chat/completions"]["failures"] == 0


def test_load_gate_failure_lines_carry_the_gateway_error(tmp_path: Path, gateway: Gateway) -> None:
    result, summary = slo_load(tmp_path, gateway.url, "rate-limited")
    assert result.returncode == 1, result.stdout + result.stderr
    [error] = summary["errors"]
    assert error["message"] == "429 rate_limit: litellm.RateLimitError: this is a mock rate limit error"
    assert "429 rate_limit: litellm.RateLimitError: this is a mock rate limit error" in result.stdout
    assert MASTER_KEY not in result.stdout + result.stderr


#: Each fault as the reference stack injects it, as a LiteLLM model group has it, and the
#: probes it is compared on (the reference stack's faults hit every route, LiteLLM's a model).
CONTRACT: dict[str, tuple[dict[str, Any], str, tuple[str, ...]]] = {
    "healthy": ({}, "claude-sonnet-4", (CHAT, STREAM, "health")),
    "rate-limited": ({"error_rate": 1.0, "status": 429}, "rate-limited", (CHAT, STREAM, "health")),
    "fallback": ({"fallback_models": ["claude-sonnet-4"]}, "primary", (CHAT, STREAM, "health")),
    # The upstream that cuts its stream serves nothing else.
    "stream error": ({"stream_error": True}, "cut-stream", (STREAM,)),
}


@pytest.mark.parametrize("fault", list(CONTRACT))
def test_reference_stack_fails_the_probes_as_litellm_does(
    pytester: pytest.Pytester, pushgateway: str, gateway: Gateway, stack: ReferenceStack, fault: str
) -> None:
    """The same gateway probes, the same fault: the same outcome and reason on both."""
    faults, model, compared = CONTRACT[fault]

    def verdicts(run: Run, asked: str) -> dict[str, tuple[str, str | None]]:
        ids = [health(asked) if probe == "health" else probe for probe in compared]
        return {
            probe: (run[case].outcome, run[case].reason) for probe, case in zip(compared, ids, strict=True)
        }

    on_litellm = run_gateway(pytester, pushgateway, gateway.url, model)
    stack.set_faults("gateway", **faults)
    try:
        on_stack = run_gateway(pytester, pushgateway, stack.gateway_url, "claude-sonnet-4", token=None)
    finally:
        stack.clear_faults("gateway")
    assert verdicts(on_stack, "claude-sonnet-4") == verdicts(on_litellm, model), (on_stack, on_litellm)


# --- the LLM layer: per-model probes, the Messages API, token timing, cost and headroom ---------

LLM_APIS = {"apis": ["chat", "messages"]}


def pushed(pushgateway: str, name: str, **labels: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of `name` the Pushgateway holds whose labels include `labels`."""
    text = httpx.get(f"{pushgateway}/metrics", timeout=10, trust_env=False).text
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def one(samples: dict[tuple[tuple[str, str], ...], float]) -> float:
    [value] = samples.values()
    return value


def test_two_models_each_probed_in_both_apis_with_their_metrics_pushed(
    pytester: pytest.Pytester, pushgateway: str, gateway: Gateway
) -> None:
    """Each model group its own chat and Messages probes, plain and streamed; every stream's
    token timing, every answer's usage, cost and headroom pushed, labelled model and api."""
    settings = {**LLM_APIS, "models": ["sonnet", {"name": "haiku", "max_tokens": 16}]}
    cases = run_gateway(pytester, pushgateway, gateway.url, "sonnet", gateway_probe=settings)
    for model in ("sonnet", "haiku"):
        for probe in (CHAT, STREAM, MESSAGES, MESSAGES_STREAM):
            assert cases[f"{probe}[{model}]"].outcome == "passed", cases[f"{probe}[{model}]"]
        for api in ("chat", "messages"):
            where = {"model": model, "api": api}
            # One stream per api and model: one observation of each timing.
            for histogram in (
                "synthetic_gen_ai_time_to_first_token_seconds",
                "synthetic_gen_ai_time_per_output_token_seconds",
                "synthetic_gen_ai_output_tokens_per_second",
                "synthetic_gen_ai_operation_duration_seconds",
            ):
                assert one(pushed(pushgateway, f"{histogram}_count", **where)) == 1, (histogram, where)
            # The upstream streams its words GAP apart: decode speed is finite and positive.
            assert one(pushed(pushgateway, "synthetic_gen_ai_last_output_tokens_per_second", **where)) > 0
            # Output tokens from the plain answer and from the stream's usage, a series per probe.
            tokens = pushed(pushgateway, "synthetic_gen_ai_tokens_total", type="output", **where)
            assert sum(tokens.values()) == 2 * len(WORDS)
            # Priced deployments: 7 input and 5 output tokens at 3e-06 and 1.5e-05 per token, on
            # the plain answer (a stream's headers leave before its cost is known).
            cost = pushed(pushgateway, "synthetic_gen_ai_probe_cost_usd_total", **where)
            assert sum(cost.values()) == pytest.approx(9.6e-05)
        headroom = pushed(pushgateway, "synthetic_gen_ai_ratelimit_remaining", model=model, api="chat")
        assert {dict(labels)["resource"]: value for labels, value in headroom.items()} == {
            "requests": 4999,
            "tokens": 3999000,
        }
    first = pushed(
        pushgateway, "synthetic_gen_ai_time_to_first_token_seconds_bucket", model="sonnet", api="chat"
    )
    assert {dict(labels)["probe"] for labels in first} == {f"probes/{STREAM.replace('::', '.py::')}[sonnet]"}


def listed_models(gateway: Gateway) -> list[str]:
    listed = httpx.get(
        f"{gateway.url}/v1/models",
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        timeout=10,
        trust_env=False,
    ).json()["data"]
    return [model["id"] for model in listed]


def collect_discovered(pytester: pytest.Pytester, gateway: Gateway, **settings: Any) -> tuple[list[str], str]:
    """The model groups `models: discover` collects probes for, and the run's output."""
    target = {"url": gateway.url, "token": MASTER_KEY, "timeout": "10s", "model": "sonnet"}
    make_probe_project(
        pytester,
        None,
        environments={"local": {"targets": {"gateway": target}}},
        probes={"gateway": {"models": "discover", **settings}},
    )
    result = pytester.runpytest("probes/test_gateway.py", "--collect-only", "--no-push")
    collected = [
        line.rsplit("[", 1)[1].rstrip("]>")
        for line in result.outlines
        if "test_chat_completion[" in line or "test_gateway_model_healthy[" in line
    ]
    return collected, "\n".join(result.outlines)


def test_discover_probes_the_concrete_groups_and_names_a_wildcard_route_once(
    pytester: pytest.Pytester, gateway: Gateway
) -> None:
    listed = listed_models(gateway)
    # LiteLLM expands the route from its cost map: each would be probed, and fail its health.
    expanded = [name for name in listed if name.startswith("anthropic/")]
    assert len(expanded) > 10, listed
    collected, output = collect_discovered(pytester, gateway, max_models=100)
    concrete = [name for name in listed if name not in expanded]
    assert sorted(set(collected)) == sorted(concrete)
    assert {"sonnet", "claude-sonnet-4", "cut-stream", "mixed"} <= set(collected)
    # A chat and a health probe per group, no more.
    assert len(collected) == 2 * len(concrete)
    [note] = [line for line in output.splitlines() if "wildcard route" in line]
    assert note == (
        f"slo: models: discover leaves out wildcard route {WILDCARD} ({len(expanded)} model(s) listed "
        "for it): name the ones to probe in probes.gateway.models"
    )


def test_discover_probes_at_most_max_models_and_says_so(pytester: pytest.Pytester, gateway: Gateway) -> None:
    listed = [name for name in listed_models(gateway) if not name.startswith("anthropic/")]
    collected, output = collect_discovered(pytester, gateway, max_models=3)
    assert sorted(set(collected)) == sorted(listed[:3])
    assert (
        f"slo: models: discover found {len(listed)} model groups, probing the first 3 "
        "(probes.gateway.max_models)"
    ) in output.splitlines()


def test_discover_on_a_stopped_gateway_is_one_failing_probe(
    pytester: pytest.Pytester, pushgateway: str
) -> None:
    cases = run_gateway(
        pytester,
        pushgateway,
        f"http://127.0.0.1:{free_port()}",
        "sonnet",
        gateway_probe={"models": "discover"},
    )
    # Every per-model probe errors in its setup, naming what failed: never a run of no probes.
    case = cases[f"{CHAT}[discover]"]
    assert (case.outcome, case.reason) == ("error", "http_status"), case
    assert "models: discover could not read /v1/models: gateway: GET " in case.message
    assert "/v1/models: connection refused" in case.message


def test_slow_first_token_fails_both_streams_and_is_measured(
    pytester: pytest.Pytester, pushgateway: str, gateway: Gateway
) -> None:
    settings = {**LLM_APIS, "models": [{"name": "slow-first", "first_token_budget": "1s"}]}
    cases = run_gateway(pytester, pushgateway, gateway.url, "slow-first", gateway_probe=settings)
    for probe in (STREAM, MESSAGES_STREAM):
        assert_fails(cases[probe], "assertion", "first token after ", ", budget 1000 ms")
    # Plain answers come whole: only the streams hold the first token back.
    assert cases[CHAT].outcome == cases[MESSAGES].outcome == "passed"
    for api in ("chat", "messages"):
        where = {"model": "slow-first", "api": api}
        # Recorded even though the probe failed: the timing is what explains the failure.
        assert (
            one(pushed(pushgateway, "synthetic_gen_ai_last_time_to_first_token_seconds", **where))
            >= SLOW_FIRST
        )
        buckets = pushed(pushgateway, "synthetic_gen_ai_time_to_first_token_seconds_bucket", **where)
        # The Pushgateway spells bounds its own way (le="1"): compared as numbers.
        assert [value for labels, value in buckets.items() if float(dict(labels)["le"]) == 1.0] == [0]


def test_a_stall_mid_answer_is_the_worst_gap(
    pytester: pytest.Pytester, pushgateway: str, gateway: Gateway
) -> None:
    cases = run_gateway(
        pytester, pushgateway, gateway.url, "stall", probes=f"probes/test_gateway.py::{STREAM.split('::')[1]}"
    )
    assert cases[STREAM].outcome == "passed"
    worst = one(pushed(pushgateway, "synthetic_gen_ai_last_max_time_between_tokens_seconds", model="stall"))
    mean = one(pushed(pushgateway, "synthetic_gen_ai_last_time_per_output_token_seconds", model="stall"))
    # Through the proxy a gap can shrink a little (an earlier chunk delayed): margins, not equality.
    assert worst >= STALL / 2, (worst, mean)
    assert worst > 3 * mean, (worst, mean)


def test_messages_stream_error_event_mid_answer(
    pytester: pytest.Pytester, pushgateway: str, gateway: Gateway
) -> None:
    """The upstream dies after its first chunk: LiteLLM has sent 200 and message_start, and
    ends with an ``error`` event, which only a reader of the events sees."""
    cases = run_gateway(
        pytester,
        pushgateway,
        gateway.url,
        "cut-stream",
        probes=f"probes/test_gateway.py::{MESSAGES_STREAM.split('::')[1]}",
        gateway_probe=LLM_APIS,
    )
    # How many events come before the error is LiteLLM's framing: 2 in 1.108 (message_start,
    # content_block_start), 4 in 1.109.
    assert re.search(
        r"model=cut-stream stream failed after [24] event\(s\) with an error event",
        (cases[MESSAGES_STREAM].message),
    ), cases[MESSAGES_STREAM]
    assert_fails(
        cases[MESSAGES_STREAM],
        "stream",
        "with an error event: litellm.APIConnectionError",
    )


def test_messages_fallback_rate_limit_and_down(
    pytester: pytest.Pytester, pushgateway: str, gateway: Gateway
) -> None:
    only = f"probes/test_gateway.py::{MESSAGES.split('::')[1]}"
    fallback = run_gateway(
        pytester, pushgateway, gateway.url, "messages-primary", probes=only, gateway_probe=LLM_APIS
    )
    assert_fails(fallback[MESSAGES], "fallback", "was answered by model group haiku after 1 fallback(s)")
    limited = run_gateway(
        pytester, pushgateway, gateway.url, "rate-limited", probes=only, gateway_probe=LLM_APIS
    )
    assert_fails(limited[MESSAGES], "rate_limit", "returned 429", "this is a mock rate limit error")
    down = run_gateway(pytester, pushgateway, gateway.url, "broken", probes=only, gateway_probe=LLM_APIS)
    assert_fails(down[MESSAGES], "upstream", "returned 500", "mock internal server error")


def test_headroom_under_the_floor_fails(
    pytester: pytest.Pytester, pushgateway: str, gateway: Gateway
) -> None:
    floors = {"models": ["low-headroom", "sonnet"], "min_remaining_requests": 5, "min_remaining_tokens": 100}
    cases = run_gateway(
        pytester,
        pushgateway,
        gateway.url,
        "sonnet",
        probes=f"probes/test_gateway.py::{HEADROOM.split('::')[1]}",
        gateway_probe=floors,
    )
    assert_fails(
        cases[f"{HEADROOM}[low-headroom]"],
        "rate_limit",
        "model low-headroom: 1 requests left, floor 5; 10 tokens left, floor 100",
    )
    assert cases[f"{HEADROOM}[sonnet]"].outcome == "passed"


def test_daily_probe_spend_over_the_limit_warns(
    pytester: pytest.Pytester, pushgateway: str, gateway: Gateway
) -> None:
    cases = run_gateway(
        pytester,
        pushgateway,
        gateway.url,
        "sonnet",
        probes=f"probes/test_gateway.py::{CHAT.split('::')[1]}",
        gateway_probe={"daily_spend_limit": 0.0001},
    )
    assert "probe spend today" not in cases.output, "one answer costs 9.6e-05, under the limit"
    again = run_gateway(
        pytester,
        pushgateway,
        gateway.url,
        "sonnet",
        probes=f"probes/test_gateway.py::{CHAT.split('::')[1]}",
        gateway_probe={"daily_spend_limit": 0.0001},
    )
    warning = "WARNING: probe spend today is $0.0002 (x-litellm-response-cost), over probes.gateway"
    assert f"{warning}.daily_spend_limit $0.0001" in again.output
    assert again[CHAT].outcome == "passed"


@pytest.mark.parametrize(
    ("token", "reason", "answer"),
    [
        # The master key passes auth, and /key/info (info_key_fn) finds no prisma client.
        (MASTER_KEY, "http_status", "returned 500: the gateway has no database"),
        # Any other key is refused by auth first: LiteLLM cannot look a virtual key up.
        ("sk-virtual-key-7e1d", "auth", "returned 400: the gateway has no database"),
    ],
    ids=["master-key", "virtual-key"],
)
def test_budget_probe_on_litellm_without_a_database_says_so(
    pytester: pytest.Pytester, pushgateway: str, gateway: Gateway, token: str, reason: str, answer: str
) -> None:
    """Key and team budgets live in LiteLLM's database: without one the budget probe fails in
    one line that says so and quotes LiteLLM, never passes or errors."""
    cases = run_gateway(
        pytester,
        pushgateway,
        gateway.url,
        "sonnet",
        token=token,
        probes=f"probes/test_gateway.py::{BUDGET.split('::')[1]}",
        gateway_probe={"min_remaining_budget": 1},
    )
    assert_fails(cases[BUDGET], reason, "gateway GET /key/info", answer, "(DATABASE_URL)")
    litellm_says = "Database not connected." if token == MASTER_KEY else "No connected db."
    assert litellm_says in cases[BUDGET].message
    assert token not in cases[BUDGET].message
    assert not pushed(pushgateway, "synthetic_gen_ai_budget_remaining_usd")


def test_litellm_answers_carry_the_keys_spend_but_no_budget_without_a_database(gateway: Gateway) -> None:
    """Why the budget probe reads /key/info rather than each answer's headers: LiteLLM sends
    ``x-litellm-key-spend`` and ``x-litellm-key-max-budget`` from the key's row
    (``get_custom_headers`` in litellm/proxy/common_request_processing.py), and the master key
    has no row: no budget and no reset time, and a spend that is only this answer's cost."""
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "sonnet", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        timeout=30,
        trust_env=False,
    )
    response.raise_for_status()
    cost = float(response.headers["x-litellm-response-cost"])
    assert cost > 0
    assert float(response.headers["x-litellm-key-spend"]) == pytest.approx(cost)
    assert "x-litellm-key-max-budget" not in response.headers


def tool_probes(pytester: pytest.Pytester, pushgateway: str, gateway: Gateway, model: str) -> Run:
    probes = tuple(f"probes/test_gateway.py::{probe.split('::')[1]}" for probe in (TOOL, MESSAGES_TOOL))
    return run_gateway(
        pytester,
        pushgateway,
        gateway.url,
        model,
        probes=probes,
        gateway_probe={**LLM_APIS, "tool_use": True},
    )


def test_tool_use_round_trip_in_both_apis(
    pytester: pytest.Pytester, pushgateway: str, gateway: Gateway
) -> None:
    """A tool call and its result through LiteLLM, both ways: OpenAI ``tool_calls`` and the
    Anthropic ``tool_use`` / ``tool_result`` blocks LiteLLM translates them to."""
    cases = tool_probes(pytester, pushgateway, gateway, "sonnet")
    assert cases[TOOL].outcome == cases[MESSAGES_TOOL].outcome == "passed", cases
    # Both steps of both round trips are answers with a cost.
    cost = pushed(pushgateway, "synthetic_gen_ai_probe_cost_usd_total", model="sonnet")
    assert {dict(labels)["api"] for labels in cost} == {"chat", "messages"}


def test_tool_use_failures_name_the_step(
    pytester: pytest.Pytester, pushgateway: str, gateway: Gateway
) -> None:
    plain = tool_probes(pytester, pushgateway, gateway, "claude-sonnet-4")
    assert_fails(plain[TOOL], "assertion", "claude-sonnet-4 answered without calling the lookup_word tool")
    assert_fails(plain[MESSAGES_TOOL], "assertion", "answered without a tool_use block (content: text")
    bad = tool_probes(pytester, pushgateway, gateway, "bad-tool-args")
    assert_fails(bad[TOOL], "assertion", "with arguments that are not a JSON object: {word: pong")
    # Translating such a call to a tool_use block, LiteLLM fails the request itself.
    assert_fails(bad[MESSAGES_TOOL], "upstream", "returned 500", "Arguments: {word: pong")
    loop = tool_probes(pytester, pushgateway, gateway, "tool-loop")
    assert_fails(loop[TOOL], "assertion", "answered the tool's result without text", "1 more tool call(s)")
    # LiteLLM's mock ends the turn with its tool calls: not what a coding client waits for.
    assert_fails(loop[MESSAGES_TOOL], "assertion", "sent a tool_use block with stop_reason 'end_turn'")


# --- a throttled gateway, a cold health cache, stalls, and what the probes spend --------------

HEALTH_ONLY = "probes/test_gateway.py::test_gateway_model_healthy"
#: LiteLLM's own /health retries a throttled deployment after its Retry-After (40 s here): the
#: probes' health budget ends that wait long before.
SHORT_HEALTH = {"health_timeout": "1s"}


def test_a_throttled_group_is_rate_limit_naming_the_deployment_and_retry_after(
    pytester: pytest.Pytester, pushgateway: str, gateway: Gateway
) -> None:
    cases = run_gateway(
        pytester, pushgateway, gateway.url, "down429", probes=HEALTH_ONLY, gateway_probe=SHORT_HEALTH
    )
    assert_fails(
        cases[health("down429")],
        "rate_limit",
        "gateway GET /health?model=down429: no verdict within the 1000 ms health_timeout; asked each "
        "deployment once without retries: model group down429 down, 1 of 1 deployment(s) unhealthy: "
        "down429 (openai/throttled, model_id ",
        f": 429, Retry-After {RETRY_AFTER} s: litellm.RateLimitError: ",
        "Rate limit reached for requests",
    )
    assert deployment_health(pushgateway, "down429") == {"openai/throttled": 0}


def test_one_throttled_deployment_of_two_is_degraded_pushed_and_named(
    pytester: pytest.Pytester, pushgateway: str, gateway: Gateway
) -> None:
    cases = run_gateway(
        pytester, pushgateway, gateway.url, "mixed", probes=HEALTH_ONLY, gateway_probe=SHORT_HEALTH
    )
    case = cases[health("mixed")]
    assert case.outcome == "passed", "degraded passes in pytest"
    assert (
        "model group mixed degraded, 1 of 2 deployment(s) unhealthy: mixed (openai/throttled, model_id "
        in case.degraded
    )
    assert f": 429, Retry-After {RETRY_AFTER} s: litellm.RateLimitError: " in case.degraded
    assert deployment_health(pushgateway, "mixed") == {"openai/steady": 1, "openai/throttled": 0}


class HeldUpstream(Upstream):
    """The upstream, holding every request until :attr:`released` (at most :data:`HOLD`): a
    proxy's first background health check never finishes while a test runs."""

    released = threading.Event()

    def do_POST(self) -> None:
        self.released.wait(HOLD)
        super().do_POST()


HOLD = 120.0


def test_an_empty_health_cache_after_a_restart_is_said_and_not_a_failure(
    pytester: pytest.Pytester, pushgateway: str
) -> None:
    """With background health checks, LiteLLM answers ``/health`` from a cache its first check
    has not filled yet: 503 with no deployment at all, which is no verdict on the group."""
    require_litellm()
    with loopback_server(HeldUpstream) as held:
        models = [mock_model("cold", "openai/steady", api_base=f"{url_of(held)}/v1", mock_response=None)]
        config = proxy_config(models)
        config["general_settings"].update({"background_health_checks": True, "health_check_interval": 3600})
        try:
            with LiteLLMProxy(config, env={"HEALTH_CHECK_TIMEOUT_SECONDS": str(int(HOLD))}) as proxy:
                cases = run_gateway(pytester, pushgateway, proxy.url, "cold", probes=HEALTH_ONLY)
        finally:
            HeldUpstream.released.set()
    case = cases[health("cold")]
    assert case.outcome == "skipped", case
    assert "LiteLLM's health cache is still empty (its background health checks have not finished" in (
        case.message
    )
    assert "no verdict on model group cold yet" in case.message


def test_a_stall_past_the_gap_budget_fails_naming_it(
    pytester: pytest.Pytester, pushgateway: str, gateway: Gateway
) -> None:
    """The upstream pauses STALL after its second token; a gap budget under it fails both
    streams, naming the budget and counting the tokens that came."""
    settings = {**LLM_APIS, "models": [{"name": "stall", "max_token_gap": "300ms"}]}
    cases = run_gateway(
        pytester,
        pushgateway,
        gateway.url,
        "stall",
        probes=tuple(
            f"probes/test_gateway.py::{probe.split('::')[1]}" for probe in (STREAM, MESSAGES_STREAM)
        ),
        gateway_probe=settings,
    )
    for probe in (STREAM, MESSAGES_STREAM):
        assert_fails(
            cases[probe],
            "timeout",
            "model=stall stream timed out after ",
            " waiting for the next token (300 ms max_token_gap, token 2 came at ",
            ": saw 2 content token(s), ",
        )
        assert "deadline for the whole exchange" not in cases[probe].message


def test_a_json_answer_to_a_stream_request_says_so(
    pytester: pytest.Pytester, pushgateway: str, gateway: Gateway
) -> None:
    """LiteLLM's mock answers a streaming ``/v1/messages`` request with one JSON body."""
    cases = run_gateway(
        pytester,
        pushgateway,
        gateway.url,
        "claude-sonnet-4",
        probes=f"probes/test_gateway.py::{MESSAGES_STREAM.split('::')[1]}",
        gateway_probe=LLM_APIS,
    )
    assert_fails(cases[MESSAGES_STREAM], "stream", "asked for a stream, got application/json")


def test_the_spend_guard_shows_the_estimate_and_refuses_over_its_ceiling(
    pytester: pytest.Pytester, pushgateway: str, gateway: Gateway
) -> None:
    """One chat answer from sonnet costs 9.6e-05 (7 and 5 tokens at its prices): that is one
    run's estimate after it, and a ceiling under it keeps the LLM probes from starting."""
    chat = f"probes/test_gateway.py::{CHAT.split('::')[1]}"
    first = run_gateway(pytester, pushgateway, gateway.url, "sonnet", probes=chat)
    assert first[CHAT].outcome == "passed"
    assert "slo: LLM probe spend about $0.000000 a run (x-litellm-response-cost so far), no max_run_cost" in (
        first.output.splitlines()
    )
    guarded = run_gateway(
        pytester, pushgateway, gateway.url, "sonnet", probes=chat, gateway_probe={"max_run_cost": 0.00005}
    )
    refusal = (
        "probe spend guard: one run is estimated at $0.000096, over probes.gateway.max_run_cost $0.000050: "
        "LLM probes not started"
    )
    header = guarded.output.splitlines()
    assert (
        "slo: LLM probe spend about $0.000096 a run (x-litellm-response-cost so far), "
        "probes.gateway.max_run_cost $0.000050"
    ) in header
    assert any(line.startswith(f"slo: {refusal}") for line in header)
    assert guarded[CHAT].outcome == "skipped"
    assert refusal in guarded[CHAT].message
