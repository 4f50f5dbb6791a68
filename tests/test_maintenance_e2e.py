"""A maintenance window in the deployed pipeline, end to end, with nothing stubbed.

The plumbing of `test_pipeline_e2e`: `pytest probes/` on a loop against the reference stack,
a real Pushgateway, Prometheus evaluating the generated rules, Alertmanager routing with the
shipped `deploy/alertmanager.yml` to a loopback webhook. In order:

1. a configured window opens for the API and the API goes down at once: for the whole window
   the probes fail, the run counters stand still, the `SyntheticMaintenance` notice is
   firing in Prometheus, and nothing at all reaches the webhook;
2. the window ends with the API still down: the page arrives, as for any outage.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from eventually import wait_for
from loopback import loopback_server, url_of
from test_pipeline_e2e import (
    CONFIG,
    ProbeLoop,
    Webhook,
    prometheus_config,
    shipped_routing,
    webhook_handler,
)

from devstack.daemons import Alertmanager, Prometheus, Pushgateway
from devstack.refstack import ReferenceStack
from slo.config import load_config
from slo.objectives.promql import PrometheusClient
from slo.objectives.rules.generate import render, rule_file

pytestmark = pytest.mark.slow

STALE_AFTER = 45
#: Longer than a total outage takes to page here (the pipeline test measured about a minute).
WINDOW = 100

MAINTENANCE = """
maintenance:
  - name: db-upgrade
    targets: [api]
    start: "{start}"
    duration: {duration}s
"""


def write_config(path: Path, api: str, start: float) -> None:
    text = CONFIG.format(api=api, stale=STALE_AFTER)
    window = MAINTENANCE.format(start=datetime.fromtimestamp(start, UTC).isoformat(), duration=WINDOW)
    path.write_text(text + window, encoding="utf-8")


Pipeline = tuple[ReferenceStack, ProbeLoop, Webhook, PrometheusClient, Path]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    work = tmp_path_factory.mktemp("maintenance")
    webhook = Webhook()
    with (
        ReferenceStack(env={"REFSTACK_API_KEY": ""}) as stack,
        loopback_server(webhook_handler(webhook)) as hook,
    ):
        config = work / "monitoring.yaml"
        # A window that ended long ago, until the test opens one.
        write_config(config, stack.api_url, time.time() - 86400)
        slo_config = load_config(config, "local")
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
            loop = ProbeLoop(stack, gateway.url, config, work / "state.json")
            loop.start()
            try:
                yield stack, loop, webhook, client, config
            finally:
                loop.stopping.set()
                loop.thread.join(timeout=150)


def api_runs(client: PrometheusClient) -> float:
    (sample,) = client.query('synthetic_target_runs_total{target="api",slo=""}')
    return sample.value


def test_an_outage_inside_a_window_raises_nothing_and_pages_after_it(pipeline: Pipeline) -> None:
    stack, loop, webhook, client, config = pipeline
    loop.wait_runs(3)
    wait_for(lambda: client.query('synthetic_target_runs_total{target="api",slo=""} > 1'), "the run counters")
    wait_for(lambda: client.query('synthetic_maintenance{target="api"} == 0'), "the maintenance flag at 0")

    # 1. The window opens and the API goes down with it.
    opened, closes = time.time(), time.monotonic() + WINDOW
    write_config(config, stack.api_url, opened)
    stack.set_faults("api", error_rate=1, status=503)
    first = loop.count()
    loop.wait_runs(first + 1)
    wait_for(lambda: client.query('synthetic_maintenance{target="api"} == 1'), "the maintenance flag at 1")
    counted = api_runs(client)
    wait_for(
        lambda: client.query('ALERTS{alertname="SyntheticMaintenance",alertstate="firing",target="api"}'),
        "the maintenance notice",
    )
    time.sleep(max(0.0, closes - 5 - time.monotonic()))
    inside = [code for _, code in loop.runs[first + 1 :]]
    assert len(inside) >= 3, "the window saw several runs"
    assert all(code != 0 for code in inside), "the API's probes failed in every run of the window"
    assert api_runs(client) == counted, "no run of the window was an SLI event"
    assert webhook.all() == [], "nothing reaches anyone during a window"

    # 2. The window ends, the API is still down: the page, as for any outage.
    page = webhook.wait_for(
        lambda n: (
            n.receiver == "critical-alerts"
            and n.body["status"] == "firing"
            and n.body["groupLabels"].get("slo") == "api-availability"
        ),
        "page after the window",
        timeout=WINDOW + 150,
    )
    assert page.at > closes, "the page came after the window"
    assert page.alerts[0]["labels"]["alertname"] == "ErrorBudgetBurn"
    assert api_runs(client) > counted, "the runs after the window count again"
    stack.clear_faults("api")
