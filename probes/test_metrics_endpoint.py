"""Each configured `/metrics` (`probes.metrics`): parseable, its metric families present,
and the numbers in them within the error, token and cost budgets.

Which series are read is a preset per target: the seed's ``claude_code_*`` for the API,
``litellm`` for a LiteLLM proxy (``litellm_settings.callbacks: ["prometheus"]``). Same-origin
redirects are followed (LiteLLM answers ``/metrics`` with 307 to ``/metrics/``).

These are budget probes (``kind="budget"``): they judge the service's own counters, not
whether it answers, so they never count toward an availability SLO. Counters are judged over
the interval since this probe's previous run (its readings are kept in the state file), so a
ratio reflects the last minute, not everything since the service started.
"""

import time

import pytest

from slo import (
    ProbeFailure,
    describe,
    expect_metrics,
    parametrize_probes,
    probe_config,
    probe_param,
)

MAX_REDIRECTS = 3


def pytest_generate_tests(metafunc):
    if "metrics" in metafunc.fixturenames:
        entries = probe_config(metafunc.config).probes.metrics
        targets = [entry.target for entry in entries]
        parametrize_probes(
            metafunc,
            "metrics",
            [
                probe_param(
                    entry,
                    # The path only where one target has several /metrics.
                    id=entry.target if targets.count(entry.target) == 1 else f"{entry.target}{entry.path}",
                    target=entry.target,
                    slo=entry.slo,
                    kind="budget",
                )
                for entry in entries
            ],
            empty="no probes.metrics in the config",
        )


def get_same_origin(client, path):
    """GET `path`, following redirects only within the target's own scheme, host and port:
    anywhere else would receive the target's token."""
    response = client.get(path)
    for _ in range(MAX_REDIRECTS):
        if not response.is_redirect:
            return response
        origin = response.request.url
        location = origin.join(response.headers["location"])
        if (location.scheme, location.host, location.port) != (origin.scheme, origin.host, origin.port):
            raise ProbeFailure(
                f"{describe(response)} redirects to another origin ({location.scheme}://{location.host}); "
                "not followed, the target's credentials would go there",
                "http_status",
            )
        response = client.get(str(location))
    return response


def since_previous_run(probe, now):
    """This run's readings minus the previous run's, and the seconds between them; the
    readings themselves and None when there is no previous reading (the state file keeps
    readings of pushed runs only).

    A counter below its previous reading means the service restarted: its value now is the
    whole interval's count.
    """
    probe.keep_reading(now)
    previous = probe.previous_reading()
    if previous is None or not set(now) <= set(previous.values):
        return dict(now), None
    restarted = any(now[name] < previous.values[name] for name in now)
    delta = {name: value if restarted else value - previous.values[name] for name, value in now.items()}
    return delta, time.time() - previous.time


def interval(seconds):
    if seconds is None:
        return "since the counters started (no previous reading)"
    return f"in the {seconds:.0f} s since the previous run"


@pytest.fixture
def scrape(http, metrics):
    """All samples of one scrape: name -> [(labels, value)]."""
    response = get_same_origin(http(metrics.target), metrics.path)
    return response, expect_metrics(response)


def test_metric_families_present(scrape, metrics):
    response, samples = scrape
    names = set(samples)
    missing = [
        name
        for name in metrics.names.required
        if not any(s == name or s.startswith(f"{name}_") for s in names)
        and f"{name}_total" not in names
        and name.removesuffix("_total") not in names
    ]
    assert not missing, f"{describe(response)} lacks metric families: {', '.join(missing)}"


def test_api_5xx_ratio(probe, scrape, slo_config, metrics):
    response, samples = scrape
    limit = slo_config.budgets.api_error_rate
    requests = samples.get(metrics.names.requests, [])
    status = metrics.names.status_label
    now = {
        "requests": sum(value for _, value in requests),
        "errors": sum(value for labels, value in requests if labels.get(status, "").startswith("5")),
    }
    delta, seconds = since_previous_run(probe, now)
    if delta["requests"] <= 0:
        pytest.skip(f"{describe(response)}: no requests counted {interval(seconds)}, no 5xx ratio to check")
    ratio = delta["errors"] / delta["requests"]
    assert ratio < limit, (
        f"{describe(response)}: 5xx ratio {ratio:.2%} ({delta['errors']:g} of {delta['requests']:g} "
        f"requests {interval(seconds)}) over the {limit:.0%} budget (budgets.api_error_rate)"
    )


def test_token_rate(probe, scrape, slo_config, metrics):
    response, samples = scrape
    limit = slo_config.budgets.tokens_per_hour
    tokens = metrics.names.tokens
    used = samples.get(tokens, [])
    created_name = f"{tokens.removesuffix('_total')}_created"
    created = [value for _, value in samples.get(created_name, [])]
    if not used:
        pytest.skip(f"{describe(response)}: no {tokens} samples")
    delta, seconds = since_previous_run(probe, {"tokens": sum(v for _, v in used)})
    if seconds is None:
        if not created:
            pytest.skip(f"{describe(response)}: no previous reading and no {created_name} samples")
        counted = time.time() - min(created)
    else:
        counted = seconds
    # Under a minute the hourly extrapolation of a few requests means nothing.
    rate = delta["tokens"] / (max(counted, 60.0) / 3600)
    assert rate < limit, (
        f"{describe(response)}: {rate:,.0f} tokens/h {interval(seconds)}, over the "
        f"{limit:,.0f}/h budget (budgets.tokens_per_hour)"
    )


def test_cost(scrape, slo_config, metrics):
    response, samples = scrape
    limit = slo_config.budgets.cost_usd
    cost = [value for _, value in samples.get(metrics.names.cost, [])]
    if not cost:
        pytest.skip(f"{describe(response)}: no {metrics.names.cost} sample")
    # Summed: LiteLLM keeps one spend series per key, team and model.
    assert sum(cost) < limit, (
        f"{describe(response)}: cost ${sum(cost):,.2f} over the ${limit:,.0f} budget (budgets.cost_usd)"
    )
