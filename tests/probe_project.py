"""Build a probe project in a pytester directory and read back what its run reported.

Reusable by any test module that runs the real probes (``pytester`` and ``stack`` come from
``conftest.py``)::

    def test_health_fails(pytester, stack):
        make_probe_project(pytester, stack, probes={"latency": {"samples": 10}})
        result = run_probes(pytester, "probes/test_health.py")
        result.assert_outcomes(passed=1)

The project holds a copy of the repo's ``probes/``, a ``monitoring.yaml`` derived from the
shipped one (its SLOs, budgets and checks) whose ``local`` environment points at the given
reference stack with short timeouts, and an ini file (``tox.ini``, ``[pytest]``) that makes
the pytester directory the rootdir (so the plugin finds ``monitoring.yaml`` and writes
``reports/junit.xml`` there) and keeps Locust's pytest plugin out of the inner run:
importing it would monkey-patch this very process with gevent when the run is in-process.
Hypothesis' plugin is left out too: it would re-import hypothesis on every in-process run.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any, Protocol

import pytest
import yaml

# The plugin imports the HTTP stack lazily, inside the in-process run; pytester then drops
# those modules again, while httpx keeps its cache of httpcore's exception classes, so the
# next run's httpcore errors would no longer match it. Imported here, they outlive every run.
import slo.probe.client  # noqa: F401
from slo.junit import Case, read_cases

__all__ = [
    "INI",
    "PROBES_DIR",
    "REPO_ROOT",
    "SHIPPED_CONFIG",
    "deep_merge",
    "failed_ids",
    "junit_cases",
    "make_probe_project",
    "probe_config",
    "run_probes",
    "write_config",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
PROBES_DIR = REPO_ROOT / "probes"
SHIPPED_CONFIG = REPO_ROOT / "monitoring.yaml"

#: Short enough that a hung target costs two seconds, long enough for a loaded CI runner.
DEFAULT_TIMEOUT = "2s"

#: The inner run's ini: the repo's own pyproject is not visible from the pytester directory.
#: An in-process run finds `slo` already imported by the outer session, so pytest cannot
#: rewrite its asserts and says so: that one warning is expected, any other is an error.
INI = """\
[pytest]
addopts = -p no:locust -p no:cacheprovider -p no:hypothesispytest
filterwarnings =
    error
    ignore:Module already imported so cannot be rewritten:pytest.PytestAssertRewriteWarning
"""


class StackUrls(Protocol):
    """What a project needs from a reference stack (``devstack.refstack.ReferenceStack``)."""

    @property
    def api_url(self) -> str: ...

    @property
    def gateway_url(self) -> str: ...


def deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` applied: mappings merge key by key, anything else replaces.

    A value of ``None`` removes the key, so a test can drop a whole shipped section.
    """
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def probe_config(
    stack: StackUrls | None, *, timeout: str = DEFAULT_TIMEOUT, **overrides: Any
) -> dict[str, Any]:
    """The shipped config with ``local`` pointing at ``stack`` and ``overrides`` merged in.

    Only ``local`` is kept (staging would need its secrets only if selected, but a test has
    no use for it). Without a stack the targets point at a port nobody listens on.
    """
    shipped = yaml.safe_load(SHIPPED_CONFIG.read_text(encoding="utf-8"))
    api_url = stack.api_url if stack else "http://127.0.0.1:9"
    gateway_url = stack.gateway_url if stack else "http://127.0.0.1:9"
    config = {
        **shipped,
        "environments": {
            "local": {
                "targets": {
                    "api": {"url": api_url, "timeout": timeout},
                    "gateway": {
                        "url": gateway_url,
                        "timeout": timeout,
                        "model": "claude-sonnet-4",
                        "stream": True,
                    },
                }
            }
        },
        # A test run must never push to whatever PUSHGATEWAY_URL the developer has set.
        "pushgateway": {**shipped["pushgateway"], "url": ""},
    }
    # The runner's own disk and memory are the CI machine's business, not the stack's: a
    # nearly full CI disk must not fail tests about the stack (tests of that probe set these).
    config["probes"] = deep_merge(shipped["probes"], {"resources": {"disk": 100, "memory": 100}})
    return deep_merge(config, overrides)


def write_config(pytester: pytest.Pytester, config: dict[str, Any]) -> Path:
    path = pytester.path / "monitoring.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def make_probe_project(
    pytester: pytest.Pytester,
    stack: StackUrls | None,
    *,
    timeout: str = DEFAULT_TIMEOUT,
    **overrides: Any,
) -> dict[str, Any]:
    """Copy ``probes/`` into the pytester directory and write its config; returns the config.

    ``overrides`` are merged into the config (see :func:`deep_merge`), e.g.
    ``probes={"latency": {"samples": 10}}`` or ``checks=[...]``.
    """
    destination = pytester.path / "probes"
    if destination.exists():
        shutil.rmtree(destination)
    shutil.copytree(PROBES_DIR, destination, ignore=shutil.ignore_patterns("__pycache__"))
    pytester.makeini(INI)
    config = probe_config(stack, timeout=timeout, **overrides)
    write_config(pytester, config)
    return config


def run_probes(
    pytester: pytest.Pytester, *args: str, subprocess: bool = False, timeout: float = 120
) -> pytest.RunResult:
    """``pytest probes/`` (or ``args``) in the project, never pushing.

    ``subprocess`` runs it as a timer would, in its own interpreter, bounded by ``timeout``
    seconds; in-process runs are faster and fine for anything that does not need real
    stderr or signal handlers.
    """
    arguments = ["--no-push", *(args or ["probes/"])]
    if subprocess:
        return pytester.runpytest_subprocess(*arguments, timeout=timeout)
    return pytester.runpytest(*arguments)


def junit_cases(pytester: pytest.Pytester) -> dict[str, Case]:
    """The cases of ``reports/junit.xml`` (written there by default) by ``module::name`` id."""
    cases = read_cases(pytester.path / "reports" / "junit.xml")
    return {f"{case.module}::{case.name}": case for case in cases}


def failed_ids(pytester: pytest.Pytester) -> set[str]:
    """Ids of the cases that failed or errored in the last run's JUnit report."""
    return {case_id for case_id, case in junit_cases(pytester).items() if case.outcome in ("failed", "error")}
