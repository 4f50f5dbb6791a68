"""The verdict, summary.json and the pushed metrics, from synthetic runs (no Locust)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from loopback import capture_server
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from devstack.daemons import Pushgateway
from slo.config import PushgatewaySettings
from slo.config.load import LoadSettings
from slo.loadgate import summary
from slo.loadgate.push import load_families, push_summary
from slo.loadgate.samples import (
    CpuUsage,
    EndpointRecord,
    LocustFigures,
    ResultsError,
    RunResults,
)
from slo.loadgate.verdict import Evaluation, evaluate, planned_thresholds
from slo.report.families import as_registry

HEALTH = "GET /health"
CHAT = "POST /v1/chat/completions"


def run(
    endpoints: dict[str, tuple[list[float], int]] | None = None,
    cpu: list[CpuUsage] | None = None,
    workers: int = 0,
) -> RunResults:
    """A run's results: per endpoint, its response times (ms) and how many of them failed."""
    records = {}
    for key, (latencies, failures) in (endpoints or {}).items():
        method, name = key.split(" ", 1)
        record = records[key] = EndpointRecord(method, name)
        for index, latency in enumerate(latencies):
            record.record(latency, failed=index < failures)
    return RunResults(
        started=1_700_000_000.0,
        measured_from=1_700_000_002.0,
        measured_to=1_700_000_032.0,
        users=10,
        workers=workers,
        endpoints=records,
        cpu=cpu or [CpuUsage("locust", 3.0, 30.0)],
    )


def settings(**load: Any) -> LoadSettings:
    return LoadSettings.model_validate(load)


def rows(evaluation: Evaluation) -> dict[str, str]:
    return {result.name: result.verdict for result in evaluation.thresholds}


def spread(n: int, low: float, high: float) -> list[float]:
    return [low + (high - low) * i / max(1, n - 1) for i in range(n)]


# --- verdicts ----------------------------------------------------------------------------------


def test_a_healthy_run_passes() -> None:
    evaluation = evaluate(run({HEALTH: (spread(500, 5, 80), 0)}), settings())
    assert rows(evaluation) == {
        "total requests": "pass",
        "total error_rate": "pass",
        "total p95": "pass",
    }
    assert evaluation.verdict == "pass"


def test_zero_requests_fail_never_pass() -> None:
    evaluation = evaluate(run({}), settings())
    assert evaluation.verdict == "fail"
    assert set(rows(evaluation).values()) == {"fail"}
    assert "no requests" in evaluation.thresholds[0].reason


def test_ten_requests_are_inconclusive() -> None:
    evaluation = evaluate(run({HEALTH: ([3.0] * 10, 0)}), settings())
    assert evaluation.verdict == "inconclusive"
    assert set(rows(evaluation).values()) == {"inconclusive"}
    assert "only 10 requests" in evaluation.thresholds[0].reason


def test_a_p95_over_the_limit_fails_even_on_few_requests() -> None:
    # Evidence of a breach needs no minimum: 20 requests all at 2.5 s prove P95 > 2 s.
    evaluation = evaluate(run({HEALTH: ([2500.0] * 20, 0)}), settings())
    assert rows(evaluation)["total p95"] == "fail"
    p95 = evaluation.thresholds[-1]
    assert p95.bound is not None
    assert p95.bound > 2000
    assert "over the 2000.0 ms limit" in p95.reason


def test_1950_ms_passes_where_locust_would_say_2000() -> None:
    evaluation = evaluate(run({HEALTH: ([1950.0] * 100, 0)}), settings())
    assert evaluation.verdict == "pass"
    assert evaluation.endpoints["total"].percentiles["p95"].value < 1951


def test_a_p95_whose_interval_contains_the_limit_is_inconclusive() -> None:
    # 100 samples, 94 fast and 6 slow: the P95 sample is slow, the lower bound fast.
    evaluation = evaluate(run({HEALTH: ([10.0] * 94 + [2500.0] * 6, 0)}), settings())
    p95 = next(result for result in evaluation.thresholds if result.metric == "p95")
    assert p95.verdict == "inconclusive"
    assert "the 2000.0 ms limit is inside; run longer" in p95.reason


