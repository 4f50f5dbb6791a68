"""The deployed pipeline, end to end, with short intervals and nothing stubbed.

`pytest probes/` runs on a loop against the reference stack and pushes to a real Pushgateway;
a real Prometheus scrapes it and evaluates the generated rules; a real Alertmanager routes the
alerts with the shipped `deploy/alertmanager.yml` (its receivers swapped for webhooks to a
loopback receiver, its routes, grouping, inhibition and `send_resolved` kept). In order:

1. healthy runs: no notification at all;
2. one bad run (every API probe of it failing): still nothing;
3. a total API outage: a page at the critical receiver naming the failing probes and reason;
4. recovery: a resolved notification for that page;
5. the loop stops: the `SyntheticProbesStale` ticket at the warning receiver.

The SLO window is one day and its windows may go down to 20 s (`alerting.shortest_window`),
so the whole story takes a few minutes; the alert policy is the shipped one, scaled. The
measured times are printed (``-s``) for the record; only generous deadlines are asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import yaml
from eventually import wait_for
from loopback import loopback_server, url_of

from devstack.daemons import Alertmanager, Prometheus, Pushgateway
from devstack.refstack import ReferenceStack
from slo.config import load_config
from slo.objectives.promql import PrometheusClient
from slo.objectives.rules.generate import render, rule_file

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_ALERTMANAGER = ROOT / "deploy" / "alertmanager.yml"
#: Several availability probes of the API (health, sandbox, two checks) and its budget probes.
PROBES = [
    "probes/test_health.py",
    "probes/test_sandbox.py",
    "probes/test_checks.py",
    "probes/test_metrics_endpoint.py",
]
#: Longer than the slowest run's gap between pushes: on a machine at load 10 one `pytest
#: probes/...` took over 15 s, and the stale ticket then fired, rightly, in the healthy phase.
STALE_AFTER = 45

CONFIG = """
environments:
  local:
    targets:
      api: {{url: "{api}", timeout: 2s}}
checks:
  - {{name: api-health-status, target: api, path: /health, json: {{status: healthy}}, slo: api-availability}}
  - name: sandbox-status
    target: api
    path: /sandbox/status
    json: {{status: ok}}
    slo: sandbox-availability
pushgateway: {{job: synthetic-probes, timeout: 2s, deadline: 4s}}
slos:
  - name: api-availability
    objective: 99.9
    window: 1d
    runbook: https://runbooks.example.com/api-availability
    alerting: {{shortest_window: 20s}}
    sli: {{kind: probes, target: api}}
  - name: sandbox-availability
    objective: 99.9
    window: 1d
    alerting: {{shortest_window: 20s}}
    sli: {{kind: probes, target: api, probe: "*sandbox*"}}
budgets:
  probes_stale_after: {stale}s
"""


@dataclass
class Notification:
    at: float
    receiver: str
    body: dict[str, Any]

    @property
    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self.body["alerts"]
        return alerts


@dataclass
class Webhook:
    """Every notification Alertmanager posted, by receiver (the URL path)."""

    received: list[Notification] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, receiver: str, body: dict[str, Any]) -> None:
        with self.lock:
            self.received.append(Notification(time.monotonic(), receiver, body))

    def all(self) -> list[Notification]:
        with self.lock:
            return list(self.received)

    def wait_for(self, match: Callable[[Notification], bool], what: str, timeout: float) -> Notification:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [n for n in self.all() if match(n)]
            if found:
                return found[0]
            time.sleep(0.2)
        raise AssertionError(f"no {what} within {timeout:.0f} s; received: {self.summary()}")

    def summary(self) -> list[tuple[str, str, list[str]]]:
        return [
            (n.receiver, n.body["status"], [a["labels"]["alertname"] for a in n.alerts]) for n in self.all()
        ]


def webhook_handler(webhook: Webhook) -> type[BaseHTTPRequestHandler]:
    class Receive(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = min(int(self.headers.get("Content-Length", "0")), 1_000_000)
            webhook.add(self.path.strip("/"), json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Receive


def shipped_routing(webhook_url: str) -> str:
    """deploy/alertmanager.yml with every receiver posting to the webhook instead of mail and
    Slack (one that notifies no one still does not); routes, grouping, inhibition and each
    receiver's send_resolved are as shipped."""
    config = yaml.safe_load(SHIPPED_ALERTMANAGER.read_text(encoding="utf-8"))
    config["global"] = {"resolve_timeout": config["global"]["resolve_timeout"]}
    for receiver in config["receivers"]:
        configs = [c for key, value in receiver.items() if key.endswith("_configs") for c in value]
        if not configs:
            continue  # a receiver that notifies no one (the maintenance notices) stays silent
        send_resolved = all(c.get("send_resolved") is True for c in configs)
        name = receiver["name"]
        receiver.clear()
        receiver.update(
            name=name, webhook_configs=[{"url": f"{webhook_url}/{name}", "send_resolved": send_resolved}]
        )
    return yaml.safe_dump(config, sort_keys=False)


