"""Probe values: recorded in a probe, folded across runs in the state file, pushed as metrics;
token timing from arrival times; the LLM SLIs and the probe-spend rule."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import yaml
from prometheus_client import generate_latest

from slo.config.objectives import SLO, ProbesSLI
from slo.evidence import Evidence
from slo.llmstream import ChatStream, MessagesStream, TokenTiming, read_chat_stream, read_messages_stream
from slo.objectives.rules.cli import main as rules_main
from slo.objectives.rules.genai import gen_ai_group
from slo.objectives.rules.generate import failing_probes
from slo.objectives.rules.promtool import run_tests
from slo.objectives.rules.sli import sli_query
from slo.probe.llm import timing_values, tool_call_problem, tool_use_problem
from slo.report import genai
from slo.report.families import as_registry
from slo.report.values import ValueFamilies, value_families

pytest_plugins = ["pytester"]


def evidence(*values: dict[str, Any]) -> Evidence:
    """Values as the controller decodes them from a probe's evidence."""
    return Evidence.decode(
        json.dumps({"values": [{**v, "labels": sorted(v["labels"].items())} for v in values]})
    )


def value(name: str, number: float, kind: str = "gauge", **labels: str) -> dict[str, Any]:
    return {"name": name, "value": number, "kind": kind, "labels": labels}


PROBES = {"p::t[m]": SimpleNamespace(target="gateway", slo="gateway-availability")}


def exposition(section: dict[str, Any]) -> str:
    return generate_latest(as_registry(value_families(section))).decode()


def run(document: dict[str, Any], *values: dict[str, Any], now: float = 1_000_000.0) -> dict[str, Any]:
    families = ValueFamilies()
    families.add(cast(pytest.TestReport, SimpleNamespace(nodeid="p::t[m]", when="call")), evidence(*values))
    return families.fold(document, "job=j", PROBES, now)


def test_gauges_replace_counters_add_and_histograms_accumulate_across_runs() -> None:
    document: dict[str, Any] = {"version": 1, "groups": {}}
    run(document, value("active_sessions", 3), value("cost_usd", 0.25, "counter", model="m"))
    run(document, value("active_sessions", 5), value("cost_usd", 0.5, "counter", model="m"))
    run(document, value("ttft_seconds", 0.3, "histogram"), value("ttft_seconds", 3.0, "histogram"))
    text = exposition(json.loads(json.dumps(document))["values"]["job=j"])  # survives JSON
    labels = 'probe="p::t[m]",slo="gateway-availability",target="gateway"'
    assert f"synthetic_active_sessions{{{labels}}} 5.0" in text
    assert f'synthetic_cost_usd_total{{model="m",{labels}}} 0.75' in text
    assert f'synthetic_ttft_seconds_bucket{{le="0.5",{labels}}} 1.0' in text
    assert f'synthetic_ttft_seconds_bucket{{le="+Inf",{labels}}} 2.0' in text
    assert f"synthetic_ttft_seconds_sum{{{labels}}} 3.3" in text
    assert "# TYPE synthetic_cost_usd_total counter" in text


def test_a_corrupt_section_restarts_the_values_only() -> None:
    document: dict[str, Any] = {
        "version": 1,
        "groups": {"job=j": {"kept": {}}},
        "values": {"job=j": {"x": 1}},
    }
    section = run(document, value("active_sessions", 2))
    assert [series["value"] for series in section.values()] == [2.0]
    assert document["groups"] == {"job=j": {"kept": {}}}


def test_values_not_seen_for_a_week_are_forgotten() -> None:
    document: dict[str, Any] = {"version": 1, "groups": {}}
    run(document, value("old", 1), now=0.0)
    section = run(document, value("new", 1), now=8 * 86400.0)
    assert [series["name"] for series in section.values()] == ["new"]


def test_spend_today_counts_this_utc_day_only() -> None:
    document: dict[str, Any] = {"version": 1, "groups": {}}
    day = 20_000 * 86400.0
    run(document, value(genai.COST, 0.5, "counter"), now=day - 60)
    section = run(document, value(genai.COST, 0.25, "counter"), now=day + 60)
    config = SimpleNamespace(probes=SimpleNamespace(gateway=SimpleNamespace(daily_spend_limit=0.2)))
    [warning] = genai.spend_warnings(config, section, day + 120)  # type: ignore[arg-type]
    assert warning.startswith("probe spend today is $0.2500 (x-litellm-response-cost), over")