def test_a_p95_claim_needs_59_samples_whatever_min_requests_says() -> None:
    evaluation = evaluate(run({HEALTH: ([5.0] * 58, 0)}), settings(total={"min_requests": 10}))
    assert rows(evaluation)["total requests"] == "pass"
    p95 = next(result for result in evaluation.thresholds if result.metric == "p95")
    assert p95.verdict == "inconclusive"
    assert p95.upper_bound is None
    assert "58 requests cannot bound P95 from above at 95 % confidence: 59 needed" in p95.reason


def test_ten_percent_errors_fail_on_error_rate() -> None:
    evaluation = evaluate(run({HEALTH: ([5.0] * 1000, 100)}), settings())
    assert rows(evaluation) == {
        "total requests": "pass",
        "total error_rate": "fail",
        "total p95": "pass",
    }
    error = evaluation.thresholds[1]
    assert error.observed == pytest.approx(0.1)
    assert error.bound is not None
    assert 0.05 < error.bound < 0.1


def test_an_error_rate_near_the_limit_is_inconclusive() -> None:
    evaluation = evaluate(run({HEALTH: ([5.0] * 200, 12)}), settings())
    assert rows(evaluation)["total error_rate"] == "inconclusive"


def test_endpoint_thresholds_are_judged_on_that_endpoint_alone() -> None:
    # A P99 claim at 95 % confidence needs 299 samples.
    results = run({HEALTH: ([5.0] * 200, 0), CHAT: ([900.0] * 300, 0)})
    limits = {CHAT: {"p50": "500ms", "p95": None, "p99": "5s"}}
    evaluation = evaluate(results, settings(endpoints=limits))
    assert rows(evaluation) == {
        "total requests": "pass",
        "total error_rate": "pass",
        "total p95": "pass",
        f"{CHAT} requests": "pass",
        f"{CHAT} error_rate": "pass",
        f"{CHAT} p50": "fail",
        f"{CHAT} p99": "pass",
    }


def test_a_misspelt_endpoint_fails_and_names_what_was_measured() -> None:
    evaluation = evaluate(run({HEALTH: ([5.0] * 200, 0)}), settings(endpoints={"GET /helth": {"p95": "1s"}}))
    assert rows(evaluation)["GET /helth requests"] == "fail"
    assert evaluation.verdict == "fail"
    assert any("'GET /helth'" in warning and HEALTH in warning for warning in evaluation.warnings)


def test_cpu_saturation_is_stated_and_may_refuse_a_pass() -> None:
    busy = [CpuUsage("worker-1", 29.0, 30.0), CpuUsage("master", 1.0, 30.0)]
    results = run({HEALTH: ([5.0] * 500, 0)}, cpu=busy)
    warned = evaluate(results, settings())
    assert warned.verdict == "pass"
    assert warned.cpu_saturated
    assert "worker-1 used 97 % CPU" in warned.warnings[0]

    data = summary.summary(warned, results, summary.RunInfo("local", Path("m.yaml"), settings(), 0, Path()))
    assert data["reason"].endswith("(the load generator saturated its CPU: see warnings)")

    strict = evaluate(results, settings(cpu_saturation="inconclusive"))
    assert strict.verdict == "inconclusive"
    assert rows(strict)["load generator cpu_percent"] == "inconclusive"


def test_locust_own_cpu_warning_counts_as_saturation() -> None:
    results = run({HEALTH: ([5.0] * 500, 0)}, cpu=[CpuUsage("locust", 1.0, 30.0, True)])
    assert evaluate(results, settings()).cpu_saturated


