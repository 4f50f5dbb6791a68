"""The LLM-shaped load gate against a real LiteLLM proxy: `slo load` with the `chat_stream` scenario.

One proxy serves every case, each a model group: ``steady`` streams token by token from a
loopback upstream (20 ms apart, with usage), ``slow`` is LiteLLM's own mock with `mock_delay`
(which, on the proxy's async path, sleeps before the answer starts: it holds back the first
token), ``cut-stream`` sends one chunk and dies, which LiteLLM turns into an error event
inside its 200. Runs are a few seconds each; the verdict logic is covered fast in
test_load_verdict.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hostile import HostileServer
from litellm_proxy import MASTER_KEY, CutStream, LiteLLMProxy, mock_model, proxy_config, require_litellm
from llm_upstream import Upstream
from loopback import loopback_server, url_of

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CHAT = "POST /v1/chat/completions"
#: LiteLLM's mock holds the first token back this long.
MOCK_DELAY = 2.5

#: Light and short: the proxy shares two cores with the tests beside it.
LOAD = {
    "users": 4,
    "spawn_rate": 50,
    "warmup": "500ms",
    "duration": "6s",
    "think_time_min": "20ms",
    "think_time_max": "40ms",
    "scenarios": {"chat_stream": 1},
    # The proxy's own speed on a busy CI machine is not what is judged here.
    "total": {"p95": "10s", "min_requests": 20},
}


@dataclass(frozen=True)
class Outcome:
    status: int
    output: str
    summary: dict[str, Any]

    def threshold(self, name: str) -> dict[str, Any]:
        return next(row for row in self.summary["thresholds"] if row["name"] == name)

    @property
    def chat(self) -> dict[str, Any]:
        figures: dict[str, Any] = self.summary["endpoints"][CHAT]
        return figures


@pytest.fixture(scope="module")
def gateway() -> Iterator[str]:
    require_litellm()
    with loopback_server(Upstream) as upstream, loopback_server(CutStream) as cut:
        models = [
            mock_model("steady", "openai/steady", api_base=f"{url_of(upstream)}/v1", mock_response=None),
            mock_model("slow", mock_response="a slow first token from the mock", mock_delay=MOCK_DELAY),
            mock_model("cut-stream", "openai/cut", api_base=f"{url_of(cut)}/v1", mock_response=None),
        ]
        with LiteLLMProxy(proxy_config(models)) as proxy:
            # The first streamed answer after startup loads code paths: served here, outside
            # any measured run.
            warm_up = {"model": "steady", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
            for stream in (False, True):
                httpx.post(
                    f"{proxy.url}/v1/chat/completions",
                    json={**warm_up, "stream": stream},
                    headers={"Authorization": f"Bearer {MASTER_KEY}"},
                    timeout=60,
                    trust_env=False,
                ).raise_for_status()
            yield proxy.url


def slo_load(
    tmp_path: Path, url: str, model: str, chat: dict[str, Any], *args: str, **load_settings: Any
) -> Outcome:
    target = {"url": url, "token": MASTER_KEY, "timeout": "10s", "model": model}
    load = {**LOAD, "endpoints": {CHAT: {"min_requests": 20, "p95": "10s", **chat}}, **load_settings}
    config = tmp_path / "monitoring.yaml"
    config.write_text(json.dumps({"environments": {"local": {"targets": {"gateway": target}}}, "load": load}))
    reports = tmp_path / "reports"
    command = [sys.executable, "-m", "slo", "load", "--config", str(config), "--report-dir", str(reports)]
    command += ["--locustfile", str(ROOT / "load" / "locustfile.py"), "--no-push", *args]
    env = {k: v for k, v in os.environ.items() if k not in {"PUSHGATEWAY_URL", "SLO_CONFIG", "SLO_ENV"}}
    result = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False, env=env)
    summary = json.loads((reports / "summary.json").read_text())
    return Outcome(result.returncode, result.stdout + result.stderr, summary)


def test_a_healthy_model_passes_on_exact_first_token_percentiles(tmp_path: Path, gateway: str) -> None:
    outcome = slo_load(
        tmp_path, gateway, "steady", {"ttft_p50": "1s", "ttft_p95": "2s", "tokens_per_second_p50": 10}
    )
    assert outcome.status == 0, outcome.output
    stream = outcome.chat["stream"]
    # Every measured request was a whole streamed answer, timed from its usage chunk.
    assert stream["answers"] == stream["rate_samples"] == outcome.chat["requests"]
    assert stream["output_tokens_from"] == {"usage": stream["answers"], "counted_deltas": 0}
    assert outcome.chat["requests"] == outcome.chat["locust"]["requests"]
    ttft = outcome.threshold(f"{CHAT} ttft_p95")
    assert ttft["verdict"] == "pass"
    assert ttft["unit"] == "ms"
    assert ttft["lower_bound"] <= ttft["observed"] <= ttft["bound"] == ttft["upper_bound"] <= 2000
    assert stream["ttft_p95_ms"] == ttft["observed"]
    # The first token comes before the end: five tokens 20 ms apart come after it.
    assert stream["ttft_p50_ms"] + 4 * 20 <= outcome.chat["p50_ms"]
    rate = outcome.threshold(f"{CHAT} tokens_per_second_p50")
    assert rate["verdict"] == "pass"
    assert rate["bound"] == rate["lower_bound"] >= 10
    assert "ttft p95" in outcome.output
    assert "usage " in outcome.output


def test_a_slow_first_token_fails_ttft_on_its_lower_bound(tmp_path: Path, gateway: str) -> None:
    outcome = slo_load(tmp_path, gateway, "slow", {"ttft_p95": "2s"})
    assert outcome.status == 1, outcome.output
    ttft = outcome.threshold(f"{CHAT} ttft_p95")
    assert ttft["verdict"] == "fail", ttft
    # Proven, not guessed: even the lower bound of the P95 is beyond the limit.
    assert ttft["bound"] == ttft["lower_bound"] > 2000
    assert ttft["observed"] >= 1000 * MOCK_DELAY
    assert "first-token P95 at least" in ttft["reason"]
    assert outcome.chat["failures"] == 0, "a late answer is still an answer"


def test_an_error_event_mid_stream_fails_the_request(tmp_path: Path, gateway: str) -> None:
    outcome = slo_load(tmp_path, gateway, "cut-stream", {"ttft_p95": "2s", "tokens_per_second_p50": 10})
    assert outcome.status == 1, outcome.output
    chat = outcome.chat
    assert chat["requests"] > 0
    assert chat["failures"] == chat["requests"]
    [error] = outcome.summary["errors"]
    event = "stream failed after 1 chunk(s) with an error event: litellm.APIConnectionError"
    assert event in error["message"]
    assert outcome.threshold(f"{CHAT} error_rate")["verdict"] == "fail"
    # Its first token did arrive, and is measured; no answer ended, so there is no rate to judge.
    assert chat["stream"]["answers"] == chat["requests"]
    rate = outcome.threshold(f"{CHAT} tokens_per_second_p50")
    assert rate["verdict"] == "fail"
    assert rate["observed"] is None
    assert "no streamed answer ended with two or more output tokens" in rate["reason"]


def test_two_workers_merge_every_streamed_answer_exactly(tmp_path: Path, gateway: str) -> None:
    # A minimum no model reaches here (1000 tokens/s): the rate fails on its upper bound.
    # No warm-up: Locust's master resets its own statistics when it ends, which a worker's
    # report still on its way can straddle; the exact comparison needs no reset.
    outcome = slo_load(
        tmp_path,
        gateway,
        "steady",
        {"ttft_p95": "2s", "tokens_per_second_p50": 1000},
        "--workers",
        "2",
        warmup="0s",
    )
    assert outcome.status == 1, outcome.output
    assert outcome.summary["workers"] == 2
    chat = outcome.chat
    # Locust's master counts its workers' requests on its own: the exact histograms, shipped
    # from each worker and merged, hold every one of them.
    assert chat["requests"] == chat["locust"]["requests"] > 0
    # Every stream that ended well gives a rate. One the proxy cut after its first token (seen
    # at load 10: 83 first tokens, 81 rates) is a failed request with a first token and no
    # rate, so the counts are ordered and exact, not all equal.
    stream = chat["stream"]
    assert stream["rate_samples"] == chat["requests"] - chat["failures"], outcome.output
    assert stream["rate_samples"] <= stream["answers"] <= chat["requests"]
    assert outcome.threshold(f"{CHAT} ttft_p95")["verdict"] == "pass"
    rate = outcome.threshold(f"{CHAT} tokens_per_second_p50")
    assert rate["verdict"] == "fail", rate
    assert rate["bound"] == rate["upper_bound"] < 1000
    assert "tokens/s P50 at most" in rate["reason"]


@pytest.mark.parametrize(
    ("behaviour", "failure"),
    [
        # Keep-alive comments for ever: each wait for a byte is short, the stream never ends.
        (
            "/keepalive-stream",
            "stream cut after 0 chunk(s), before [DONE]: no end within stream_timeout 1000 ms",
        ),
        # Bytes without a newline, as fast as loopback goes: never buffered beyond the line cap.
        (
            "/endless",
            "stream cut after 0 chunk(s), before [DONE]: response body over the 1 MiB cap "
            "(max_response_bytes)",
        ),
    ],
)
def test_a_stream_that_never_ends_fails_within_its_bounds(
    tmp_path: Path, behaviour: str, failure: str
) -> None:
    with HostileServer(default=behaviour) as server:
        outcome = slo_load(
            tmp_path, server.url, "any", {"ttft_p95": "2s"}, duration="2s", stream_timeout="1s"
        )
    assert outcome.status == 1, outcome.output
    chat = outcome.chat
    assert chat["requests"] > 0
    assert chat["failures"] == chat["requests"]
    assert [error["message"] for error in outcome.summary["errors"]] == [failure]
    assert chat["stream"] is None  # no first token: nothing to time
    assert outcome.threshold(f"{CHAT} ttft_p95")["reason"].startswith("no streamed answer delivered")
