"""`pytest load/`: one `slo load` run, and each of its thresholds as a test case.

JUnit then names the SLO that failed ("total p95", "GET /health error_rate") instead of one
opaque "load test failed". The run happens once per session, in a subprocess, like `slo load`
itself: Locust never enters this process. Options:

    pytest load/ [--slo-config PATH] [--slo-env NAME] [--load-args "--duration 10s --users 5"]
                 [--load-baseline reports/baseline.json]

An inconclusive threshold fails its test case: a release gate must not pass on too little
evidence. With ``--load-baseline`` the run is compared with that passing run, and each
comparison is a test case too ("total p95 vs baseline"), plus "baseline verdict".
Run it without `-n`: the load run is one run, whatever xdist would like.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from slo import conventions
from slo.config import ConfigError, LoadSettings, load_config
from slo.loadgate.baseline import planned_comparisons
from slo.loadgate.summary import render
from slo.loadgate.verdict import planned_thresholds
from slo.options import resolve, sources_from_pytest

_RUN_KEY = pytest.StashKey[dict[str, Any]]()
_SETTINGS_KEY = pytest.StashKey[LoadSettings]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("slo-load", "load gate (pytest load/)")
    group.addoption(
        "--load-args",
        default=os.environ.get("SLO_LOAD_ARGS", ""),
        help="extra `slo load` options, e.g. '--duration 10s --workers 2' (env SLO_LOAD_ARGS)",
    )
    group.addoption(
        "--load-baseline",
        default=os.environ.get("SLO_LOAD_BASELINE", ""),
        metavar="PATH",
        help="compare with this passing run (`slo load --baseline`); each comparison is a test "
        "case (env SLO_LOAD_BASELINE)",
    )


def _baseline(config: pytest.Config) -> Path | None:
    option: str = config.getoption("load_baseline")
    return Path(config.invocation_params.dir, option) if option else None


def _config_and_env(config: pytest.Config) -> tuple[Path, str]:
    # The plugin's options and precedence; with `-p no:slo` only the environment and defaults.
    sources = sources_from_pytest(config)
    path = resolve("config", sources)
    env_name = str(resolve("env", sources).value)
    if path.source == "default":
        return config.rootpath / conventions.CONFIG_FILE, env_name
    return Path(config.invocation_params.dir, str(path.value)), env_name


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("numprocesses", None):
        raise pytest.UsageError(
            "pytest load/ is one load run: do not use -n (slo load --workers spreads the load)"
        )
    if config.option.xmlpath is None:
        config.option.xmlpath = str(config.rootpath / conventions.LOAD_REPORTS / "junit.xml")
    path, env_name = _config_and_env(config)
    try:  # here, not at collection: a config mistake is exit 4 with its one line
        config.stash[_SETTINGS_KEY] = load_config(path, env_name).load
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.hookimpl(optionalhook=True)  # the slo plugin's hook; with `-p no:slo` nobody calls it
def pytest_slo_is_probe(item: pytest.Item) -> bool:
    """Load thresholds are not probes: the load run pushes its own metrics under its own job,
    and reporting these as probes would replace the probes' group on the Pushgateway."""
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "threshold" in metafunc.fixturenames:
        names = [name for name, _, _ in planned_thresholds(metafunc.config.stash[_SETTINGS_KEY])]
        metafunc.parametrize("threshold", names, ids=names)
    if "comparison" in metafunc.fixturenames:
        baseline = _baseline(metafunc.config)
        if baseline is None:
            skip = pytest.mark.skip(reason="no --load-baseline: this run is not compared with a baseline")
            metafunc.parametrize("comparison", [pytest.param("", marks=skip)], ids=["baseline"])
        else:
            names = planned_comparisons(baseline)
            metafunc.parametrize("comparison", names, ids=names)


@pytest.fixture(scope="session")
def load_summary(pytestconfig: pytest.Config) -> dict[str, Any]:
    """The summary of one `slo load` run, shared by every threshold's test case."""
    path, env_name = _config_and_env(pytestconfig)
    report_dir = pytestconfig.rootpath / conventions.LOAD_REPORTS
    # --report-dir last, so `--load-args` cannot move the summary away from where it is read.
    command = [
        sys.executable, "-m", "slo", "load",
        "--config", str(path), "--env", env_name,
        *shlex.split(pytestconfig.getoption("load_args")),
        "--report-dir", str(report_dir),
    ]  # fmt: skip
    baseline = _baseline(pytestconfig)
    if baseline is not None:
        command += ["--baseline", str(baseline)]
    summary_path = report_dir / "summary.json"
    summary_path.unlink(missing_ok=True)  # never judge an earlier run's summary
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode == pytest.ExitCode.USAGE_ERROR:
        pytest.exit(completed.stderr.strip(), returncode=pytest.ExitCode.USAGE_ERROR)
    if not summary_path.exists():
        pytest.fail(f"slo load wrote no summary:\n{completed.stderr}", pytrace=False)
    summary: dict[str, Any] = json.loads(summary_path.read_text(encoding="utf-8"))
    pytestconfig.stash[_RUN_KEY] = summary
    return summary


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    summary = terminalreporter.config.stash.get(_RUN_KEY, None)
    if summary is not None:
        terminalreporter.section("slo load")
        terminalreporter.write_line(render(summary))