def host(url: str) -> str:
    return url.removeprefix("http://")


def prometheus_config(pushgateway: str, alertmanager: str, rules: Path) -> str:
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [host(alertmanager)]}]}]},
        "scrape_configs": [
            {
                "job_name": "pushgateway",
                "honor_labels": True,
                "static_configs": [{"targets": [host(pushgateway)]}],
            }
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)


class ProbeLoop:
    """`pytest probes/...` again and again, as a timer would run it, until stopped.

    `fail_once()` injects an API outage for exactly one run; `outage()` / `recover()` for as
    long as it lasts. Every run's finish time and exit code are kept.
    """

    def __init__(
        self,
        stack: ReferenceStack,
        pushgateway: str,
        config: Path,
        state: Path,
        probes: Sequence[str] = PROBES,
    ) -> None:
        self.stack = stack
        self.command = [sys.executable, "-m", "pytest", *probes, "-q", "-p", "no:cacheprovider"]
        self.command += ["--slo-config", str(config), "--pushgateway", pushgateway, "--slo-state", str(state)]
        self.command += ["--junitxml", str(state.with_suffix(".xml"))]
        self.env = {
            k: v for k, v in os.environ.items() if k not in ("PUSHGATEWAY_URL", "SLO_ENV", "SLO_CONFIG")
        }
        self.env["SLO_INSTANCE"] = "pipeline"
        self.runs: list[tuple[float, int]] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.one_bad_run = False
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> float:
        """Stop after the current run; the time of the last run's end (its push)."""
        self.stopping.set()
        self.thread.join(timeout=150)
        return self.runs[-1][0]

    def fail_once(self) -> None:
        with self.lock:
            self.one_bad_run = True
        self.wait_runs(self.count() + 2)  # the bad run and one healthy run after it

    def count(self) -> int:
        with self.lock:
            return len(self.runs)

    def wait_runs(self, count: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.count() < count:
            assert self.thread.is_alive(), "the probe loop died"
            assert time.monotonic() < deadline, f"fewer than {count} probe runs in {timeout} s"
            time.sleep(0.1)

    def _loop(self) -> None:
        while not self.stopping.is_set():
            with self.lock:
                bad, self.one_bad_run = self.one_bad_run, False
            if bad:
                self.stack.set_faults("api", error_rate=1, status=503)
            run = subprocess.run(
                self.command, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120, check=False
            )
            if bad:
                self.stack.clear_faults("api")
            with self.lock:
                self.runs.append((time.monotonic(), run.returncode))


@pytest.fixture(scope="module")
def pipeline(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ReferenceStack, ProbeLoop, Webhook, PrometheusClient]]:
    work = tmp_path_factory.mktemp("pipeline")
    webhook = Webhook()
    with (
        ReferenceStack(env={"REFSTACK_API_KEY": ""}) as stack,
        loopback_server(webhook_handler(webhook)) as hook,
    ):
        config = work / "monitoring.yaml"
        config.write_text(CONFIG.format(api=stack.api_url, stale=STALE_AFTER), encoding="utf-8")
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
                yield stack, loop, webhook, client
            finally:
                loop.stopping.set()
                loop.thread.join(timeout=150)