@pytest.mark.parametrize(
    "load",
    [
        {},
        {"total": {"p50": "1s", "p99": "3s"}},
        {"endpoints": {HEALTH: {"p95": "1s"}, "GET /missing": {}}},
        {"cpu_saturation": "inconclusive"},
    ],
)
def test_planned_thresholds_are_exactly_the_judged_ones(load: dict[str, Any]) -> None:
    # The pytest wrapper creates its test cases from the plan before the run.
    evaluation = evaluate(run({HEALTH: ([5.0] * 100, 0)}), settings(**load))
    planned = [(name, endpoint, metric) for name, endpoint, metric in planned_thresholds(settings(**load))]
    judged = [(result.name, result.endpoint, result.metric) for result in evaluation.thresholds]
    assert planned == judged


# --- summary.json and the table ----------------------------------------------------------------


def info(tmp_path: Path, **load: Any) -> summary.RunInfo:
    return summary.RunInfo("staging", Path("monitoring.yaml"), settings(**load), 2, tmp_path)


def test_summary_follows_the_contract(tmp_path: Path) -> None:
    results = run({HEALTH: ([5.0] * 300, 3), CHAT: ([900.0] * 100, 0)}, workers=2)
    results.endpoints[HEALTH].locust = LocustFigures(300, 3, 5.0, 5.0, 5.0)
    data = summary.summary(evaluate(results, settings()), results, info(tmp_path, warmup="2s"))
    path = tmp_path / "summary.json"
    summary.write_summary(path, data)
    loaded = json.loads(path.read_text())
    assert list(tmp_path.iterdir()) == [path]
    assert loaded["verdict"] == "pass"
    assert loaded["schema"] == summary.SCHEMA
    assert loaded["started"] == "2023-11-14T22:13:20+00:00"
    assert loaded["duration_s"] == 30.0
    assert (loaded["users"], loaded["workers"], loaded["environment"]) == (10, 2, "staging")
    first = loaded["thresholds"][1]
    assert first["name"] == "total error_rate"
    assert set(first) >= {"name", "endpoint", "metric", "threshold", "observed", "bound", "verdict", "reason"}
    assert first["unit"] == "ratio"
    assert first["observed"] == pytest.approx(0.0075)
    health = loaded["endpoints"][HEALTH]
    assert (health["requests"], health["failures"]) == (300, 3)
    assert 5.0 <= health["p95_ms"] < 5.01
    assert health["p95_upper_ms"] >= health["p95_ms"] >= health["p95_lower_ms"]
    assert health["locust"]["p95_ms"] == 5.0
    assert loaded["endpoints"]["total"]["requests"] == 400
    assert loaded["load_generators"] == [{"process": "locust", "cpu_percent": 10.0}]


def test_summary_warns_when_the_warm_up_is_shorter_than_the_ramp_up(tmp_path: Path) -> None:
    results = run({HEALTH: ([5.0] * 300, 0)})
    data = summary.summary(
        evaluate(results, settings()), results, info(tmp_path, users=10, spawn_rate=2, warmup=0)
    )
    assert any("shorter than the ramp-up (5 s" in warning for warning in data["warnings"])


def test_a_run_without_results_fails_every_planned_threshold(tmp_path: Path) -> None:
    data = summary.failed_summary(info(tmp_path), "Locust exited with status 1")
    assert data["verdict"] == "fail"
    assert data["workers"] == 2  # as asked: none reported
    assert [row["name"] for row in data["thresholds"]] == [
        "total requests",
        "total error_rate",
        "total p95",
    ]
    assert {row["reason"] for row in data["thresholds"]} == {"Locust exited with status 1"}
    assert "FAIL" in summary.render(data)


def test_the_table_names_the_verdict_the_thresholds_and_the_reason(tmp_path: Path) -> None:
    results = run({HEALTH: ([5.0] * 1000, 100)}, workers=2)
    text = summary.render(summary.summary(evaluate(results, settings()), results, info(tmp_path)))
    assert text.startswith("slo load: FAIL  (staging: 10 users, 30.0 s measured")
    assert "master + 2 workers" in text
    assert ">= 8." in text  # the lower bound that proves the error-rate breach
    assert "fail: total error_rate: error rate at least" in text


# --- metrics -----------------------------------------------------------------------------------


