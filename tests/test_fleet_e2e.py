"""Two runners in two locations, end to end, with `quorum: 2` and nothing stubbed.

Each runner probes its own reference stack (the same service as seen from its network) in a
loop and pushes to one real Pushgateway under its instance and location; a real Prometheus
evaluates the generated rules; a real Alertmanager routes with the shipped
`deploy/alertmanager.yml` to a loopback webhook (the plumbing of `test_pipeline_e2e`). In order:

1. only us-east sees the API fail: no page, but `SLOLocationFailing` names us-east (a ticket);
2. eu-west sees it fail too: the page, its `locations` annotation naming both;
3. both recover and the eu-west runner stops: `SyntheticProbesStale` names its instance and
   location, and the SLI goes on from us-east alone; `slo budget` shows both locations.

The SLO window is one day, so the page windows are 2 minutes and 20 seconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from eventually import wait_for
from loopback import loopback_server, url_of
from test_pipeline_e2e import (
    PROBES,
    Notification,
    ProbeLoop,
    Webhook,
    prometheus_config,
    shipped_routing,
    webhook_handler,
)

from devstack.daemons import Alertmanager, Prometheus, Pushgateway
from devstack.refstack import ReferenceStack
from slo.config import load_config
from slo.objectives.budget import main as budget
from slo.objectives.promql import PrometheusClient
from slo.objectives.rules.generate import render, rule_file

pytestmark = pytest.mark.slow

STALE_AFTER = 45
#: The pipeline's probes but the sandbox one, which links to an SLO this config does not
#: declare (a usage error: a marker cannot name an SLO that does not exist).
FLEET_PROBES = [path for path in PROBES if not path.endswith("test_sandbox.py")]
LOCATIONS = ("eu-west", "us-east")

CONFIG = """
environments:
  local:
    targets:
      api: {{url: "{api}", timeout: 2s}}
checks:
  - {{name: api-health-status, target: api, path: /health, json: {{status: healthy}}}}
pushgateway: {{job: synthetic-probes, timeout: 2s, deadline: 4s}}
alerting: {{quorum: 2}}
slos:
  - name: api-availability
    objective: 99.9
    window: 1d
    alerting: {{shortest_window: 20s}}
    sli: {{kind: probes, target: api}}
budgets:
  probes_stale_after: {stale}s
