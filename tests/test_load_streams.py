"""Streamed answers in the load gate, without Locust: the reader's rules, the exact recording of
first token and tokens/s, their verdicts (a rate is judged on the opposite bound), the summary,
the table and the pushed metrics."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import generate_latest

from slo import stats
from slo.config.load import LoadSettings
from slo.loadgate import summary
from slo.loadgate.push import load_families
from slo.loadgate.samples import CpuUsage, EndpointRecord, RunResults, StreamSample
from slo.loadgate.stream import ChatStream, TokenTiming, problem, read_chat_stream, sample
from slo.loadgate.verdict import Evaluation, evaluate, measure, planned_thresholds
from slo.report.families import as_registry

CHAT = "POST /v1/chat/completions"
HEALTH = "GET /health"


def chunk(content: str | None = None, **fields: Any) -> str:
    choices = [] if content is None else [{"index": 0, "delta": {"content": content}}]
    return "data: " + json.dumps({"object": "chat.completion.chunk", "choices": choices, **fields})


def read(*lines: str) -> ChatStream:
    stream = ChatStream(TokenTiming(started=0.0))
    read_chat_stream(lines, stream)
    return stream


# --- reading a stream --------------------------------------------------------------------------


def test_a_whole_stream_is_an_answer_timed_by_its_usage() -> None:
    stream = read(
        ": keep-alive",
        chunk("po"),
        "",
        chunk("ng"),
        chunk(None, usage={"prompt_tokens": 7, "completion_tokens": 9}),
        "data: [DONE]",
    )
    assert problem(stream) is None
    assert (len(stream.timing.arrivals), stream.output_tokens) == (2, 9)
    kept = sample(stream)
    assert kept.tokens_from_usage
    assert kept.first_token_ms is not None
    assert kept.first_token_ms > 0
    assert kept.tokens_per_second is not None
    assert kept.tokens_per_second > 0


def test_without_usage_the_content_deltas_are_counted() -> None:
    stream = read(chunk("po"), chunk("ng"), chunk(" pong"), "data: [DONE]")
    stream.timing.arrivals[:] = [1.0, 1.1, 1.2]
    stream.timing.ended = 1.2
    kept = sample(stream)
    assert not kept.tokens_from_usage
    # Two tokens after the first, in 0.2 s: the decode speed, the first token's wait left out.
    assert kept.tokens_per_second == pytest.approx(10.0)
    assert kept.first_token_ms == pytest.approx(1000.0)


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            [chunk("po"), 'data: {"error": {"message": "litellm.APIConnectionError: cut\\nTraceback"}}'],
            "stream failed after 1 chunk(s) with an error event: litellm.APIConnectionError: cut",
        ),
        ([chunk("po"), chunk("ng")], "stream ended after 2 chunk(s) without [DONE]"),
        ([chunk(None), chunk(""), "data: [DONE]"], "stream ended after 2 chunk(s) without any content"),
        ([chunk("po"), "data: {not json"], "streamed a malformed chunk after 1 chunk(s): {not json"),
        (["data: [1, 2]"], "streamed a malformed chunk after 0 chunk(s): [1, 2]"),
        (['{"choices": []}', "<html>"], 'returned a malformed event stream: {"choices": []} <html>'),
    ],
)
def test_a_broken_stream_is_a_failed_request(lines: list[str], expected: str) -> None:
    stream = read(*lines)
    assert problem(stream) == expected
    # No rate from a stream that did not end well; its first token, if any, still counts.
    assert sample(stream).tokens_per_second is None
    assert (sample(stream).first_token_ms is not None) == bool(stream.timing.arrivals)


# --- recording ---------------------------------------------------------------------------------


def streamed(first_token_ms: list[float], rates: list[float | None], usage: bool = True) -> EndpointRecord:
    record = EndpointRecord("POST", "/v1/chat/completions")
    for first, rate in zip(first_token_ms, rates, strict=True):
        record.record(first + 100.0, failed=False, stream=StreamSample(first, rate, usage))
    return record


def test_an_endpoint_that_never_streams_carries_no_stream_histograms() -> None:
    record = EndpointRecord("GET", "/health")
    record.record(5.0, failed=False)
    assert record.first_token is None
    assert record.token_rate is None
    assert "first_token" not in record.to_json()
    assert measure(record, 0.95).streams == 0


@given(
    firsts=st.lists(st.floats(min_value=0, max_value=60_000), min_size=1, max_size=200),
    parts=st.integers(min_value=1, max_value=4),
    seed=st.integers(0, 99),
)
def test_merging_workers_stream_histograms_equals_one_process(
    firsts: list[float], parts: int, seed: int
) -> None:
    rates: list[float | None] = [None if i % 7 == 0 else 5 + (i * 37) % 400 for i in range(len(firsts))]
    pairs = random.Random(seed).sample(list(zip(firsts, rates, strict=True)), len(firsts))
    merged = EndpointRecord("POST", "/v1/chat/completions")
    for part in range(parts):
        shipped = pairs[part::parts]
        worker = streamed([p[0] for p in shipped], [p[1] for p in shipped], usage=part % 2 == 0)
        merged.merge(EndpointRecord.from_json(worker.to_json()))
    whole = measure(merged, 0.95)
    assert whole == measure(EndpointRecord.from_json(merged.to_json()), 0.95)
    assert whole.streams == len(firsts)
    assert (
        whole.rate_samples
        == whole.tokens_from_usage + whole.tokens_counted
        == sum(r is not None for r in rates)
    )


@given(rates=st.lists(st.floats(min_value=0.01, max_value=100_000), min_size=1, max_size=300))
def test_rate_percentiles_never_overstate_the_speed(rates: list[float]) -> None:
    figures = measure(streamed([10.0] * len(rates), list(rates)), 0.95).token_rate["tokens_per_second_p50"]
    ordered = sorted(rates)
    exact = stats.percentile(ordered, 0.5)
    # Read at the bottom of its bucket: at most the true value, within 0.1 % (or 0.001 tokens/s).
    assert exact - max(0.001, 0.001 * exact) <= figures.value <= exact + 0.0005
    lower = stats.percentile_lower_bound(len(ordered), 0.5, 0.95)
    if lower is not None:
        assert figures.lower is not None
        assert figures.lower <= ordered[lower - 1] + 0.0005


# --- verdicts ----------------------------------------------------------------------------------


def run(records: dict[str, EndpointRecord]) -> RunResults:
    return RunResults(
        started=1_700_000_000.0,
        measured_from=1_700_000_002.0,
        measured_to=1_700_000_032.0,
        users=10,
        workers=0,
        endpoints=records,
        cpu=[CpuUsage("locust", 3.0, 30.0)],
    )


def judge(records: dict[str, EndpointRecord], **chat: Any) -> Evaluation:
    return evaluate(run(records), LoadSettings.model_validate({"endpoints": {CHAT: chat}}))


def row(evaluation: Evaluation, metric: str, endpoint: str = CHAT) -> Any:
    return next(result for result in evaluation.thresholds if result.name == f"{endpoint} {metric}")


def test_a_token_rate_passes_only_on_its_lower_bound() -> None:
    # 100 answers from 18 to 117 tokens/s: the median (67) is well over a minimum of 20.
    record = streamed([50.0] * 100, [18.0 + i for i in range(100)])
    result = row(judge({CHAT: record}, tokens_per_second_p50=20), "tokens_per_second_p50")
    assert result.verdict == "pass"
    assert result.unit == "tokens/s"
    assert result.bound == result.lower_bound
    assert 20 <= result.lower_bound <= result.observed <= result.upper_bound
    assert result.reason.startswith("tokens/s P50 at least ")


def test_a_token_rate_fails_when_its_upper_bound_is_under_the_minimum() -> None:
    record = streamed([50.0] * 100, [5.0 + (i % 10) for i in range(100)])
    result = row(judge({CHAT: record}, tokens_per_second_p50=20), "tokens_per_second_p50")
    assert result.verdict == "fail"
    assert result.bound == result.upper_bound < 20
    assert "under the 20.0 tokens/s minimum" in result.reason


def test_a_token_rate_around_the_minimum_is_inconclusive() -> None:
    record = streamed([50.0] * 100, [10.0 + i * 0.2 for i in range(100)])  # median near 20
    result = row(judge({CHAT: record}, tokens_per_second_p50=20), "tokens_per_second_p50")
    assert result.verdict == "inconclusive"
    assert result.lower_bound < 20 < result.upper_bound
    assert "the 20.0 tokens/s minimum is inside" in result.reason


def test_a_p5_rate_claim_needs_59_answers() -> None:
    # Fast answers, but 30 cannot bound the slowest 5 % from below at 95 % confidence.
    result = row(
        judge({CHAT: streamed([50.0] * 30, [500.0] * 30)}, tokens_per_second_p5=20, min_requests=1),
        "tokens_per_second_p5",
    )
    assert result.verdict == "inconclusive"
    assert result.reason == (
        "30 streamed answers cannot bound tokens/s P5 from below at 95 % confidence: 59 needed"
    )


def test_a_late_first_token_fails_on_its_lower_bound_even_with_few_answers() -> None:
    evaluation = judge({CHAT: streamed([2600.0] * 12, [30.0] * 12)}, ttft_p95="2s")
    result = row(evaluation, "ttft_p95")
    assert result.verdict == "fail"
    assert result.bound == result.lower_bound > 2000
    assert result.reason.startswith("first-token P95 at least 2")
    # Too few answers for a pass would be inconclusive, never pass.
    few = row(judge({CHAT: streamed([100.0] * 12, [30.0] * 12)}, ttft_p95="2s"), "ttft_p95")
    assert few.verdict == "inconclusive"
    assert few.reason == "only 12 streamed answers measured, fewer than min_requests (59)"


def test_stream_thresholds_on_an_endpoint_that_never_streamed_fail_and_say_why() -> None:
    plain = EndpointRecord("POST", "/v1/chat/completions")
    for _ in range(100):
        plain.record(300.0, failed=False)  # the non-streaming chat_completion scenario
    evaluation = judge({CHAT: plain}, ttft_p95="2s", tokens_per_second_p50=20)
    ttft, rate = row(evaluation, "ttft_p95"), row(evaluation, "tokens_per_second_p50")
    assert ttft.verdict == rate.verdict == evaluation.verdict == "fail"
    assert ttft.observed is None
    assert rate.observed is None
    assert ttft.reason.startswith("no streamed answer delivered a first token")
    assert "(100 requests measured): no samples never pass" in ttft.reason
    assert rate.reason.startswith("no streamed answer ended with two or more output tokens")


def test_stream_thresholds_of_an_empty_run_fail() -> None:
    evaluation = judge({}, ttft_p95="2s", tokens_per_second_p5=5)
    for metric in ("ttft_p95", "tokens_per_second_p5"):
        result = row(evaluation, metric)
        assert result.verdict == "fail"
        assert result.reason.startswith("no requests were measured")


def test_planned_stream_thresholds_are_the_judged_ones() -> None:
    load = LoadSettings.model_validate(
        {"endpoints": {CHAT: {"ttft_p50": "1s", "ttft_p99": "5s", "tokens_per_second_p5": 5}}}
    )
    evaluation = evaluate(run({CHAT: streamed([50.0] * 100, [30.0] * 100)}), load)
    judged = [(result.name, result.endpoint, result.metric) for result in evaluation.thresholds]
    assert planned_thresholds(load) == judged
    assert [metric for _, endpoint, metric in judged if endpoint == CHAT][-3:] == [
        "ttft_p50",
        "ttft_p99",
        "tokens_per_second_p5",
    ]


# --- summary, table, push ----------------------------------------------------------------------


def report(tmp_path: Path) -> dict[str, Any]:
    health = EndpointRecord("GET", "/health")
    for _ in range(100):
        health.record(5.0, failed=False)
    chat = streamed([1950.0] * 80, [40.0] * 60 + [None] * 20)
    settings = LoadSettings.model_validate(
        {"endpoints": {CHAT: {"ttft_p95": "2s", "tokens_per_second_p50": 20}}}
    )
    results = run({HEALTH: health, CHAT: chat})
    info = summary.RunInfo("staging", Path("monitoring.yaml"), settings, 0, tmp_path)
    return summary.summary(evaluate(results, settings), results, info)


def test_the_summary_shows_stream_figures_with_bounds(tmp_path: Path) -> None:
    data = report(tmp_path)
    assert data["endpoints"][HEALTH]["stream"] is None
    stream = data["endpoints"][CHAT]["stream"]
    assert (stream["answers"], stream["rate_samples"]) == (80, 60)
    assert 1950.0 <= stream["ttft_p95_ms"] < 1951.0
    assert stream["ttft_p95_lower_ms"] <= stream["ttft_p95_ms"] <= stream["ttft_p95_upper_ms"]
    assert 39.9 < stream["tokens_per_second_p50"] <= 40.0
    assert stream["output_tokens_from"] == {"usage": 60, "counted_deltas": 0}
    rate = next(row for row in data["thresholds"] if row["metric"] == "tokens_per_second_p50")
    assert (rate["unit"], rate["verdict"]) == ("tokens/s", "pass")
    assert rate["bound"] == rate["lower_bound"]


def test_the_table_shows_the_stream_bounds_in_their_direction(tmp_path: Path) -> None:
    text = summary.render(report(tmp_path))
    assert "POST /v1/chat/completions tokens_per_second_p50" in text
    assert ">= 40.0 tok/s" in text  # a rate's pass: at least its lower bound
    assert "<= 1950.7 ms" in text  # a first token's pass: at most its upper bound
    assert "ttft p95" in text
    assert "usage 60, counted 0" in text


def test_the_push_carries_first_token_and_rate_percentiles(tmp_path: Path) -> None:
    text = generate_latest(as_registry(load_families(report(tmp_path), 1_700_000_100.0))).decode()
    chat = 'endpoint="POST /v1/chat/completions"'
    assert f'synthetic_load_time_to_first_token_seconds{{{chat},quantile="0.95"}} 1.95' in text
    assert f'synthetic_load_time_to_first_token_bound_seconds{{bound="lower",{chat}' in text
    assert f'synthetic_load_output_tokens_per_second{{{chat},quantile="0.05"}} 40.0' in text
    assert f'synthetic_load_output_tokens_per_second_bound{{bound="upper",{chat},quantile="0.5"}}' in text
    assert 'threshold="POST /v1/chat/completions ttft_p95",verdict="pass"} 1.0' in text
    assert 'synthetic_load_time_to_first_token_seconds{endpoint="GET /health"' not in text
