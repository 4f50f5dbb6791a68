"""API service health: `/health` answers 200 with the seed's JSON shape, and its numbers
(active sessions, tokens used per model and type, total cost) are pushed as probe values, so
the seed's dashboard panels work for an API without a `/metrics`."""

import pytest

from slo import expect_json, require_shape

pytestmark = pytest.mark.probe(target="api", slo="api-availability")

HEALTH_SHAPE = {
    "status": str,
    "active_sessions": int,
    "tokens_used": dict,
    "total_cost": (int, float),
}


def test_api_health(http, probe_value):
    response = http().get("/health")
    health = expect_json(response)
    require_shape(response, health, HEALTH_SHAPE)
    assert health["status"] == "healthy", f"api /health reports status {health['status']!r}"
    for model, used in health["tokens_used"].items():
        require_shape(response, used, {"input": int, "output": int})
        assert min(used["input"], used["output"]) >= 0, f"negative token count for {model}"
    assert health["total_cost"] >= 0, f"api /health reports a negative cost {health['total_cost']}"
    probe_value("active_sessions", health["active_sessions"])
    for model, used in health["tokens_used"].items():
        for token_type in ("input", "output"):
            probe_value("tokens_used", used[token_type], model=model, type=token_type)
    probe_value("total_cost_usd", health["total_cost"])
