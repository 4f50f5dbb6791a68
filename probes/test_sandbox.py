"""Code sandboxes: the status endpoint answers and violations stay under the budget."""

import pytest

from slo import describe, expect_json, require_shape

pytestmark = pytest.mark.probe(target="api", slo="sandbox-availability")


def test_sandbox_status(http, slo_config):
    limit = slo_config.budgets.sandbox_violations_per_minute
    response = http().get("/sandbox/status")
    status = expect_json(response)
    require_shape(response, status, {"violations": int})
    violations = status["violations"]
    assert violations < limit, (
        f"{describe(response)} reports {violations} sandbox violations "
        f"(limit {limit:g}, budgets.sandbox_violations_per_minute)"
    )
