"""The `slo` command as users type it: every subcommand reached through `slo.cli.main`.

The subcommands' own behaviour is tested in their modules; here the dispatch, the usage
text and each command's exit code contract through the one entry point.
"""

from __future__ import annotations

import json
import re
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from devstack.daemons import free_port
from slo.cli import main

ROOT = Path(__file__).resolve().parent.parent
CONFIG = str(ROOT / "monitoring.yaml")

#: The commands the docs document: a contract, written here independently of the table.
DOCUMENTED = [
    "reference-stack",
    "load",
    "rules",
    "budget",
    "dashboard",
    "gate",
    "validate",
    "init",
    "report",
    "retire",
    "run",
    "maintenance",
]

PASSING_JUNIT = """<testsuites><testsuite name="pytest" tests="1">
<testcase classname="probes.test_health" name="test_api_health" time="0.1"/>
</testsuite></testsuites>
"""


def test_usage_lists_each_documented_command_on_its_own_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    listed = re.findall(r"^  (\S+)  +\S", out, flags=re.MULTILINE)
    assert listed == DOCUMENTED


def test_version_is_the_installed_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"slo {version('slo-probes')}\n"


def test_no_command_or_an_unknown_one_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "commands:" in capsys.readouterr().out
    assert main(["gat"]) == 2
    assert capsys.readouterr().err.startswith("slo: unknown command 'gat'")


@pytest.mark.parametrize("command", DOCUMENTED)
def test_each_command_answers_help_under_its_own_name(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: slo {command} ")


def test_slo_rules_writes_the_rule_file(tmp_path: Path) -> None:
    output = tmp_path / "slo-rules.yml"
    assert main(["rules", "--config", CONFIG, "-o", str(output)]) == 0
    groups = {group["name"] for group in yaml.safe_load(output.read_text())["groups"]}
    assert {"slo:api-availability", "slo:api-availability:window"} <= groups


def test_slo_dashboard_writes_the_dashboard(tmp_path: Path) -> None:
    output = tmp_path / "dashboard.json"
    assert main(["dashboard", "--config", CONFIG, "-o", str(output)]) == 0
    assert json.loads(output.read_text())["panels"]


def test_slo_budget_without_a_prometheus_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["budget", "--config", CONFIG]) == 4
    assert capsys.readouterr().err == "slo budget: give --prometheus URL or set PROMETHEUS_URL\n"


def test_slo_budget_with_prometheus_down_fails_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["budget", "--config", CONFIG, "--prometheus", url]) == 1
    assert capsys.readouterr().err.startswith(f"slo budget: Prometheus at {url}: ")


def test_slo_gate_passes_and_fails_on_the_probe_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junit = tmp_path / "junit.xml"
    junit.write_text(PASSING_JUNIT)
    output = tmp_path / "gate.json"
    assert main(["gate", "--config", CONFIG, "--junit", str(junit), "--output", str(output)]) == 0
    assert json.loads(output.read_text())["verdict"] == "pass"
    junit.write_text(PASSING_JUNIT.replace('time="0.1"/>', '><failure message="down"/></testcase>'))
    assert main(["gate", "--config", CONFIG, "--junit", str(junit), "--output", str(output)]) == 1
    assert json.loads(output.read_text())["verdict"] == "fail"
    assert "junit" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["rules", "budget", "dashboard", "gate", "load", "report"])
def test_a_bad_flag_is_one_line_and_usage_error_4(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--no-such-flag"])
    assert exited.value.code == 4
    assert capsys.readouterr().err == f"slo {command}: unrecognized arguments: --no-such-flag\n"


def test_slo_load_finds_the_locustfile_beside_the_config_not_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "monitoring.yaml").write_text(Path(CONFIG).read_text())
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "load").mkdir(parents=True)
    (elsewhere / "load" / "locustfile.py").write_text("")  # the wrong project's: never used
    monkeypatch.chdir(elsewhere)
    assert main(["load", "--config", str(project / "monitoring.yaml")]) == 4
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(f"{project / 'load' / 'locustfile.py'}: locustfile not found (use --locustfile)")
    )


def test_slo_reference_stack_without_the_development_package_is_one_line_and_exit_4(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # An installed wheel has no devstack: importing it then fails as it does here.
    for name in [name for name in sys.modules if name == "devstack" or name.startswith("devstack.")]:
        monkeypatch.delitem(sys.modules, name)
    without = [entry for entry in sys.path if not (Path(entry or ".").resolve() / "devstack").is_dir()]
    monkeypatch.setattr(sys, "path", without)
    assert main(["reference-stack", "--help"]) == 4
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "slo reference-stack: needs the development package devstack, which only a checkout "
        "of the project has (run `make setup` there)\n"
    )