def test_metrics_carry_the_verdict_and_exact_percentiles(tmp_path: Path) -> None:
    results = run({HEALTH: ([1950.0] * 100, 0)})
    data = summary.summary(evaluate(results, settings()), results, info(tmp_path))
    text = generate_latest(as_registry(load_families(data, 1_700_000_100.0))).decode()
    assert 'synthetic_load_verdict{verdict="pass"} 1.0' in text
    assert 'synthetic_load_verdict{verdict="fail"} 0.0' in text
    assert 'synthetic_load_threshold_verdict{threshold="total p95",verdict="pass"} 1.0' in text
    assert 'synthetic_load_latency_seconds{endpoint="GET /health",quantile="0.95"} 1.95' in text
    assert 'synthetic_load_requests_total{endpoint="total"} 100.0' in text
    assert 'synthetic_load_error_ratio{endpoint="total"} 0.0' in text
    assert "synthetic_load_last_run_timestamp_seconds 1.7000001e+09" in text


def test_the_push_goes_to_the_load_test_job(tmp_path: Path) -> None:
    results = run({HEALTH: ([5.0] * 100, 0)})
    data = summary.summary(evaluate(results, settings()), results, info(tmp_path))
    with capture_server(202) as pushgateway:
        push = PushgatewaySettings(url=pushgateway.url, instance="ci-runner")
        assert push_summary(data, push, 1_700_000_100.0).ok
    [received] = pushgateway.received
    assert received.method == "PUT"
    assert received.path == "/metrics/job/load-test/environment/staging/instance/ci-runner"
    # The same encoding as the probe push (slo.report.families), not prometheus_client's text.
    assert received.headers["Content-Type"].startswith("application/vnd.google.protobuf")


@pytest.mark.slow
def test_a_real_pushgateway_stores_the_load_run_as_its_text_exposition_says(tmp_path: Path) -> None:
    results = run({HEALTH: ([1950.0] * 100, 0)})
    data = summary.summary(evaluate(results, settings()), results, info(tmp_path))
    expected = {
        (sample.name, tuple(sorted(sample.labels.items())), sample.value)
        for family in text_string_to_metric_families(
            generate_latest(as_registry(load_families(data, 1_700_000_100.0))).decode()
        )
        for sample in family.samples
    }
    group = {"environment": "staging", "instance": "ci-runner", "job": "load-test"}
    with Pushgateway() as gateway:
        push = PushgatewaySettings(url=gateway.url, instance="ci-runner")
        assert push_summary(data, push, 1_700_000_100.0).ok
        stored = httpx.get(f"{gateway.url}/metrics", timeout=5.0, trust_env=False).text
    kept = {
        (sample.name, tuple(sorted((k, v) for k, v in sample.labels.items() if k not in group)), sample.value)
        for family in text_string_to_metric_families(stored)
        for sample in family.samples
        if sample.name.startswith("synthetic_load_")
        and all(sample.labels.get(k) == v for k, v in group.items())
    }
    assert ("synthetic_load_verdict", (("verdict", "pass"),), 1.0) in kept
    assert ("synthetic_load_requests_total", (("endpoint", "total"),), 100.0) in kept
    assert kept == expected


# --- the results file --------------------------------------------------------------------------


def test_results_round_trip_through_the_file(tmp_path: Path) -> None:
    results = run({HEALTH: ([5.0, 7.5, 2500.0], 1)}, workers=2)
    results.warnings.append("worker w1 sent no final report")
    path = tmp_path / "results.json"
    results.write(path)
    loaded = RunResults.read(path)
    assert loaded.endpoints[HEALTH].requests == 3
    assert loaded.endpoints[HEALTH].failures == 1
    assert loaded.warnings == ["worker w1 sent no final report"]
    assert evaluate(loaded, settings()).endpoints == evaluate(results, settings()).endpoints
    assert "worker w1 sent no final report" in evaluate(loaded, settings()).warnings


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no results (Locust did not finish the run)"),
        ("{not json", "unreadable results"),
        ('{"format": 99}', "results of another version"),
    ],
)
def test_unusable_results_are_one_clear_error(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "results.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ResultsError, match=re.escape(message)):
        RunResults.read(path)
