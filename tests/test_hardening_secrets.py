"""Marker secrets never appear in any output of a run against a target that echoes them.

The whole probe suite, `slo load`, `slo gate` and `slo budget` run against
:class:`tests.hostile.HostileServer` (every answer a 401 echoing the request line and its
headers), with a token, a secret header, a URL password, a query-string key, and Pushgateway
and Prometheus passwords, each a unique marker. Then every stream and every file they wrote
is searched for each marker in its plain, percent-encoded and Basic-auth forms: zero hits.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import yaml
from hostile import HostileServer
from probe_project import make_probe_project

from devstack.daemons import Pushgateway

REPO_ROOT = Path(__file__).resolve().parents[1]
SECRETS = {
    "API_TOKEN": "tok-MARK-91c2e4",
    "API_KEY": "hdr-MARK-5d7a10",
    "API_PASSWORD": "pw-MARK-b8e3f6",
    "GATEWAY_TOKEN": "gtok-MARK-0aa4c9",
    "QUERY_KEY": "qk-MARK-77d0b2",
    "PG_PASSWORD": "pgpw-MARK-3c6e18",
    "PROM_PASSWORD": "prompw-MARK-e41f5a",
}


def forms(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), base64.b64encode(f"user:{secret}".encode()).decode()}


def hits(text: str) -> list[str]:
    return [name for name, secret in SECRETS.items() for form in forms(secret) if form in text]


def hits_in_files(root: Path) -> dict[str, list[str]]:
    found = {}
    for path in root.rglob("*"):
        if path.is_file() and ".venv" not in path.parts:
            names = hits(path.read_bytes().decode("utf-8", errors="replace"))
            if names:
                found[str(path.relative_to(root))] = names
    return found


@pytest.fixture
def echo() -> Iterator[HostileServer]:
    with HostileServer() as elsewhere, HostileServer(redirect_to=elsewhere.url) as server:
        yield server
        assert elsewhere.requests == []  # nothing was sent to another origin


def _config(echo: HostileServer) -> dict[str, object]:
    host = echo.url.removeprefix("http://")
    return {
        "environments": {
            "local": {
                "targets": {
                    "api": {
                        "url": f"http://user:${{API_PASSWORD}}@{host}",
                        "token": "${API_TOKEN}",
                        "headers": {"X-Api-Key": "${API_KEY}"},
                        "timeout": "1s",
                    },
                    "gateway": {
                        "url": echo.url,
                        "token": "${GATEWAY_TOKEN}",
                        "timeout": "1s",
                        "stream": True,
                    },
                }
            }
        },
        "probes": {
            "latency": {
                "samples": 3,
                "endpoints": [{"target": "api", "path": "/health?key=${QUERY_KEY}"}],
            },
            "resources": {"disk": 100, "memory": 100},
        },
        "checks": [
            {"name": "echo-query", "url": f"{echo.url}/status?key=${{QUERY_KEY}}", "json": {"status": "ok"}},
            {"name": "redirect", "target": "api", "path": "/redirect"},
        ],
        "load": {
            "users": 2,
            "spawn_rate": 20,
            "warmup": "200ms",
            "duration": "2s",
            "think_time_min": "50ms",
            "think_time_max": "100ms",
            "scenarios": {"api_health": 1, "sandbox_status": 0, "chat_completion": 1},
        },
    }


@pytest.mark.slow
def test_no_secret_in_any_output(
    pytester: pytest.Pytester, echo: HostileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    for name in ("PUSHGATEWAY_URL", "SLO_CONFIG", "SLO_ENV", "SLO_INSTANCE", "PROMETHEUS_URL"):
        monkeypatch.delenv(name, raising=False)
    make_probe_project(pytester, None)
    config = yaml.safe_load((pytester.path / "monitoring.yaml").read_text(encoding="utf-8"))
    config.update(_config(echo))
    config["pushgateway"] = {"url": ""}
    (pytester.path / "monitoring.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    outputs: list[str] = []

    with Pushgateway() as pushgateway:
        push_url = pushgateway.url.replace("://", f"://user:{SECRETS['PG_PASSWORD']}@")
        state = pytester.path / "state.json"
        probes = pytester.runpytest_subprocess(
            "probes/", "--pushgateway", push_url, "--slo-state", str(state), "-rA",
            "--alluredir", "reports/allure", timeout=240,
        )  # fmt: skip
        outputs += [probes.stdout.str(), probes.stderr.str()]
        assert state.exists()
        assert "pushed" in probes.stdout.str()
        outputs.append(httpx.get(f"{pushgateway.url}/metrics", timeout=10).text)
    # The echoing target makes the probes fail: the test is about what the failures say.
    assert "returned 401" in probes.stdout.str()

    prometheus = f"http://user:{SECRETS['PROM_PASSWORD']}@127.0.0.1:9"
    env = {**os.environ, "PROMETHEUS_URL": prometheus}
    commands = [
        ["gate", "--junit", "reports/junit.xml", "--min-budget", "0.1", "--output", "reports/gate.json"],
        ["budget"],
        ["budget", "--prometheus", "http://127.0.0.1:9/?password=" + SECRETS["PROM_PASSWORD"]],
        ["load", "--locustfile", str(REPO_ROOT / "load" / "locustfile.py"), "--report-dir", "reports/load"],
        # Locust's own output on the terminal, relayed line by line.
        [
            "load",
            "--locustfile",
            str(REPO_ROOT / "load" / "locustfile.py"),
            "--report-dir",
            "reports/v",
            "--verbose",
        ],
    ]
    for arguments in commands:
        done = subprocess.run(
            [sys.executable, "-m", "slo", *arguments],
            capture_output=True, text=True, timeout=180, cwd=pytester.path, env=env, check=False,
        )  # fmt: skip
        assert done.returncode != 4, done.stderr
        outputs += [done.stdout, done.stderr]
    assert (pytester.path / "reports" / "gate.json").exists()
    assert any((pytester.path / "reports" / "allure").glob("*-result.json"))
    assert (pytester.path / "reports" / "load" / "summary.json").exists()

    stream_hits = [name for text in outputs for name in hits(text)]
    assert stream_hits == []
    assert hits_in_files(pytester.path) == {}
