"""The gateway plan's pure parts: which listed names are concrete model groups, and what one
run is estimated to cost from the state file's probe values."""

from __future__ import annotations

import pytest

from slo.probe.gateway_plan import Listing, run_cost_estimate


def test_a_wildcard_route_and_its_expansions_are_left_out() -> None:
    listing = Listing.read(
        ["sonnet", "anthropic/*", "anthropic/claude-a", "anthropic/claude-b", "openai/gpt-4o", "haiku"]
    )
    assert listing.groups == ["sonnet", "openai/gpt-4o", "haiku"]
    assert listing.routes == {"anthropic/*": 2}


def test_a_listing_without_routes_is_all_concrete() -> None:
    listing = Listing.read(["b", "a", "anthropic/claude-a"])
    assert (listing.groups, listing.routes) == (["b", "a", "anthropic/claude-a"], {})


def cost(probe: str, model: str, value: float) -> dict[str, object]:
    return {
        "name": "gen_ai_probe_cost_usd",
        "kind": "counter",
        "value": value,
        "labels": {"probe": probe, "model": model},
    }


def test_the_estimate_is_each_probes_cost_per_run_for_the_probed_models() -> None:
    state = {
        "values": {
            "1": cost("chat[sonnet]", "sonnet", 0.3),
            "2": cost("tool[sonnet]", "sonnet", 0.1),
            "3": cost("chat[opus]", "opus", 9.0),
            "4": {
                "name": "gen_ai_tokens",
                "kind": "counter",
                "value": 500.0,
                "labels": {"probe": "chat[sonnet]"},
            },
            "5": cost("chat[never-ran]", "sonnet", 1.0),
        },
        "runs": {"chat[sonnet]": 3, "tool[sonnet]": 2, "chat[opus]": 3},
    }
    # 0.3 / 3 + 0.1 / 2; opus is not probed this run, and a probe without runs has no rate.
    assert run_cost_estimate(state, {"sonnet"}) == pytest.approx(0.15)
    assert run_cost_estimate({}, {"sonnet"}) == 0.0
