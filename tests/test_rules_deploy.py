"""deploy/: Alertmanager routing and inhibition, and the Prometheus config that loads the rules."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from devstack.daemons import Alertmanager
from slo.binaries import find_binary

ROOT = Path(__file__).resolve().parent.parent
ALERTMANAGER = ROOT / "deploy" / "alertmanager.yml"


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([find_binary("amtool"), *args], capture_output=True, text=True, check=False)


def test_amtool_accepts_the_config() -> None:
    result = amtool("check-config", str(ALERTMANAGER))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["alertname=ErrorBudgetBurn", "severity=page", "slo=api-availability"], "critical-alerts"),
        (["alertname=ErrorBudgetBurn", "severity=ticket", "slo=api-availability"], "warning-alerts"),
        (["alertname=ClaudeCodeServiceDown", "severity=critical"], "critical-alerts"),
        (["alertname=HighAPILatency", "severity=warning"], "warning-alerts"),
        (["alertname=SyntheticMaintenance", "severity=info", "target=api"], "notices"),
        (["alertname=Other"], "default"),
    ],
)
def test_severities_route_like_the_seed(labels: list[str], receiver: str) -> None:
    result = amtool("config", "routes", "test", f"--config.file={ALERTMANAGER}", *labels)
    assert result.stdout.strip() == receiver, result.stdout + result.stderr


def test_no_secret_is_written_in_the_config() -> None:
    config = yaml.safe_load(ALERTMANAGER.read_text(encoding="utf-8"))
    assert "smtp_auth_password" not in config["global"]
    assert config["global"]["smtp_auth_password_file"].startswith("/etc/alertmanager/secrets/")
    assert "slack_api_url" not in config["global"]
    text = ALERTMANAGER.read_text(encoding="utf-8")
    assert "hooks.slack.com" not in text
    assert "auth_password:" not in text


def _alert(severity: str) -> dict[str, Any]:
    labels = {
        "alertname": "ErrorBudgetBurn",
        "severity": severity,
        "slo": "api-availability",
        "environment": "prod",
    }
    return {"labels": labels, "annotations": {"summary": "test"}}


def test_a_page_inhibits_the_ticket_of_the_same_slo() -> None:
    config = yaml.safe_load(ALERTMANAGER.read_text(encoding="utf-8"))
    # Same routes and inhibition, but receivers that send nothing: a test never mails anyone.
    config["global"] = {"resolve_timeout": "5m"}
    config["receivers"] = [{"name": receiver["name"]} for receiver in config["receivers"]]
    with Alertmanager(yaml.safe_dump(config)) as manager, httpx.Client(trust_env=False, timeout=5) as client:
        client.post(
            f"{manager.url}/api/v2/alerts", json=[_alert("page"), _alert("ticket")]
        ).raise_for_status()
        other = _alert("ticket")
        other["labels"]["slo"] = "gateway-availability"
        client.post(f"{manager.url}/api/v2/alerts", json=[other]).raise_for_status()
        deadline = time.monotonic() + 20
        states: dict[tuple[str, str], str] = {}
        while time.monotonic() < deadline:
            alerts = client.get(f"{manager.url}/api/v2/alerts").json()
            states = {(a["labels"]["slo"], a["labels"]["severity"]): a["status"]["state"] for a in alerts}
            if states.get(("api-availability", "ticket")) == "suppressed":
                break
            time.sleep(0.2)
    assert states == {
        ("api-availability", "page"): "active",
        ("api-availability", "ticket"): "suppressed",
        ("gateway-availability", "ticket"): "active",
    }


def test_prometheus_config_loads_the_generated_rules() -> None:
    result = subprocess.run(
        [find_binary("promtool"), "check", "config", str(ROOT / "deploy" / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text(encoding="utf-8"))
    pushgateway = next(job for job in config["scrape_configs"] if job["job_name"] == "pushgateway")
    assert pushgateway["honor_labels"] is True