def burn_alerts(client: PrometheusClient) -> list[str]:
    return [a.labels["alertstate"] for a in client.query('ALERTS{alertname="ErrorBudgetBurn"}')]


def test_the_pipeline_pages_on_an_outage_and_only_then(
    pipeline: tuple[ReferenceStack, ProbeLoop, Webhook, PrometheusClient],
) -> None:
    stack, loop, webhook, client = pipeline
    times: dict[str, float] = {}

    # 1. Healthy runs, then long enough for any alert to be sent (group_wait 10 s): silence.
    loop.wait_runs(4)
    assert [run for run in loop.runs if run[1] != 0] == [], "the healthy stack passes every probe"
    # Pushed is not yet scraped: on a loaded CI machine the first scrapes lag the runs.
    wait_for(lambda: client.query('synthetic_target_runs_total{target="api"} > 1'), "the run counters")
    time.sleep(12)
    assert webhook.all() == []

    # 2. One bad run, all of its API probes failing: no alert, not even pending.
    loop.fail_once()
    assert any(code != 0 for _, code in loop.runs[-2:]), "the bad run failed"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert burn_alerts(client) == [], "one bad run must raise nothing"
        time.sleep(1)
    assert webhook.all() == []

    # 3. Total outage: a page at the critical receiver naming the failing probes.
    stack.set_faults("api", error_rate=1, status=503)
    fault = time.monotonic()
    page = webhook.wait_for(
        lambda n: (
            n.receiver == "critical-alerts"
            and n.body["status"] == "firing"
            and n.body["groupLabels"].get("slo") == "api-availability"
        ),
        "page",
        timeout=120,
    )
    times["fault -> page"] = page.at - fault
    runs_to_page = sum(1 for at, code in loop.runs if at > fault and code != 0)
    alert = page.alerts[0]
    assert alert["labels"]["alertname"] == "ErrorBudgetBurn"
    assert alert["labels"]["severity"] == "page"
    assert alert["labels"]["slo"] == "api-availability"
    assert alert["annotations"]["runbook"] == "https://runbooks.example.com/api-availability"
    failing = alert["annotations"]["failing"]
    assert (
        "probes/test_health.py::test_api_health on pipeline: overloaded: api GET /health returned 503"
        in failing
    )
    assert "test_metrics_endpoint" not in failing, "budget probes do not feed availability"
    assert not [n for n in webhook.all() if n.receiver == "warning-alerts" and n.at < page.at], (
        "no ticket before the page"
    )

    # 4. Recovery: the page resolves.
    stack.clear_faults("api")
    recovered = time.monotonic()
    resolved = webhook.wait_for(
        lambda n: (
            n.receiver == "critical-alerts"
            and n.body["status"] == "resolved"
            and n.body["groupLabels"].get("slo") == "api-availability"
        ),
        "resolved page",
        timeout=240,
    )
    times["recovery -> resolved"] = resolved.at - recovered
    assert {a["labels"]["slo"] for a in resolved.alerts} == {"api-availability"}

    # 5. The loop stops: the stale ticket.
    last_push = loop.stop()
    stale = webhook.wait_for(
        lambda n: (
            n.receiver == "warning-alerts"
            and n.body["status"] == "firing"
            and any(a["labels"]["alertname"] == "SyntheticProbesStale" for a in n.alerts)
        ),
        "stale ticket",
        timeout=STALE_AFTER + 90,
    )
    times["stop -> stale"] = stale.at - last_push
    [stale_alert] = [a for a in stale.alerts if a["labels"]["alertname"] == "SyntheticProbesStale"]
    assert stale_alert["labels"]["instance"] == "pipeline"
    assert stale_alert["annotations"]["runbook"]

    print(f"\npipeline times (s): {json.dumps({k: round(v, 1) for k, v in times.items()})}")
    print(f"failed runs before the page: {runs_to_page}")
    print(f"page payload: {json.dumps(page.body, indent=1)}")
