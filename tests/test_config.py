"""`monitoring.yaml`: the shipped file loads, and every mistake is one line naming file and key.

Most tests call :func:`load_config` directly; the last ones run pytest on a probe project
(pytester) to show the same mistakes end a run with usage error 4, one `ERROR:` line and no
traceback, and that `--slo-env` / `SLO_ENV` / `slo_env` apply in that order.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from probe_project import INI, SHIPPED_CONFIG, make_probe_project, run_probes

from slo.config import ConfigError, load_config
from slo.config.objectives import ProbeLatencySLI

TARGETS = """\
version: 1
environments:
  local:
    targets:
      api: {url: "http://127.0.0.1:8080"}
      gateway: {url: "http://127.0.0.1:4000"}
"""

SLOS = """\
slos:
  - name: api-availability
    objective: 99.9
    sli: {kind: probes, target: api}
"""

SECRET = "tok-3f9c2a-do-not-print"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "monitoring.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def config_error(path: Path, env: str = "local", environ: dict[str, str] | None = None) -> str:
    """The message of the ConfigError loading `path` raises, checked to be one line naming it."""
    with pytest.raises(ConfigError) as raised:
        load_config(path, env, environ={} if environ is None else environ)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:"), message
    return message


def matches(message: str, expected: str) -> bool:
    """Equal, or starts with `expected` up to a trailing `*` (library wording after it)."""
    return message.startswith(expected[:-1]) if expected.endswith("*") else message == expected


# --- the shipped file --------------------------------------------------------------------


def test_shipped_config_loads_for_local_without_any_variable() -> None:
    config = load_config(SHIPPED_CONFIG, "local", environ={})

    api, gateway = config.target("api"), config.target("gateway")
    assert (api.url, api.timeout, api.verify, api.token) == ("http://127.0.0.1:8080", 5.0, True, None)
    assert (gateway.url, gateway.timeout, gateway.stream) == ("http://127.0.0.1:4000", 15.0, True)
    assert config.env_name == "local"
    assert list(config.environments) == ["local"]
    assert [check.name for check in config.checks] == [
        "api-health-status",
        "sandbox-status",
        "gateway-readiness",
    ]
    assert config.probes.latency.samples >= 59
    latency_sli = config.slo("api-probe-latency").sli
    assert isinstance(latency_sli, ProbeLatencySLI)
    assert latency_sli.threshold == 2.0
    assert not config.pushgateway.url


def test_shipped_config_takes_urls_and_tokens_from_the_environment() -> None:
    environ = {"API_URL": "http://api.internal:8080/", "API_TOKEN": SECRET}
    config = load_config(SHIPPED_CONFIG, "local", environ=environ)

    api = config.target("api")
    assert api.url == "http://api.internal:8080"
    assert api.token is not None
    assert api.token.get_secret_value() == SECRET
    assert SECRET not in repr(config)
    assert SECRET not in str(api)
    assert SECRET not in config.model_dump_json()


def test_staging_needs_its_tokens_and_names_the_first_missing_one() -> None:
    message = config_error(SHIPPED_CONFIG, "staging", environ={"API_TOKEN": SECRET})
    assert message == (
        f"{SHIPPED_CONFIG}: environments.staging.targets.api.token: environment variable "
        "STAGING_API_TOKEN is not set (set it, or write ${STAGING_API_TOKEN:-default})"
    )


def test_staging_loads_once_its_tokens_are_set() -> None:
    environ = {"STAGING_API_TOKEN": SECRET, "STAGING_LITELLM_API_KEY": SECRET + "-gw"}
    config = load_config(SHIPPED_CONFIG, "staging", environ=environ)
    assert config.target("api").url == "https://api.staging.example.com"
    assert config.target("gateway").token is not None


# --- ${VAR} and ${VAR:-default} ----------------------------------------------------------

VARIABLES = """\
version: 1
environments:
  local:
    targets:
      api:
        url: ${API_URL:-http://127.0.0.1:8080}
        token: ${API_TOKEN:-}
        timeout: ${API_TIMEOUT:-3}
      gateway:
        url: http://${GATEWAY_HOST:-127.0.0.1}:4000
"""


def test_defaults_apply_when_variables_are_unset(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VARIABLES), environ={})
    api = config.target("api")
    assert (api.url, api.token, api.timeout) == ("http://127.0.0.1:8080", None, 3.0)
    assert config.target("gateway").url == "http://127.0.0.1:4000"


def test_variables_win_over_defaults_and_a_whole_value_is_reread_as_yaml(tmp_path: Path) -> None:
    environ = {"API_URL": "https://api.example.com", "API_TIMEOUT": "750ms", "GATEWAY_HOST": "gw.example.com"}
    config = load_config(write(tmp_path, VARIABLES), environ=environ)
    assert config.target("api").url == "https://api.example.com"
    assert config.target("api").timeout == 0.75
    assert config.target("gateway").url == "http://gw.example.com:4000"


def test_an_empty_variable_takes_the_default_as_in_the_shell(tmp_path: Path) -> None:
    # CI systems often define a variable as empty; `${VAR:-default}` must still mean the default.
    config = load_config(write(tmp_path, VARIABLES), environ={"API_URL": "", "API_TIMEOUT": ""})
    assert config.target("api").url == "http://127.0.0.1:8080"
    assert config.target("api").timeout == 3.0


def test_missing_variable_names_the_variable_and_key_never_a_value(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        TARGETS.replace(
            'api: {url: "http://127.0.0.1:8080"}',
            'api: {url: "http://127.0.0.1:8080", token: "${SET_TOKEN}"}',
        ).replace(
            'gateway: {url: "http://127.0.0.1:4000"}',
            'gateway: {url: "http://127.0.0.1:4000", token: "${GW_TOKEN}"}',
        ),
    )
    message = config_error(path, environ={"SET_TOKEN": SECRET})
    assert message == (
        f"{path}: environments.local.targets.gateway.token: environment variable GW_TOKEN is not set "
        "(set it, or write ${GW_TOKEN:-default})"
    )
    assert SECRET not in message


def test_variables_of_other_environments_are_not_needed(tmp_path: Path) -> None:
    prod = '  prod:\n    targets:\n      api: {url: "https://api.example.com", token: "${PROD_TOKEN}"}\n'
    path = write(tmp_path, TARGETS + prod)
    assert load_config(path, "local", environ={}).target("api").token is None
    assert "environment variable PROD_TOKEN is not set" in config_error(path, "prod")


# --- one line per mistake ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("replace", "by", "expected"),
    [
        pytest.param(
            '{url: "http://127.0.0.1:8080"}',
            '{url: "http://127.0.0.1:8080", timout: 5s}',
            "environments.local.targets.api.timout: unknown key",
            id="unknown-key",
        ),
        pytest.param(
            '{url: "http://127.0.0.1:8080"}',
            '{urll: "http://127.0.0.1:8080"}',
            # The typo explains the missing `url` beside it, so it is the one shown.
            "environments.local.targets.api.urll: unknown key (and 1 more problem)",
            id="typo-of-a-required-key",
        ),
        pytest.param(
            '{url: "http://127.0.0.1:8080"}',
            '{url: "http://127.0.0.1:8080", verify: maybe}',
            "environments.local.targets.api.verify: Input should be a valid boolean*",
            id="wrong-type",
        ),
        pytest.param(
            '{url: "http://127.0.0.1:8080"}',
            '{url: "http://127.0.0.1:8080", timeout: 2x}',
            "environments.local.targets.api.timeout: "
            "invalid duration '2x' (use e.g. 500ms, 2s, 5m, 1h30m, 30d)",
            id="bad-duration",
        ),
        pytest.param(
            '{url: "http://127.0.0.1:8080"}',
            '{url: "127.0.0.1:8080"}',
            "environments.local.targets.api.url: invalid URL '127.0.0.1:8080'*",
            id="url-without-scheme",
        ),
        pytest.param(
            "version: 1",
            "version: 2",
            "version: Input should be 1",
            id="unsupported-version",
        ),
    ],
)
def test_target_mistakes(tmp_path: Path, replace: str, by: str, expected: str) -> None:
    path = write(tmp_path, TARGETS.replace(replace, by, 1))
    message = config_error(path)
    assert matches(message, f"{path}: {expected}"), message


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        pytest.param(
            "budgets: {api_error_rate: 150}",
            "budgets.api_error_rate: invalid percentage 150: must be between 0 and 100",
            id="percentage-over-100",
        ),
        pytest.param(
            "budgets: {cpu: lots}",
            "budgets.cpu: invalid percentage 'lots' (use e.g. 99.9 or '5%')",
            id="percentage-not-a-number",
        ),
        pytest.param(
            "probes: {latency: {samples: many}}",
            "probes.latency.samples: Input should be a valid integer*",
            id="wrong-type-nested",
        ),
        pytest.param(
            "probes: {latency: {deadline: 30 seconds}}",
            "probes.latency.deadline: invalid duration '30 seconds'*",
            id="bad-duration-nested",
        ),
        pytest.param(
            "checks: [{name: api, target: api, slo: api-availabilty}]",
            "checks[0].slo: unknown SLO 'api-availabilty' (known: api-availability)",
            id="unknown-slo-in-check",
        ),
        pytest.param(
            'checks: [{name: api, target: api, url: "http://127.0.0.1:8080/health"}]',
            "checks[0] (api): give exactly one of url or target",
            id="check-with-url-and-target",
        ),
        pytest.param(
            "checks: [{name: api, path: /health}]",
            "checks[0] (api): give exactly one of url or target",
            id="check-with-neither",
        ),
        pytest.param(
            "checks: [{name: api, target: sandbox, path: /health}]",
            "checks[0].target: environment 'local' has no target 'sandbox' (known: api, gateway)",
            id="check-with-undefined-target",
        ),
        pytest.param(
            "checks: [{name: a, target: api}, {name: a, target: gateway}]",
            "checks: duplicate check name 'a'",
            id="duplicate-check-name",
        ),
        pytest.param(
            "checks: [{name: bad, target: api, body_regex: '(unclosed'}]",
            "checks[0].body_regex: invalid regular expression: missing ), unterminated subpattern*",
            id="bad-regex",
        ),
        pytest.param(
            "probes: {latency: {endpoints: [{target: api, slo: api-availability}]}}",
            "probes.latency.endpoints[0].slo: SLO 'api-availability' is not a probe_latency SLO",
            id="latency-endpoint-with-wrong-slo-kind",
        ),
        pytest.param(
            "pushgateway: {url: localhost:9091}",
            "pushgateway.url: invalid URL 'localhost:9091'*",
            id="pushgateway-url",
        ),
    ],
)
def test_section_mistakes(tmp_path: Path, section: str, expected: str) -> None:
    path = write(tmp_path, TARGETS + SLOS + section + "\n")
    message = config_error(path)
    assert matches(message, f"{path}: {expected}"), message


def test_unknown_environment_lists_the_known_ones() -> None:
    message = config_error(SHIPPED_CONFIG, "nope")
    assert message == f"{SHIPPED_CONFIG}: environments: unknown environment 'nope' (known: local, staging)"


def test_yaml_syntax_error_gives_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, TARGETS + "checks:\n  - name: broken\n    target: api: gateway\n  - name: next\n")
    assert config_error(path) == f"{path}: line 9: invalid YAML: mapping values are not allowed here"


def test_duplicate_key_is_an_error_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, TARGETS + '      api: {url: "http://127.0.0.1:9090"}\n')
    assert config_error(path) == f"{path}: line 7: invalid YAML: duplicate key 'api'"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the top level must be a mapping of sections"),
        ("- just\n- a list\n", "the top level must be a mapping of sections"),
        ("version: 1\n", "environments: at least one environment is required"),
        ("version: 1\nenvironments: {}\n", "environments: at least one environment is required"),
    ],
)
def test_files_without_environments(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    assert config_error(path) == f"{path}: {expected}"


def test_missing_file_says_how_to_point_elsewhere(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    assert config_error(path) == f"{path}: config file not found (use --slo-config or SLO_CONFIG)"


# --- through pytest ----------------------------------------------------------------------


def assert_usage_error(result: pytest.RunResult, *expected: str) -> str:
    """Exit code 4, exactly one `ERROR:` line containing `expected`, no traceback anywhere."""
    output = result.stdout.lines + result.stderr.lines
    errors = [line for line in output if line.startswith("ERROR:")]
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output
    assert len(errors) == 1, output
    assert "Traceback" not in "\n".join(output)
    for text in expected:
        assert text in errors[0], errors[0]
    return errors[0]


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A probe project whose targets point at a closed port: config errors stop it first."""
    make_probe_project(pytester, None)
    return pytester


@pytest.mark.parametrize(
    ("mistake", "expected"),
    [
        pytest.param(
            ("timeout: 2s", "timeout: 2x"),
            "environments.local.targets.api.timeout: invalid duration",
            id="duration",
        ),
        pytest.param(
            ("timeout: 2s", "timout: 2s"),
            "environments.local.targets.api.timout: unknown key",
            id="unknown-key",
        ),
        pytest.param(
            ("timeout: 2s", "timeout: 2s\n      token: ${PROBE_TOKEN}"),
            "environment variable PROBE_TOKEN is not set",
            id="missing-variable",
        ),
        pytest.param(
            ("version: 1", "version: 1\nversion: 1"),
            "line 2: invalid YAML: duplicate key 'version'",
            id="duplicate",
        ),
    ],
)
def test_broken_config_stops_pytest_with_usage_error(
    project: pytest.Pytester, mistake: tuple[str, str], expected: str
) -> None:
    config = project.path / "monitoring.yaml"
    config.write_text(config.read_text().replace(*mistake, 1))
    result = run_probes(project)
    line = assert_usage_error(result, str(config), expected)
    assert line.startswith(f"ERROR: {config}: ")


@pytest.mark.slow
def test_unknown_environment_on_the_command_line_is_usage_error_in_a_real_process(
    project: pytest.Pytester,
) -> None:
    result = run_probes(project, "--slo-env", "nope", "probes/", subprocess=True)
    assert_usage_error(result, "environments: unknown environment 'nope' (known: local)")


@pytest.mark.slow
def test_missing_token_variable_names_it_without_printing_any_value(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = project.path / "monitoring.yaml"
    config.write_text(
        config.read_text().replace("timeout: 2s", "timeout: 2s\n      token: ${PROBE_TOKEN}", 1)
    )
    monkeypatch.setenv("OTHER_SECRET", SECRET)
    monkeypatch.delenv("PROBE_TOKEN", raising=False)
    result = run_probes(project, subprocess=True)
    assert_usage_error(result, "environment variable PROBE_TOKEN is not set")
    assert SECRET not in result.stdout.str() + result.stderr.str()


def test_explicit_config_path_that_does_not_exist_is_usage_error(project: pytest.Pytester) -> None:
    result = run_probes(project, "--slo-config", "elsewhere.yaml")
    assert_usage_error(result, "elsewhere.yaml: config file not found (use --slo-config or SLO_CONFIG)")


def test_shipped_config_collects_for_local_while_staging_secrets_are_unset(pytester: pytest.Pytester) -> None:
    make_probe_project(pytester, None)
    (pytester.path / "monitoring.yaml").write_text(SHIPPED_CONFIG.read_text())
    result = run_probes(pytester, "--collect-only", "-q", "probes/")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines(["probes/test_health.py::test_api_health"])

    staging = run_probes(pytester, "--collect-only", "--slo-env", "staging", "probes/")
    assert_usage_error(staging, "environment variable STAGING_API_TOKEN is not set")


# --- which config and environment: command line > environment variable > ini ------------

SELECTION = """\
version: 1
environments:
  local: &targets
    targets:
      api: {url: "http://127.0.0.1:9"}
  from-ini: *targets
  from-env: *targets
  from-cli: *targets
"""

SHOW_SELECTION = """\
def test_show(slo_config):
    print(f"SELECTED {slo_config.env_name} FROM {slo_config.source.name}")
"""


@pytest.fixture
def selection(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".yaml", monitoring=SELECTION, other=SELECTION)
    pytester.makepyfile(test_show=SHOW_SELECTION)
    return pytester


def selected(pytester: pytest.Pytester, *args: str) -> str:
    result = pytester.runpytest("--no-push", "-rP", *args)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    [line] = [line for line in result.stdout.lines if line.startswith("SELECTED ")]
    return line


def test_default_environment_is_local(selection: pytest.Pytester) -> None:
    selection.makeini(INI)
    assert selected(selection) == "SELECTED local FROM monitoring.yaml"


@pytest.mark.parametrize(
    ("ini", "env", "cli", "expected"),
    [
        ("from-ini", None, None, "from-ini"),
        ("from-ini", "from-env", None, "from-env"),
        ("from-ini", "from-env", "from-cli", "from-cli"),
        (None, "from-env", "from-cli", "from-cli"),
        (None, "from-env", None, "from-env"),
    ],
)
def test_environment_precedence(
    selection: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    ini: str | None,
    env: str | None,
    cli: str | None,
    expected: str,
) -> None:
    selection.makeini(INI + (f"slo_env = {ini}\n" if ini else ""))
    if env:
        monkeypatch.setenv("SLO_ENV", env)
    args = ["--slo-env", cli] if cli else []
    assert selected(selection, *args) == f"SELECTED {expected} FROM monitoring.yaml"


def test_config_path_precedence(selection: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    selection.makeini(INI + "slo_config = missing-from-ini.yaml\n")
    monkeypatch.setenv("SLO_CONFIG", "other.yaml")
    assert selected(selection) == "SELECTED local FROM other.yaml"
    assert selected(selection, "--slo-config", "monitoring.yaml") == "SELECTED local FROM monitoring.yaml"


@pytest.mark.parametrize("secret", ["#9f2c-secret", "no", "0777", "[x]"])
def test_a_secret_from_the_environment_is_taken_verbatim(secret: str) -> None:
    """`${VAR}` is substituted as text, never re-read as YAML (a comment, a boolean, a number)."""
    config = load_config(SHIPPED_CONFIG, "local", environ={"API_TOKEN": secret})
    token = config.environment.targets["api"].token
    assert token is not None
    assert token.get_secret_value() == secret
