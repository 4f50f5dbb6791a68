"""`slo validate`, the secret-free loading of `slo rules` / `slo dashboard`, and probe markers
whose names the config does not know (the plugin stops the run, naming them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from probe_project import INI, SHIPPED_CONFIG

from slo.cli import main
from slo.config import ConfigError, load_config
from slo.config.loader import validate_config

PROBES = SHIPPED_CONFIG.parent / "probes"


def _config(tmp_path: Path, edit: dict[str, object] | None = None) -> Path:
    config = yaml.safe_load(SHIPPED_CONFIG.read_text())
    for dotted, value in (edit or {}).items():
        *parents, key = dotted.split(".")
        node = config
        for part in parents:
            node = node[part]
        node[key] = value
    path = tmp_path / "monitoring.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_the_shipped_config_and_probes_validate_without_any_secret(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # clean_environment: no STAGING_API_TOKEN, which staging requires
    assert main(["validate", "--config", str(SHIPPED_CONFIG), "--probes", str(PROBES)]) == 0
    assert "every environment is valid" in capsys.readouterr().out


def test_a_typo_in_an_environment_not_selected_is_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = yaml.safe_load(SHIPPED_CONFIG.read_text())
    config["environments"]["staging"]["targets"]["api"]["timout"] = "5s"
    path = tmp_path / "monitoring.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["validate", "--config", str(path)]) == 4
    assert capsys.readouterr().err.splitlines() == [
        f"{path}: environments.staging.targets.api.timout: unknown key"
    ]


def test_every_problem_of_every_environment_is_listed_once(tmp_path: Path) -> None:
    config = yaml.safe_load(SHIPPED_CONFIG.read_text())
    config["environments"]["local"]["targets"]["api"]["timeout"] = "5x"
    config["environments"]["staging"]["targets"]["gateway"]["stream"] = "sometimes"
    config["budgets"]["cpu"] = "lots"  # shared by every environment: said once
    path = tmp_path / "monitoring.yaml"
    path.write_text(yaml.safe_dump(config))
    _, problems = validate_config(path, environ={})
    assert sorted(line.split(": ")[1] for line in problems) == [
        "budgets.cpu",
        "environments.local.targets.api.timeout",
        "environments.staging.targets.gateway.stream",
    ]
    assert all(line.startswith(f"{path}: ") for line in problems)


def test_a_key_that_holds_an_unset_variable_is_not_judged(tmp_path: Path) -> None:
    path = _config(tmp_path, {"environments.staging.targets.api.url": "${STAGING_API_URL}"})
    config, problems = validate_config(path, environ={})
    assert problems == []
    assert config is not None


def test_a_missing_file_names_the_commands_own_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "--config", str(tmp_path / "nope.yaml")]) == 4
    assert "(use --config or SLO_CONFIG)" in capsys.readouterr().err
    assert main(["rules", "--config", str(tmp_path / "nope.yaml")]) == 4
    assert "(use --config or SLO_CONFIG)" in capsys.readouterr().err
    # A Locust worker has no flag: only SLO_CONFIG names its config.
    with pytest.raises(ConfigError, match=r"nope.yaml: config file not found \(set SLO_CONFIG\)$"):
        load_config(tmp_path / "nope.yaml", flag=None)


def test_probe_markers_with_unknown_names_and_kinds_are_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    probes = tmp_path / "probes"
    probes.mkdir()
    (probes / "test_typos.py").write_text(
        "import pytest\n"
        "from slo import probe_param\n"
        "\n"
        '@pytest.mark.probe(target="gatway")\n'
        "def test_a(http): ...\n"
        "\n"
        '@pytest.mark.probe(target="api", slo="sandbox-avail", kind="availabilty")\n'
        "def test_b(http): ...\n"
        "\n"
        'PARAMS = [probe_param(1, target="apii")]\n'
        "@pytest.mark.probe(target=name_from_somewhere)  # computed: the plugin checks it\n"
        "def test_c(http): ...\n"
    )
    assert main(["validate", "--config", str(SHIPPED_CONFIG), "--probes", str(probes)]) == 4
    lines = capsys.readouterr().err.splitlines()
    where = str(probes / "test_typos.py")
    assert len(lines) == 4
    assert lines[0].startswith(
        f"{where}:4: @pytest.mark.probe: unknown target 'gatway' (did you mean 'gateway'?"
    )
    assert lines[1].startswith(f"{where}:7: @pytest.mark.probe: kind='availabilty' is not one of")
    assert lines[2].startswith(
        f"{where}:7: @pytest.mark.probe: unknown SLO 'sandbox-avail' (did you mean 'sandbox-availability'?"
    )
    assert lines[3].startswith(f"{where}:10: probe_param: unknown target 'apii' (did you mean 'api'?")


def test_a_marker_alert_no_feature_registers_is_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    probes = tmp_path / "probes"
    probes.mkdir()
    (probes / "test_dumps.py").write_text(
        "import pytest\n"
        "\n"
        '@pytest.mark.probe(alert="BackupTooOld")\n'
        "def test_fresh(): ...\n"
        "\n"
        '@pytest.mark.probe(alert="BackupToOld")\n'
        "def test_typo(): ...\n"
    )
    assert main(["validate", "--config", str(SHIPPED_CONFIG), "--probes", str(probes)]) == 4
    lines = capsys.readouterr().err.splitlines()
    where = str(probes / "test_dumps.py")
    assert len(lines) == 1
    assert lines[0].startswith(
        f"{where}:6: @pytest.mark.probe: unknown alert 'BackupToOld' (did you mean 'BackupTooOld'?"
    )
    assert lines[0].endswith("`slo rules` generates no such alert")


@pytest.mark.parametrize("command", [["rules"], ["dashboard"], ["validate"]])
def test_rules_dashboard_and_validate_need_no_secret_of_the_environment(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = ["-o", str(tmp_path / "out")] if command != ["validate"] else []
    assert (
        main(
            [
                *command,
                "--config",
                str(SHIPPED_CONFIG),
                *(["--env", "staging"] if command != ["validate"] else []),
                *output,
            ]
        )
        == 0
    ), capsys.readouterr().err
    if command == ["dashboard"]:
        assert json.loads((tmp_path / "out").read_text())["title"]


def test_the_probe_run_still_needs_the_secrets_it_sends(tmp_path: Path, pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    (pytester.path / "monitoring.yaml").write_text(SHIPPED_CONFIG.read_text())
    pytester.makepyfile(test_x="def test_x(slo_config): pass\n")
    result = pytester.runpytest("--slo-env", "staging", "--no-push")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(
        ["*environments.staging.targets.api.token: environment variable STAGING_API_TOKEN is not set*"]
    )


# --- markers in a probe run ---------------------------------------------------------------------


def _project(pytester: pytest.Pytester, probe: str) -> None:
    pytester.makeini(INI)
    config = yaml.safe_load(SHIPPED_CONFIG.read_text())
    # a target only staging defines: probing local skips it, naming it
    config["environments"]["staging"]["targets"]["cache-api"] = {"url": "http://127.0.0.1:9"}
    (pytester.path / "monitoring.yaml").write_text(yaml.safe_dump(config))
    probes = pytester.mkdir("probes")
    (probes / "test_probe.py").write_text(probe)


def test_a_marker_target_no_environment_defines_stops_the_run_naming_it(pytester: pytest.Pytester) -> None:
    _project(
        pytester, 'import pytest\n\n@pytest.mark.probe(target="gatway")\ndef test_chat(http):\n    http()\n'
    )
    result = pytester.runpytest("probes/", "--no-push")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: probes/test_probe.py::test_chat: @pytest.mark.probe: unknown target 'gatway' "
            "(did you mean 'gateway'? known: api, cache-api, gateway)*"
        ]
    )


def test_a_marker_slo_that_does_not_exist_stops_the_run(pytester: pytest.Pytester) -> None:
    _project(
        pytester,
        'import pytest\n\n@pytest.mark.probe(target="api", slo="sandbox-avail")\n'
        "def test_s(http):\n    pass\n",
    )
    result = pytester.runpytest("probes/", "--no-push")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*test_s: @pytest.mark.probe: unknown SLO 'sandbox-avail' (did you mean 'sandbox-availability'?*"]
    )


def test_a_target_missing_only_from_the_selected_environment_skips_with_the_reason(
    pytester: pytest.Pytester,
) -> None:
    _project(
        pytester, 'import pytest\n\n@pytest.mark.probe(target="cache-api")\ndef test_c(http):\n    http()\n'
    )
    result = pytester.runpytest("probes/", "--no-push", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*environment 'local' defines no target 'cache-api'*"])


def test_xdist_workers_stop_on_the_same_marker_mistake(pytester: pytest.Pytester) -> None:
    _project(
        pytester, 'import pytest\n\n@pytest.mark.probe(target="gatway")\ndef test_chat(http):\n    http()\n'
    )
    result = pytester.runpytest_subprocess("probes/", "--no-push", "-n", "2", timeout=120)
    assert result.ret != pytest.ExitCode.OK
    assert "unknown target 'gatway'" in result.stdout.str() + result.stderr.str()


def test_a_first_token_sli_mistake_names_the_key_as_written(tmp_path: Path) -> None:
    path = tmp_path / "monitoring.yaml"
    path.write_text(
        "environments:\n  local:\n    targets:\n      gateway: {url: 'http://127.0.0.1:4000'}\n"
        "slos:\n  - {name: ft, objective: 95, sli: {kind: first_token, target: gateway, threshold: 2x}}\n"
    )
    _, problems = validate_config(path, environ={})
    assert [line.split(": ")[1] for line in problems] == ["slos[0].sli.threshold"]
