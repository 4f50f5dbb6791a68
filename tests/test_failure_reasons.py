"""The failure reason of an error status, and the one line of the target's error, decided in one
place (`classify_status`) for probes, checks and the load gate."""

from __future__ import annotations

import json

import pytest
from probe_project import junit_cases, make_probe_project, run_probes

from devstack.refstack import ReferenceStack
from slo.exchange.failures import FAILURE_REASONS, classify_status, error_message


def litellm_error(message: str, kind: str, code: int) -> str:
    return json.dumps({"error": {"message": message, "type": kind, "param": None, "code": str(code)}})


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (401, litellm_error("Authentication Error, No api key passed in.", "auth_error", 401), "auth"),
        (403, '{"detail": "key not allowed"}', "auth"),
        # LiteLLM without a database rejects every key but the master key this way.
        (400, litellm_error("No connected db.", "no_db_connection", 400), "auth"),
        (401, litellm_error("Authentication Error", "key_model_access_denied", 401), "auth"),
        (429, litellm_error("litellm.RateLimitError: slow down", "throttling_error", 429), "rate_limit"),
        (
            429,
            litellm_error("Budget has been exceeded! Current cost: 2, Max budget: 1", "budget_exceeded", 429),
            "budget",
        ),
        (
            422,
            litellm_error("Budget has been exceeded! Current cost: 2, Max budget: 1", "budget_exceeded", 422),
            "budget",
        ),
        (529, litellm_error("AnthropicException - Overloaded", "internal_server_error", 529), "overloaded"),
        (503, "upstream unavailable", "overloaded"),
        (500, litellm_error("litellm.InternalServerError: boom", "internal_server_error", 500), "upstream"),
        (502, "<html>bad gateway</html>", "upstream"),
        (404, '{"detail": "Not Found"}', "http_status"),
    ],
)
def test_each_error_status_gets_its_reason(status: int, body: str, reason: str) -> None:
    assert classify_status(status, body)[0] == reason
    assert reason in FAILURE_REASONS


def test_only_the_first_line_of_the_error_is_kept() -> None:
    body = litellm_error(
        "litellm.RateLimitError: mock\nstack trace: Traceback (most recent call last):", "x", 429
    )
    assert error_message(body) == ("litellm.RateLimitError: mock", "x")
    # FastAPI's detail, a bare JSON string (LiteLLM's metrics 401) and plain text.
    assert (
        error_message('{"detail": {"error": "Model list not initialized"}}')[0]
        == "Model list not initialized"
    )
    assert (
        error_message('"Unauthorized access to metrics endpoint"')[0]
        == "Unauthorized access to metrics endpoint"
    )
    assert error_message("plain\ntext")[0] == "plain"
    assert error_message("")[0] == ""


def test_the_vocabulary_holds_the_content_reasons() -> None:
    assert {"auth", "rate_limit", "budget", "overloaded", "upstream", "stream", "fallback"} <= set(
        FAILURE_REASONS
    )


STREAM = "test_gateway::test_streaming_time_to_first_token[claude-sonnet-4]"


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("stream_cut", "model=claude-sonnet-4 stream cut after 1 chunk(s), before [DONE]: gateway: POST"),
        ("stream_error", "stream failed after 1 chunk(s) with an error event: litellm.APIConnectionError"),
    ],
)
def test_a_broken_stream_fails_saying_how(
    pytester: pytest.Pytester, stack: ReferenceStack, fault: str, message: str
) -> None:
    make_probe_project(pytester, stack)
    stack.set_faults("gateway", **{fault: True})
    try:
        run_probes(pytester, f"probes/test_gateway.py::{STREAM.split('::')[1]}")
    finally:
        stack.clear_faults("gateway")
    case = junit_cases(pytester)[STREAM]
    assert case.outcome == "failed"
    assert message in case.message
