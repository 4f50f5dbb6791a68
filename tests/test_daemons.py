"""The daemon helpers run the real Debian binaries, report failures in one clear message and
always leave nothing running behind."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest

from devstack.daemons import (
    Alertmanager,
    DaemonError,
    Prometheus,
    Pushgateway,
    free_port,
)
from slo.binaries import BinaryNotFoundError, find_binary

EXPOSITION = """\
# TYPE synthetic_probe_runs_total counter
synthetic_probe_runs_total{probe="probes/test_health.py::test_api",target="api",slo=""} 7
"""


def _client() -> httpx.Client:
    return httpx.Client(timeout=5.0, trust_env=False)


def _is_listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_find_binary_names_the_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(
        BinaryNotFoundError,
        match=r"amtool not found on PATH: install the Debian "
        r"package prometheus-alertmanager",
    ):
        find_binary("amtool")


def test_find_binary_returns_an_absolute_path() -> None:
    assert Path(find_binary("promtool")).is_absolute()


def test_missing_binary_fails_before_starting_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(DaemonError, match="prometheus-pushgateway"), Pushgateway():
        pass


def test_pushgateway_accepts_a_push_and_stops_on_exit() -> None:
    with Pushgateway() as gateway, _client() as client:
        port = gateway.port
        pushed = client.put(
            f"{gateway.url}/metrics/job/synthetic-probes/environment/local/instance/test",
            content=EXPOSITION,
        )
        assert pushed.status_code == 200, pushed.text
        scraped = client.get(f"{gateway.url}/metrics").text
        assert 'synthetic_probe_runs_total{environment="local",instance="test"' in scraped
    assert not _is_listening(port)


def test_pushgateway_stops_when_the_body_raises() -> None:
    ports = []

    def use_and_fail() -> None:
        with Pushgateway() as gateway:
            ports.append(gateway.port)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        use_and_fail()
    assert not _is_listening(ports[0])


def test_a_taken_port_chosen_by_the_caller_fails_with_the_binary_log() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        with pytest.raises(DaemonError, match=r"(?s)exited with code \d+.*address already in use"):
            Pushgateway(port=taken).start()


def test_a_bad_flag_fails_with_the_binary_log() -> None:
    with pytest.raises(DaemonError, match=r"(?s)prometheus-pushgateway exited.*no-such-flag"):
        Pushgateway(extra_args=["--no-such-flag"]).start()


def test_startup_deadline_is_enforced() -> None:
    # A ready path that never answers 200 stands in for a daemon that hangs during startup.
    class NeverReady(Pushgateway):
        ready_path = "/never-ready"

    started = time.monotonic()
    with pytest.raises(DaemonError, match=r"not ready on http://127\.0\.0\.1:\d+ within 0\.5s"):
        NeverReady(startup_timeout=0.5).start()
    assert time.monotonic() - started < 10


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


@pytest.mark.slow
def test_prometheus_scrapes_the_pushgateway_and_loads_rules(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(
        "groups:\n- name: t\n  rules:\n  - record: job:runs:max\n"
        "    expr: max by (job) (synthetic_probe_runs_total)\n",
        encoding="utf-8",
    )
    with (
        Pushgateway() as gateway,
        Prometheus(
            scrape_targets={"pushgateway": gateway.url}, rule_files=[rules], evaluation_interval=0.5
        ) as prom,
        _client() as client,
    ):
        client.put(
            f"{gateway.url}/metrics/job/synthetic-probes/environment/local/instance/test",
            content=EXPOSITION,
        ).raise_for_status()
        deadline = time.monotonic() + 20
        result: list[dict[str, object]] = []
        while not result and time.monotonic() < deadline:
            response = client.get(f"{prom.url}/api/v1/query", params={"query": "job:runs:max"})
            result = response.json()["data"]["result"]
            time.sleep(0.2)
        # honor_labels keeps the pushed job label instead of the scrape job's name.
        assert result
        assert result[0]["metric"] == {
            "__name__": "job:runs:max",
            "job": "synthetic-probes",
        }
        assert result[0]["value"][1] == "7"  # type: ignore[index]
        workdir = prom.workdir
    assert not workdir.exists()


def test_prometheus_rejects_a_bad_config_with_its_own_message() -> None:
    with pytest.raises(DaemonError, match=r"(?s)prometheus exited.*not_a_key"):
        Prometheus("global:\n  not_a_key: 1\n").start()


def test_prometheus_wants_config_text_or_targets_not_both() -> None:
    with pytest.raises(DaemonError, match="either config_text or scrape_targets"):
        Prometheus("global: {}\n", scrape_targets={"x": "http://127.0.0.1:1"})


def test_alertmanager_starts_with_a_config() -> None:
    config = "route: {receiver: default}\nreceivers: [{name: default}]\n"
    with Alertmanager(config) as manager, _client() as client:
        status = client.get(f"{manager.url}/api/v2/status").json()
        assert status["config"]["original"].startswith("global:")