"""


class Fleet:
    """A reference stack and a probe loop per location, and what they all report to."""

    def __init__(self, stacks: dict[str, ReferenceStack], loops: dict[str, ProbeLoop], webhook: Webhook,
                 prometheus: PrometheusClient, prometheus_url: str, config: Path) -> None:  # fmt: skip
        self.stacks, self.loops, self.webhook = stacks, loops, webhook
        self.prometheus, self.prometheus_url, self.config = prometheus, prometheus_url, config

    def fail(self, location: str) -> None:
        self.stacks[location].set_faults("api", error_rate=1, status=503)

    def pages(self) -> list[Notification]:
        return [
            n for n in self.webhook.all() if n.receiver == "critical-alerts" and n.body["status"] == "firing"
        ]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    work = tmp_path_factory.mktemp("fleet")
    webhook = Webhook()
    with (
        ReferenceStack(env={"REFSTACK_API_KEY": ""}) as eu_stack,
        ReferenceStack(env={"REFSTACK_API_KEY": ""}) as us_stack,
        loopback_server(webhook_handler(webhook)) as hook,
    ):
        stacks = dict(zip(LOCATIONS, (eu_stack, us_stack), strict=True))
        configs = {}
        for location, stack in stacks.items():
            configs[location] = work / f"{location}.yaml"
            configs[location].write_text(
                CONFIG.format(api=stack.api_url, stale=STALE_AFTER), encoding="utf-8"
            )
        slo_config = load_config(configs["eu-west"], "local")
        rules = work / "slo-rules.yml"
        rules.write_text(
            render(rule_file(slo_config.slos, slo_config.budgets, "synthetic-probes")), encoding="utf-8"
        )
        with (
            Pushgateway() as gateway,
            Alertmanager(shipped_routing(url_of(hook))) as alertmanager,
            Prometheus(prometheus_config(gateway.url, alertmanager.url, rules)) as prometheus,
            PrometheusClient(prometheus.url) as client,
        ):
            loops = {}
            for location, stack in stacks.items():
                state = work / f"{location}-state.json"
                loop = ProbeLoop(stack, gateway.url, configs[location], state, FLEET_PROBES)
                loop.env.update(SLO_INSTANCE=f"runner-{location}", SLO_LOCATION=location)
                loops[location] = loop
                loop.start()
            try:
                yield Fleet(stacks, loops, webhook, client, prometheus.url, configs["eu-west"])
            finally:
                for loop in loops.values():
                    loop.stopping.set()
                for loop in loops.values():
                    loop.thread.join(timeout=150)


def located_runs(fleet: Fleet) -> set[str]:
    query = 'synthetic_target_runs_total{target="api"} > 1'
    return {sample.labels.get("location", "") for sample in fleet.prometheus.query(query)}


def test_a_quorum_of_two_locations_decides_what_pages(
    fleet: Fleet, capsys: pytest.CaptureFixture[str]
) -> None:
    wait_for(lambda: located_runs(fleet) == set(LOCATIONS), "run counters from both locations", 120)

    # 1. One location's API fails: the quorum holds the page back and a ticket names it.
    fleet.fail("us-east")
    ticket = fleet.webhook.wait_for(
        lambda n: (
            n.receiver == "warning-alerts"
            and n.body["status"] == "firing"
            and any(a["labels"]["alertname"] == "SLOLocationFailing" for a in n.alerts)
        ),
        "SLOLocationFailing ticket",
        timeout=150,
    )
    named = [a for a in ticket.alerts if a["labels"]["alertname"] == "SLOLocationFailing"]
    assert {a["labels"]["location"] for a in named} == {"us-east"}
    assert "us-east" in named[0]["annotations"]["summary"]
    assert fleet.pages() == [], "one location of a quorum of two must not page"
    page_alerts = 'ALERTS{alertname="ErrorBudgetBurn",severity="page"}'
    assert fleet.prometheus.query(page_alerts) == []

    # 2. The second location agrees: the page, naming both locations.
    fleet.fail("eu-west")
    page = fleet.webhook.wait_for(
        lambda n: n in fleet.pages() and n.body["groupLabels"].get("slo") == "api-availability",
        "page",
        timeout=150,
    )
    alert = page.alerts[0]
    assert alert["labels"]["alertname"] == "ErrorBudgetBurn"
    locations = alert["annotations"]["locations"]
    assert "eu-west: " in locations
    assert "us-east: " in locations
    assert "on runner-eu-west: " in alert["annotations"]["failing"]

    # 3. Both recover; the eu-west runner stops: named by instance and location.
    for stack in fleet.stacks.values():
        stack.clear_faults("api")
    fleet.loops["eu-west"].stop()
    stale = fleet.webhook.wait_for(
        lambda n: (
            n.receiver == "warning-alerts"
            and n.body["status"] == "firing"
            and any(a["labels"]["alertname"] == "SyntheticProbesStale" for a in n.alerts)
        ),
        "stale ticket",
        timeout=STALE_AFTER + 90,
    )
    [lost] = [a for a in stale.alerts if a["labels"]["alertname"] == "SyntheticProbesStale"]
    assert (lost["labels"]["instance"], lost["labels"]["location"]) == ("runner-eu-west", "eu-west")
    assert "runner-eu-west in eu-west" in lost["annotations"]["description"]
    # The SLI goes on from us-east alone: eu-west has no runs in the short window any more.
    short = 'slo:location_error:ratio{slo="api-availability",window="20s"}'
    reporting = wait_for(
        lambda: {s.labels["location"] for s in fleet.prometheus.query(short)} == {"us-east"},
        "only us-east reporting in the 20s window",
        60,
    )
    assert reporting
    ratio = fleet.prometheus.query('slo:sli_error:ratio{slo="api-availability",window="20s"}')
    assert len(ratio) == 1

    capsys.readouterr()
    assert budget(["--config", str(fleet.config), "--prometheus", fleet.prometheus_url, "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["quorum"] == 2
    by_location = {loc["location"]: loc["sli"] for loc in row["locations"]}
    assert set(by_location) == set(LOCATIONS)
    # Quorum 2 of two locations: the second highest error ratio, so the better location's SLI.
    assert row["sli"] == max(by_location.values())
    assert budget(["--config", str(fleet.config), "--prometheus", fleet.prometheus_url]) == 0
    out = capsys.readouterr().out
    assert "locations (quorum 2: the SLI is the 2nd worst location's):" in out
    assert "    eu-west: SLI " in out
    assert "    us-east: SLI " in out
    print(f"\nticket at {ticket.at:.0f}, page at {page.at:.0f}, stale at {stale.at:.0f} (monotonic s)")
    print(out)
