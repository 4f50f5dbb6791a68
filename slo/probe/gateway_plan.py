"""What one run of the gateway probes will probe and spend, decided before any probe runs.

``models: discover`` reads ``/v1/models`` once per process. LiteLLM lists there every model a
wildcard route (``anthropic/*``) could reach, from its cost map (23 for ``anthropic/*``, 211
for ``openai/*``): each would get real completions on every run, and a health probe that
fails, since ``/health`` knows no such model group. Asked with ``return_wildcard_routes``,
LiteLLM lists the route itself too, so the plan keeps only the concrete model groups (names
that are no route and match none), names each route once, and probes at most
`probes.gateway.max_models` of them.

The spend guard estimates what one run costs from what the probes paid before: each probe's
``x-litellm-response-cost`` so far (the ``gen_ai_probe_cost_usd`` counter in the state file)
over its runs, summed for the models this run probes. Above `probes.gateway.max_run_cost` the
LLM probes refuse to start. The report header shows both (:func:`header_lines`).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from slo.config import Config, Target
from slo.config.probes import GatewayModel
from slo.exchange.failures import ProbeFailure
from slo.options import RunOptions
from slo.probe.client import ProbeClient
from slo.probe.expect import describe, expect_json, require_shape

__all__ = ["DiscoveryFailure", "GatewayPlan", "gateway_plan", "header_lines"]


@dataclass(frozen=True)
class DiscoveryFailure:
    """`models: discover` could not read ``/v1/models``: one failing probe says why."""

    name: str
    failure: str


@dataclass(frozen=True)
class Listing:
    """What ``/v1/models`` lists, split: the concrete model groups, in listed order, and the
    wildcard routes with how many listed names each expands to."""

    groups: list[str]
    routes: dict[str, int]

    @classmethod
    def read(cls, names: list[str]) -> Listing:
        routes = {name: 0 for name in names if "*" in name}
        groups = []
        for name in names:
            if name in routes:
                continue
            matched = [route for route in routes if fnmatch.fnmatchcase(name, route)]
            for route in matched:
                routes[route] += 1
            if not matched:
                groups.append(name)
        return cls(groups, routes)


@dataclass
class GatewayPlan:
    """The model groups this run probes, and what was left out or refused, said once."""

    models: list[GatewayModel | DiscoveryFailure]
    notes: list[str] = field(default_factory=list)
    #: Estimated USD of one run, and why the LLM probes refuse to start (None: they may).
    estimate: float = 0.0
    refusal: str | None = None


_PLAN_KEY = pytest.StashKey[GatewayPlan]()


def gateway_plan(config: pytest.Config) -> GatewayPlan:
    """This process's plan, made once: discovery is a request to the gateway."""
    if _PLAN_KEY not in config.stash:
        from slo.runconfig import probe_config, run_options

        config.stash[_PLAN_KEY] = _make_plan(probe_config(config), _spend_so_far(run_options(config)))
    return config.stash[_PLAN_KEY]


def _spend_so_far(options: RunOptions) -> dict[str, Any]:
    """The state file's probe values and each probe's runs, for this run's grouping key."""
    from slo.report.state import StateFile, runner_key
    from slo.report.values import STATE_SECTION

    key = runner_key(options)
    state = StateFile(options.state_file)
    runs = {name: probe.runs for name, probe in state.peek(key).items()}
    return {"values": state.peek_section(STATE_SECTION, key), "runs": runs}


def _make_plan(slo_config: Config, state: Mapping[str, Any]) -> GatewayPlan:
    settings = slo_config.probes.gateway
    target = slo_config.environment.targets.get(settings.target)
    if target is None:
        return GatewayPlan([])
    notes = []
    if settings.models == "discover":
        listing = _discover(settings.target, target)
        if isinstance(listing, DiscoveryFailure):
            return GatewayPlan([listing])
        for route, count in listing.routes.items():
            notes.append(
                f"models: discover leaves out wildcard route {route} ({count} model(s) listed "
                "for it): name the ones to probe in probes.gateway.models"
            )
        if len(listing.groups) > settings.max_models:
            notes.append(
                f"models: discover found {len(listing.groups)} model groups, probing the first "
                f"{settings.max_models} (probes.gateway.max_models)"
            )
        models: list[GatewayModel] = settings.probed_models(target.model, listing.groups)
    else:
        models = settings.probed_models(target.model)
    plan = GatewayPlan(list(models), notes, run_cost_estimate(state, {model.name for model in models}))
    ceiling = settings.max_run_cost
    if ceiling is not None and plan.estimate > ceiling:
        plan.refusal = (
            f"probe spend guard: one run is estimated at ${plan.estimate:.6f}, over "
            f"probes.gateway.max_run_cost ${ceiling:.6f}: LLM probes not started "
            "(fewer models, a smaller max_tokens, or a higher ceiling)"
        )
    return plan


def _discover(name: str, target: Target) -> Listing | DiscoveryFailure:
    try:
        with ProbeClient(name, target) as client:
            response = client.get("/v1/models", params={"return_wildcard_routes": "true"})
            listing = expect_json(response)
        require_shape(response, listing, {"data": list})
        names = [entry["id"] for entry in listing["data"] if isinstance(entry, dict) and entry.get("id")]
    except (ProbeFailure, AssertionError) as exc:
        return DiscoveryFailure("discover", f"models: discover could not read /v1/models: {exc}")
    found = Listing.read([str(name) for name in names])
    if not found.groups:
        return DiscoveryFailure(
            "discover", f"{describe(response)} lists no concrete model group (models: discover)"
        )
    return found


def run_cost_estimate(state: Mapping[str, Any], models: set[str]) -> float:
    """USD one run of the probes of `models` costs, by what each probe paid per run so far.

    `state` holds ``values`` (the state file's probe values of this grouping key) and ``runs``
    (probe id -> runs).
    """
    from slo.report.genai import COST

    runs: Mapping[str, int] = state.get("runs", {})
    total = 0.0
    for series in state.get("values", {}).values():
        if not isinstance(series, dict) or series.get("name") != COST:
            continue
        labels = series.get("labels", {})
        probe_runs = runs.get(str(labels.get("probe")), 0)
        if labels.get("model") in models and probe_runs > 0:
            total += float(series.get("value", 0.0)) / probe_runs
    return total


def header_lines(config: pytest.Config) -> list[str]:
    """The report header's lines on the gateway probes: what discovery left out, and the
    spend estimate with its ceiling (none without a gateway target)."""
    from slo.runconfig import probe_config

    slo_config = probe_config(config)
    if slo_config.probes.gateway.target not in slo_config.environment.targets:
        return []
    plan = gateway_plan(config)
    ceiling = slo_config.probes.gateway.max_run_cost
    limit = f"probes.gateway.max_run_cost ${ceiling:.6f}" if ceiling is not None else "no max_run_cost"
    lines = [f"slo: {note}" for note in plan.notes]
    lines.append(
        f"slo: LLM probe spend about ${plan.estimate:.6f} a run (x-litellm-response-cost so far), {limit}"
    )
    if plan.refusal is not None:
        lines.append(f"slo: {plan.refusal}")
    return lines
