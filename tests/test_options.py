"""One rule for every option of every entry point: flag > environment > ini > config > default,
an empty value is unset everywhere, and every value knows where it came from."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from slo import conventions
from slo.options import OPTIONS, Sources, add_cli_options, resolve, resolve_cli

REPO = Path(__file__).resolve().parents[1]


def test_each_source_beats_the_ones_after_it() -> None:
    everything = Sources(
        flags={"job": "flag-job"},
        environ={"SLO_JOB": "env-job"},
        ini={"slo_job": "ini-job"},
        config={"job": "file-job"},
    )
    assert resolve("job", everything).value == "flag-job"
    assert (
        resolve("job", Sources(environ={"SLO_JOB": "env-job"}, ini={"slo_job": "ini-job"})).value == "env-job"
    )
    assert resolve("job", Sources(ini={"slo_job": "ini-job"}, config={"job": "file-job"})).value == "ini-job"
    assert resolve("job", Sources(config={"job": "file-job"})).value == "file-job"
    assert resolve("job", Sources()) == resolve("job", Sources(config={"job": ""}))
    assert resolve("job", Sources()).value == conventions.JOB


@pytest.mark.parametrize(
    ("sources", "shown"),
    [
        (Sources(flags={"pushgateway": "http://pg"}, style="pytest"), "--pushgateway"),
        (Sources(flags={"config": "x.yaml"}, style="pytest"), "--slo-config"),
        (Sources(flags={"config": "x.yaml"}), "--config"),
        (Sources(environ={"SLO_CONFIG": "x.yaml"}), "SLO_CONFIG environment variable"),
        (Sources(ini={"slo_config": "x.yaml"}), "slo_config in the pytest ini file"),
    ],
)
def test_a_value_names_its_source(sources: Sources, shown: str) -> None:
    name = "pushgateway" if "pushgateway" in sources.flags else "config"
    assert resolve(name, sources).source == shown


@pytest.mark.parametrize("source", ["flags", "environ", "ini"])
def test_an_empty_value_is_unset_in_every_source(source: str) -> None:
    key = {"flags": "env", "environ": "SLO_ENV", "ini": "slo_env"}[source]
    resolved = resolve("env", Sources(**{source: {key: ""}}))  # type: ignore[arg-type]
    assert resolved.value == conventions.ENVIRONMENT
    assert resolved.source == "default"


def test_a_flag_not_given_does_not_hide_the_environment() -> None:
    assert resolve(
        "push_required", Sources(flags={"push_required": None}, environ={"SLO_PUSH_REQUIRED": "yes"})
    ).value
    assert resolve("no_push", Sources(flags={"no_push": False})).value is False


def test_a_bad_boolean_names_its_source() -> None:
    with pytest.raises(ValueError, match=r"^SLO_PUSH_REQUIRED environment variable: expected true or false"):
        resolve("push_required", Sources(environ={"SLO_PUSH_REQUIRED": "maybe"}))


def test_every_option_is_reachable_from_somewhere() -> None:
    for option in OPTIONS.values():
        assert option.flag or option.cli_flag or option.env, option.name


def test_cli_adapter_resolves_after_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    parser = argparse.ArgumentParser()
    add_cli_options(parser, ["config", "env", "prometheus"])
    monkeypatch.setenv("SLO_ENV", "")
    monkeypatch.setenv("PROMETHEUS_URL", "http://prom:9090")
    monkeypatch.delenv("SLO_CONFIG", raising=False)
    args = resolve_cli(parser.parse_args(["--config", "other.yaml"]))
    assert (args.config, args.env, args.prometheus) == ("other.yaml", "local", "http://prom:9090")


# --- the same precedence at every entry point ----------------------------------------------------

CONFIG = """
version: 1
environments:
  local: {targets: {api: {url: "http://127.0.0.1:9"}}}
  staging: {targets: {api: {url: "http://127.0.0.1:9"}}}
slos:
  - {name: api-availability, objective: 99.9, sli: {kind: probes, target: api}}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "monitoring.yaml").write_text(CONFIG)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_slo(argv: list[str]) -> tuple[int, str]:
    """`slo ...` in a subprocess, in the current directory and environment."""
    done = subprocess.run([sys.executable, "-m", "slo", *argv], capture_output=True, text=True, timeout=120)
    return done.returncode, done.stderr


def run_pytest(argv: list[str]) -> tuple[int, str]:
    args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:locust", *argv]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout + done.stderr


#: Each entry point with its own flag for the environment, and how it is started.
ENTRY_POINTS = {
    "slo rules": (run_slo, ["rules"], "--env"),
    "slo budget": (run_slo, ["budget", "--prometheus", "http://127.0.0.1:9"], "--env"),
    "slo gate": (run_slo, ["gate", "--min-budget", "0.5", "--prometheus", "http://127.0.0.1:9"], "--env"),
    "slo dashboard": (run_slo, ["dashboard"], "--env"),
    "slo load": (run_slo, ["load", "--locustfile", "missing.py"], "--env"),
    "pytest probes/": (run_pytest, ["probes", "--collect-only", "-q"], "--slo-env"),
    "pytest load/": (run_pytest, [str(REPO / "load"), "--rootdir", ".", "--collect-only", "-q"], "--slo-env"),
}


@pytest.fixture
def probe_project(project: Path) -> Path:
    (project / "probes").mkdir()
    (project / "probes" / "test_one.py").write_text("def test_one(slo_config):\n    pass\n")
    return project


@pytest.mark.slow
@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_every_entry_point_applies_the_same_precedence(
    probe_project: Path, monkeypatch: pytest.MonkeyPatch, entry: str
) -> None:
    run, argv, env_flag = ENTRY_POINTS[entry]
    # The environment variable is read...
    monkeypatch.setenv("SLO_ENV", "prod")
    code, output = run(argv)
    assert code == conventions.USAGE_ERROR, output
    assert "unknown environment 'prod' (known: local, staging)" in output
    # ...the flag beats it (the run gets past the config, whatever it does next)...
    code, output = run([*argv, env_flag, "staging"])
    assert "unknown environment" not in output
    # ...and an empty value means the default, not an environment named ''.
    monkeypatch.setenv("SLO_ENV", "")
    code, output = run(argv)
    assert "unknown environment" not in output, output
    assert code != conventions.USAGE_ERROR or "locustfile not found" in output, output
