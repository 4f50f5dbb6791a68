"""The whole chain with nothing stubbed: `pytest probes/` against the reference stack pushes
to a real Pushgateway, a real Prometheus scrapes it and evaluates the generated rules, and
`slo budget` and `slo gate` read the result.

This is the check that the metric contract holds between the parts: the plugin's labels, the
Pushgateway's spelling of bucket bounds (`le="2"`), the targets and probe globs of the SLIs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eventually import rules_evaluated_after, wait_for

from devstack.daemons import Prometheus, Pushgateway
from devstack.refstack import ReferenceStack
from slo.config import load_config
from slo.objectives.budget import main as budget_main
from slo.objectives.gate import main as gate_main
from slo.objectives.promql import PrometheusClient
from slo.objectives.rules.generate import render, rule_file

#: Slow: Prometheus, Pushgateway, stack and two probe runs.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "monitoring.yaml"


@dataclass
class Chain:
    prometheus_url: str
    client: PrometheusClient
    runs: list[subprocess.CompletedProcess[str]]


def probe_run(
    stack: ReferenceStack, pushgateway: str, state: Path, junit: Path
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "API_URL": stack.api_url,
        "GATEWAY_URL": stack.gateway_url,
        "SLO_STATE_FILE": str(state),
        "SLO_INSTANCE": "e2e",
    }
    command = [sys.executable, "-m", "pytest", "probes/", "-q", "-p", "no:cacheprovider"]
    command += ["--pushgateway", pushgateway, "--junitxml", str(junit), "--slo-env", "local"]
    # Disk and memory of this CI host are not the system under test here.
    command += ["--deselect", "probes/test_resources.py::test_runner_disk"]
    command += ["--deselect", "probes/test_resources.py::test_runner_memory"]
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False
    )


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    config = load_config(CONFIG, "local")
    work = tmp_path_factory.mktemp("e2e")
    rules = work / "slo-rules.yml"
    rules.write_text(render(rule_file(config.slos, config.budgets, config.pushgateway.job)), encoding="utf-8")
    with (
        ReferenceStack() as stack,
        Pushgateway() as gateway,
        Prometheus(scrape_targets={"pushgateway": gateway.url}, rule_files=[rules]) as prometheus,
        PrometheusClient(prometheus.url) as client,
    ):
        healthy = probe_run(stack, gateway.url, work / "state.json", work / "healthy.xml")
        wait_for(lambda: client.query("synthetic_probe_runs_total"), "the first scrape")
        stack.set_faults("api", error_rate=1, status=503)
        faulty = probe_run(stack, gateway.url, work / "state.json", work / "faulty.xml")
        wait_for(
            lambda: client.query('slo:sli_error:ratio{slo="api-availability",window="5m"} > 0'),
            "the rules to see the failed api probes",
        )
        yield Chain(prometheus.url, client, [healthy, faulty])


def test_the_probe_runs_pass_then_catch_the_fault(chain: Chain) -> None:
    healthy, faulty = chain.runs
    assert healthy.returncode == 0, healthy.stdout[-2000:]
    assert faulty.returncode == 1
    assert "api GET /health returned 503" in faulty.stdout
    assert "pushed" in healthy.stdout
    assert "pushed" in faulty.stdout


def test_every_rule_evaluates_on_the_real_metric_set(chain: Chain) -> None:
    rules_evaluated_after(chain.client, time.time())  # once more after the second push
    rules = [rule for group in chain.client.rule_groups() for rule in group["rules"]]
    broken = [(rule["name"], rule.get("lastError")) for rule in rules if rule["health"] != "ok"]
    assert broken == []


def test_slis_see_exactly_the_failing_targets(chain: Chain) -> None:
    query = chain.client.query
    [api] = query('slo:sli_error:ratio{slo="api-availability",window="5m"}')
    [sandbox] = query('slo:sli_error:ratio{slo="sandbox-availability",window="5m"}')
    [gateway] = query('slo:sli_error:ratio{slo="gateway-availability",window="5m"}')
    assert api.labels["environment"] == "local"
    assert 0 < api.value <= 1
    assert sandbox.value > 0, "the sandbox probe failed with the API: the *sandbox* glob matches it"
    assert gateway.value == 0, "the gateway never failed: a ratio of 0, not an absent series"
    # The probe latency histogram as the Pushgateway renders it (le="2") feeds its SLI.
    [latency] = query('slo:sli_error:ratio{slo="api-probe-latency",window="5m"}')
    assert latency.value == 0


def test_budget_and_gate_read_the_pushed_counters(
    chain: Chain, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert budget_main(["--config", str(CONFIG), "--prometheus", chain.prometheus_url, "--json"]) == 0
    rows = {row["slo"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["api-availability"]["budget_remaining"] < 0, "a failed run among two burns a 99.9 % budget"
    assert rows["gateway-availability"]["budget_remaining"] == 1
    base = ["--config", str(CONFIG), "--prometheus", chain.prometheus_url, "--min-budget", "0.25"]
    output = str(tmp_path / "gate.json")
    # Two runs are far too little of a 30-day window to judge a release on.
    assert gate_main([*base, "--slo", "gateway-availability", "--output", output]) == 1
    assert json.loads(Path(output).read_text())["conditions"][0]["insufficient_data"] is True
    base += ["--min-coverage", "0", "--min-events", "0"]
    assert gate_main([*base, "--slo", "gateway-availability", "--output", output]) == 0
    assert gate_main([*base, "--slo", "api-availability", "--output", output]) == 1
    assert json.loads(Path(output).read_text())["verdict"] == "fail"