@pytest.mark.parametrize(
    ("name", "number", "kind", "labels", "problem"),
    [
        ("bad-name", "1", "gauge", {}, "is not a metric name"),
        ("x", "float('nan')", "gauge", {}, "is not a finite number"),
        ("x", "True", "gauge", {}, "is not a finite number"),
        ("x", "-1", "counter", {}, "a counter cannot go down"),
        ("x", "1", "summary", {}, "kind 'summary' is not one of gauge, counter, histogram"),
        ("x", "1", "gauge", {"probe": "p"}, "label 'probe' is not allowed"),
        ("probe_success", "1", "gauge", {}, "synthetic_probe_success would shadow the suite's own series"),
        ("suite_probes", "1", "gauge", {}, "would shadow the suite's own series"),
        ("target_runs", "1", "counter", {}, "would shadow the suite's own series"),
        ("x_total", "1", "gauge", {}, "a name ending in _total, _bucket, _count, _sum would collide"),
        ("x_bucket", "1", "gauge", {}, "would collide with the series of a counter or histogram"),
        ("x", "1", "gauge", {"instance": "i"}, "label 'instance' is a grouping label of the push"),
        ("x", "1", "gauge", {"job": "j"}, "label 'job' is a grouping label of the push"),
        ("x", "1", "gauge", {"environment": "e"}, "label 'environment' is a grouping label"),
        ("x", "1", "gauge", {"location": "l"}, "label 'location' is a grouping label"),
    ],
)
def test_a_bad_value_is_one_line_naming_it(
    pytester: pytest.Pytester, name: str, number: str, kind: str, labels: dict[str, str], problem: str
) -> None:
    pytester.makepyfile(
        f"""
        def test_records(probe_value):
            probe_value({name!r}, {number}, kind={kind!r}, **{labels!r})
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--no-push")
    result.stdout.fnmatch_lines([f"*test_records*{problem}*"])


def test_token_timing() -> None:
    timing = TokenTiming(started=10.0, arrivals=[10.5, 10.6, 11.6, 11.7], ended=11.8, output_tokens=5)
    values = timing_values(timing)
    assert values[genai.FIRST_TOKEN] == pytest.approx(0.5)
    assert values[genai.MAX_GAP] == pytest.approx(1.0)
    assert values[genai.TIME_PER_TOKEN] == pytest.approx(0.4)
    # Four tokens after the first, over the 1.3 s from the first token to the end.
    assert values[genai.TOKENS_PER_SECOND] == pytest.approx(4 / 1.3)
    assert values[genai.OPERATION_DURATION] == pytest.approx(1.8)
    assert timing_values(TokenTiming(started=0.0)) == {}


def events(*pairs: tuple[str, dict[str, Any]]) -> list[str]:
    return [line for kind, data in pairs for line in (f"event: {kind}", f"data: {json.dumps(data)}", "")]


def test_messages_stream_in_order_and_out_of_order() -> None:
    good = events(
        ("message_start", {"type": "message_start", "message": {"usage": {"input_tokens": 7}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0}),
        ("ping", {"type": "ping"}),
        (
            "content_block_delta",
            {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "po"}},
        ),
        (
            "content_block_delta",
            {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "ng"}},
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "usage": {"output_tokens": 2}}),
        ("message_stop", {"type": "message_stop"}),
    )
    stream = MessagesStream(TokenTiming(0.0))
    read_messages_stream(good, stream)
    assert (stream.stopped, stream.text, stream.order_problem()) == (True, "pong", None)
    assert stream.usage == {"input_tokens": 7, "output_tokens": 2}
    assert len(stream.timing.arrivals) == 2
    no_usage = MessagesStream(TokenTiming(0.0))
    read_messages_stream([line.replace('"output_tokens": 2', '"x": 1') for line in good], no_usage)
    assert no_usage.order_problem() == "has no usage.output_tokens in message_delta"
    headless = MessagesStream(TokenTiming(0.0))
    read_messages_stream(good[3:], headless)
    assert headless.order_problem() == "starts with content_block_start, not message_start"


def chat_chunks(*contents: str) -> list[str]:
    return [f"data: {json.dumps({'choices': [{'delta': {'content': text}}]})}" for text in contents]


@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        ([*chat_chunks("po", "ng"), "data: [DONE]"], None),
        (chat_chunks("po"), "stream ended after 1 chunk(s) without [DONE]"),
        (
            [*chat_chunks("po"), 'data: {"error": {"message": "litellm.APIError: boom\\nTraceback"}}'],
            "stream failed after 1 chunk(s) with an error event: litellm.APIError: boom",
        ),
        ([*chat_chunks("po"), "data: {not json"], "streamed a malformed chunk after 1 chunk(s): {not json"),
        (["<html>", "oops"], "returned a malformed event stream: <html> oops"),
    ],
    ids=["done", "no-done", "error-frame", "malformed", "not-a-stream"],
)
def test_chat_stream_finish_rule(lines: list[str], problem: str | None) -> None:
    stream = ChatStream(TokenTiming(0.0))
    read_chat_stream(lines, stream)
    assert stream.finish_problem() == problem


def test_messages_stream_finish_rule_is_the_same_rule() -> None:
    cut = MessagesStream(TokenTiming(0.0))
    read_messages_stream(events(("message_start", {"type": "message_start"})), cut)
    assert cut.finish_problem() == "stream ended after 1 event(s) without message_stop (last: message_start)"
    assert cut.cut(AssertionError("reset")) == "stream cut after 1 event(s), before message_stop: reset"
    unordered = MessagesStream(TokenTiming(0.0))
    read_messages_stream(
        events(("message_start", {"type": "message_start"}), ("message_stop", {})), unordered
    )
    assert unordered.finish_problem() == "event stream has no content_block_start"


def test_what_makes_a_tool_call_well_formed() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "look", "arguments": '{"word": "x"}'}}
    assert tool_call_problem([call], "look") is None
    assert tool_call_problem([call], "other") == "called 'look', not the other tool offered"
    assert tool_call_problem([{**call, "id": ""}], "look") == (
        'sent tool_calls.0 without an id or type function: {"id": "", "type": "function", '
        '"function": {"name": "look", "arguments": "{\\"word\\": \\"x\\"}"}}'
    )
    arguments_list = {**call, "function": {"name": "look", "arguments": "[1]"}}
    assert tool_call_problem([arguments_list], "look") == (
        "sent tool_calls.0 with arguments that are not a JSON object: [1]"
    )
    use = {"type": "tool_use", "id": "t1", "name": "look", "input": {"word": "x"}}
    assert tool_use_problem([{"type": "text", "text": "ok"}, use], "tool_use", "look") is None
    assert tool_use_problem([{**use, "input": "x"}], "tool_use", "look") == (
        "sent a tool_use block whose input is not an object: x"
    )
    assert tool_use_problem([{"type": "text"}], "end_turn", "look") == (
        "answered without a tool_use block (content: text, stop_reason 'end_turn')"
    )


def test_model_selector_and_first_token_sli() -> None:
    probes = SLO.model_validate(
        {
            "name": "a",
            "objective": 99,
            "sli": {"kind": "probes", "target": "gateway", "model": "claude-sonnet-4"},
        }
    )
    # The model's probes get run counters of their own (the reporter folds them under the SLO).
    assert sli_query(probes).bad("1h") == (
        'sum by (environment) (increase(synthetic_target_failed_runs_total{target="gateway",slo="a"}[1h]))'
    )
    assert isinstance(probes.sli, ProbesSLI)
    assert probes.sli.selects("probes/test_gateway.py::test_chat_completion[claude-sonnet-4]")
    assert not probes.sli.selects("probes/test_gateway.py::test_chat_completion[claude-haiku-3-5]")
    assert not probes.sli.selects("probes/test_gateway.py::test_gateway_liveliness")
    assert 'probe=~".*\\\\[claude\\\\-sonnet\\\\-4\\\\]"' in (failing_probes(probes) or "")
    first = SLO.model_validate(
        {"name": "b", "objective": 95, "sli": {"kind": "first_token", "target": "gateway", "threshold": "2s"}}
    )
    query = sli_query(first)
    assert "synthetic_gen_ai_time_to_first_token_seconds_bucket{" in query.bad("1h")
    assert 'le=~"2|2\\\\.0"' in query.bad("1h")


def test_spend_rule_only_alerts_with_a_limit() -> None:
    alerts = [rule.get("alert") for rule in gen_ai_group("j", 0)["rules"]]
    assert alerts == [None, "SyntheticGatewayDeploymentDown"]
    [record, _, alert] = gen_ai_group("j", 0.5)["rules"]
    assert record["expr"] == (
        'sum by (environment, target, model) (increase(synthetic_gen_ai_probe_cost_usd_total{job="j"}[1d]))'
    )
    assert alert["expr"] == "sum by (environment) (synthetic:gen_ai_probe_cost_usd:increase1d) > 0.5"


@pytest.mark.slow
def test_first_token_and_per_model_slos_pass_promtool(tmp_path: Path) -> None:
    """Rules and generated promtool scenarios for both LLM SLIs: promtool checks the rules and
    runs the scenarios (a total outage pages, a healthy run does not)."""
    config = tmp_path / "monitoring.yaml"
    config.write_text(
        json.dumps(
            {
                "environments": {"local": {"targets": {"gateway": {"url": "http://127.0.0.1:9"}}}},
                "probes": {"gateway": {"daily_spend_limit": 0.5}},
                "slos": [
                    {
                        "name": "sonnet-availability",
                        "objective": 99.5,
                        "sli": {"kind": "probes", "target": "gateway", "model": "claude-sonnet-4"},
                    },
                    {
                        "name": "first-token",
                        "objective": 95,
                        "sli": {"kind": "first_token", "target": "gateway", "threshold": "2s"},
                    },
                ],
            }
        ),
        encoding="utf-8",
    )
    rules = tmp_path / "rules.yml"
    tests = tmp_path / "tests"
    assert rules_main(["--config", str(config), "-o", str(rules), "--tests", str(tests), "--check"]) == 0
    text = rules.read_text(encoding="utf-8")
    assert "synthetic_gen_ai_time_to_first_token_seconds_bucket" in text
    assert "SyntheticProbeSpendOverDailyLimit" in text
    assert any("claude-sonnet-4" in path.read_text(encoding="utf-8") for path in tests.iterdir())


@pytest.mark.slow
def test_a_deployment_down_for_five_minutes_warns_naming_it(tmp_path: Path) -> None:
    """On promtool: the deployment whose gauge stays 0 warns, with its model group and label;
    its healthy sibling in the same group does not."""
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump({"groups": [gen_ai_group("synthetic-probes", 0)]}), encoding="utf-8")
    series = 'synthetic_gen_ai_deployment_healthy{job="synthetic-probes",environment="prod",target="gateway"'
    scenario = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {
                        "series": f'{series},model="mixed",deployment="openai/throttled"}}',
                        "values": "0x10",
                    },
                    {
                        "series": f'{series},model="mixed",deployment="openai/steady"}}',
                        "values": "1x10",
                    },
                ],
                "alert_rule_test": [
                    {"eval_time": "3m", "alertname": "SyntheticGatewayDeploymentDown", "exp_alerts": []},
                    {
                        "eval_time": "8m",
                        "alertname": "SyntheticGatewayDeploymentDown",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "warning",
                                    "environment": "prod",
                                    "target": "gateway",
                                    "model": "mixed",
                                    "deployment": "openai/throttled",
                                },
                                "exp_annotations": {
                                    "summary": "A deployment of an LLM model group is down",
                                    "description": (
                                        "Deployment openai/throttled of model group mixed in prod failed "
                                        "its health check for 5 minutes; the group may still serve from "
                                        "its other deployments. The probe's warning has its first error line."
                                    ),
                                },
                            }
                        ],
                    },
                ],
            }
        ],
    }
    test_file = tmp_path / "test.yml"
    test_file.write_text(yaml.safe_dump(scenario), encoding="utf-8")
    result = run_tests(test_file)
    assert result.ok, result.output
