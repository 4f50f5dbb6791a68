"""The `load:` section and `slo load`'s command line: every mistake is one line, status 4."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from slo.config import ConfigError, load_config
from slo.loadgate import cli

#: The project's scenarios: the temporary configs below have no load/ of their own.
LOCUSTFILE = Path(__file__).resolve().parents[1] / "load" / "locustfile.py"

BASE = """\
environments:
  local:
    targets:
      api: {url: "http://127.0.0.1:9"}
"""


def config_file(tmp_path: Path, load: str = "") -> Path:
    path = tmp_path / "monitoring.yaml"
    path.write_text(BASE + (f"load:\n{load}" if load else ""))
    return path


def test_defaults_are_the_seed_slos(tmp_path: Path) -> None:
    load = load_config(config_file(tmp_path)).load
    assert (load.total.p95, load.total.error_rate, load.total.min_requests) == (2.0, 0.05, 59)
    assert load.confidence == 0.95
    assert load.cpu_saturation == "warn"


def test_units_as_people_write_them(tmp_path: Path) -> None:
    load = load_config(
        config_file(
            tmp_path,
            "  warmup: 500ms\n  confidence: 99\n"
            '  endpoints: {"GET /health": {p99: 1s, error_rate: "0.5%"}}\n',
        )
    ).load
    assert load.warmup == 0.5
    assert load.confidence == 0.99
    assert load.endpoints["GET /health"].p99 == 1.0
    assert load.endpoints["GET /health"].error_rate == 0.005


@pytest.mark.parametrize(
    ("load", "message"),
    [
        ('  endpoints: {"/health": {p95: 1s}}\n', "load.endpoints: endpoint '/health': write it as"),
        ("  think_time_min: 2s\n  think_time_max: 1s\n", "load: think_time_min must not exceed"),
        ("  duration: 0s\n", "load.duration: duration must be more than 0s"),
        ("  confidence: 100\n", "load.confidence: confidence must be at least 50 and below 100"),
        ("  scenarios: {api_health: 0}\n", "at least one scenario needs a weight above 0"),
        ("  scenarios: {api_health: -1}\n", "load.scenarios.api_health: Input should be greater"),
        ("  total: {p95: 2x}\n", "load.total.p95: invalid duration '2x'"),
        ("  total: {p59: 2s}\n", "load.total.p59: unknown key"),
        ("  cpu_saturation: fail\n", "load.cpu_saturation: Input should be 'warn' or"),
        ("  stream_timeout: 0s\n", "load.stream_timeout: stream_timeout must be more than 0s"),
        (
            '  endpoints: {"POST /v1/chat/completions": {ttft_p95: 2x}}\n',
            "load.endpoints.POST /v1/chat/completions.ttft_p95: invalid duration '2x'",
        ),
        (
            '  endpoints: {"POST /v1/chat/completions": {tokens_per_second_p50: 0}}\n',
            "load.endpoints.POST /v1/chat/completions.tokens_per_second_p50: Input should be greater than 0",
        ),
        ("  total: {tokens_per_second_p95: 20}\n", "load.total.tokens_per_second_p95: unknown key"),
    ],
)
def test_mistakes_name_the_key(tmp_path: Path, load: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(config_file(tmp_path, load))
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--users", "0"], "argument --users: '0' is not a positive integer"),
        (["--spawn-rate", "fast"], "argument --spawn-rate: 'fast' is not a positive number"),
        (["--duration", "0s"], "argument --duration: '0s': must be more than 0s"),
        (["--warmup", "2x"], "argument --warmup: invalid duration '2x'"),
        (["--workers", "-1"], "argument --workers: '-1' is not a non-negative integer"),
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--env", "prod"], "environments: unknown environment 'prod' (known: local)"),
        (["--locustfile", "missing.py"], "missing.py: locustfile not found (use --locustfile)"),
        (["--pushgateway", "http://pg:99999"], "--pushgateway: invalid port in URL"),
        (["--pushgateway", "pg:9091"], "--pushgateway: invalid URL 'pg:9091'"),
    ],
)
def test_usage_errors_are_one_line_and_status_4(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    args = ["--config", str(config_file(tmp_path)), "--report-dir", str(tmp_path / "r")]
    args += ["--locustfile", str(LOCUSTFILE), *argv]  # a later --locustfile wins
    # A bad flag exits from the parser (slo.cliargs), a bad value found later is returned.
    status: int | str | None
    try:
        status = cli.main(args)
    except SystemExit as exited:
        status = exited.code
    assert status == 4
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("slo load: ")
    assert message in err
    assert err.count("\n") == 1


def test_a_missing_config_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLO_CONFIG", str(tmp_path / "nowhere.yaml"))
    assert cli.main([]) == 4
    assert "nowhere.yaml: config file not found" in capsys.readouterr().err


def test_the_gate_never_imports_locust() -> None:
    # Locust monkey-patches the process with gevent: the calling side must stay clean of it.
    code = (
        "import sys, slo.loadgate.cli, slo.loadgate.push\n"
        "leaked = sorted(m for m in sys.modules if m.split('.')[0] in ('locust', 'gevent'))\n"
        "print(leaked)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_locust_processes_import_no_probe_client_for_plain_requests() -> None:
    # Every Locust process (master and each worker) imports the locustfile's helpers: httpx
    # and pytest (the probe side's stream reader and error classifier) would nearly double
    # its start-up for scenarios that never stream or fail. They come in on first use.
    code = (
        "import sys, locust, slo.loadgate.users, slo.loadgate.recorder\n"
        "print(sorted(m for m in ('httpx', 'pytest', 'slo.probe.llm') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
