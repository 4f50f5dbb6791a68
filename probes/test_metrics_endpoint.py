"""The API's `/metrics`: parseable, the seed's metric families present, and the numbers in
them within the error, token and cost budgets."""

import time

import pytest

from slo import describe, expect_metrics

pytestmark = pytest.mark.probe(target="api", slo="api-availability")


@pytest.fixture
def scrape(http, slo_config):
    """All samples of one scrape: name -> [(labels, value)]."""
    settings = slo_config.probes.metrics
    response = http(settings.target).get(settings.path)
    return response, expect_metrics(response)


def test_metric_families_present(scrape, slo_config):
    response, samples = scrape
    names = set(samples)
    missing = [
        name
        for name in slo_config.probes.metrics.required
        if not any(s == name or s.startswith(f"{name}_") for s in names)
        and f"{name}_total" not in names
        and name.removesuffix("_total") not in names
    ]
    assert not missing, f"{describe(response)} lacks metric families: {', '.join(missing)}"


def test_api_5xx_ratio(scrape, slo_config):
    response, samples = scrape
    limit = slo_config.budgets.api_error_rate
    requests = samples.get("claude_code_api_requests_total", [])
    total = sum(value for _, value in requests)
    if total == 0:
        pytest.skip(f"{describe(response)}: no requests counted yet, no 5xx ratio to check")
    errors = sum(value for labels, value in requests if labels.get("status", "").startswith("5"))
    ratio = errors / total
    assert ratio < limit, (
        f"{describe(response)}: 5xx ratio {ratio:.2%} ({errors:g} of {total:g} requests) "
        f"over the {limit:.0%} budget (budgets.api_error_rate)"
    )


def test_token_rate(scrape, slo_config):
    """Average token rate since the counters were created (one scrape: the rules see rate())."""
    response, samples = scrape
    limit = slo_config.budgets.tokens_per_hour
    used = samples.get("claude_code_tokens_used_total", [])
    created = [value for _, value in samples.get("claude_code_tokens_used_created", [])]
    if not used or not created:
        pytest.skip(f"{describe(response)}: no claude_code_tokens_used_total/_created samples")
    hours = max(time.time() - min(created), 60.0) / 3600
    rate = sum(value for _, value in used) / hours
    assert rate < limit, (
        f"{describe(response)}: {rate:,.0f} tokens/h since start, over the {limit:,.0f}/h "
        "budget (budgets.tokens_per_hour)"
    )


def test_cost(scrape, slo_config):
    response, samples = scrape
    limit = slo_config.budgets.cost_usd
    cost = [value for _, value in samples.get("claude_code_cost_usd", [])]
    if not cost:
        pytest.skip(f"{describe(response)}: no claude_code_cost_usd sample")
    assert max(cost) < limit, (
        f"{describe(response)}: cost ${max(cost):,.2f} over the ${limit:,.0f} budget (budgets.cost_usd)"
    )
