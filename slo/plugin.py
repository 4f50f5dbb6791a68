"""The pytest plugin: probes are ordinary tests; this gives them targets and reports their runs.

Registered through the `pytest11` entry point, so `pytest probes/` needs no conftest. It stays
inert in projects without a `monitoring.yaml` until a probe fixture is used.

Per test it provides the fixtures `slo_config`, `targets` and `http` and the marker
``@pytest.mark.probe(target="api", slo="api-availability")``; it records every request's
timings and attaches them to the report (as `user_properties`, which xdist forwards to the
controller). The controller (or the single process) folds the reports into results and hands
them to :mod:`slo.report.reporter` to push and summarise.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest

from slo.config import Config, ConfigError, Target, load_config
from slo.options import RunOptions, add_options
from slo.probe.client import ProbeClient, RequestRecord
from slo.probe.failures import ProbeFailure
from slo.report.reporter import Reporter
from slo.report.results import EVIDENCE_PROPERTY

__all__ = ["CONFIG_KEY", "probe_marker", "record_requests"]

CONFIG_KEY = pytest.StashKey[Config]()
_CONFIG_ERROR_KEY = pytest.StashKey[str]()
_RECORDS_KEY = pytest.StashKey[list[RequestRecord]]()
_FIRST_TARGET_KEY = pytest.StashKey[str]()
_PREFETCHED_KEY = pytest.StashKey[bool]()

DEFAULT_JUNIT = Path("reports") / "junit.xml"


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "probe(target=None, slo=None): link a probe to a config target and an SLO (labels of its metrics)",
    )
    options = RunOptions.from_pytest(config, None)
    if not options.config_explicit and not options.config_path.exists():
        # Not a probe project: stay out of the way until a probe fixture asks for the config.
        config.stash[_CONFIG_ERROR_KEY] = (
            f"{options.config_path}: config file not found (use --slo-config or SLO_CONFIG)"
        )
        return
    try:
        slo_config = load_config(options.config_path, options.env_name)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    options = RunOptions.from_pytest(config, slo_config.pushgateway)
    config.stash[CONFIG_KEY] = slo_config
    if _is_worker(config):
        return
    if config.option.xmlpath is None:
        config.option.xmlpath = str(config.rootpath / DEFAULT_JUNIT)
    config.pluginmanager.register(Reporter(config, slo_config, options), "slo-reporter")


def probe_marker(item: pytest.Item) -> tuple[str | None, str]:
    """The target and SLO a probe declared with ``@pytest.mark.probe``."""
    marker = item.get_closest_marker("probe")
    if marker is None:
        return None, ""
    return marker.kwargs.get("target"), marker.kwargs.get("slo", "") or ""


@pytest.fixture(scope="session")
def slo_config(pytestconfig: pytest.Config) -> Config:
    """The validated `monitoring.yaml`, with only the selected environment."""
    if CONFIG_KEY not in pytestconfig.stash:
        pytest.exit(pytestconfig.stash[_CONFIG_ERROR_KEY], returncode=pytest.ExitCode.USAGE_ERROR)
    return pytestconfig.stash[CONFIG_KEY]


@pytest.fixture(scope="session")
def targets(slo_config: Config) -> dict[str, Target]:
    """The selected environment's targets by name."""
    return dict(slo_config.environment.targets)


@pytest.fixture
def http(request: pytest.FixtureRequest, slo_config: Config) -> Iterator[Callable[..., ProbeClient]]:
    """A factory of timed clients: ``http("api").get("/health")``.

    With no name it uses the probe marker's target. A target that this environment does not
    define skips the probe (naming the target), so one probe file serves every environment.
    """
    clients: dict[str, ProbeClient] = {}
    records = request.node.stash.setdefault(_RECORDS_KEY, [])

    def client_for(name: str | None = None) -> ProbeClient:
        name = name or probe_marker(request.node)[0]
        if name is None:
            raise pytest.UsageError(
                f"{request.node.nodeid}: http() needs a target name or @pytest.mark.probe(target=...)"
            )
        if name not in clients:
            if name not in slo_config.environment.targets:
                pytest.skip(f"environment {slo_config.env_name!r} defines no target {name!r}")
            request.node.stash.setdefault(_FIRST_TARGET_KEY, name)
            clients[name] = ProbeClient(name, slo_config.target(name), on_record=records.append)
        return clients[name]

    yield client_for
    for client in clients.values():
        client.close()


def record_requests(item: pytest.Item, target: str, records: list[RequestRecord]) -> None:
    """For probes that time requests outside the `http` fixture (e.g. the concurrent checks)."""
    # Replaced, not added to: a rerun's requests are the probe's requests now.
    item.stash[_RECORDS_KEY] = list(records)
    item.stash.setdefault(_FIRST_TARGET_KEY, target)
    # The call phase only judged: the probe's duration is that of its requests.
    item.stash[_PREFETCHED_KEY] = True


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if call.when == "teardown":
        return report
    exception = call.excinfo.value if call.excinfo is not None else None
    if isinstance(exception, ProbeFailure):
        # The message already says what happened; the traceback through httpx helps nobody.
        report.longrepr = str(exception)
    elif isinstance(exception, AssertionError) and str(exception) and item.config.option.tbstyle == "auto":
        # A probe's assert message is written for the person on call: one line, unless a
        # traceback style was asked for (`--tb=long` shows pytest's full explanation).
        report.longrepr = str(exception).splitlines()[0]
    if call.when == "call" or report.failed or report.skipped:
        report.user_properties.append((EVIDENCE_PROPERTY, _evidence(item, exception)))
    return report


def _evidence(item: pytest.Item, exception: BaseException | None) -> str:
    marker_target, slo = probe_marker(item)
    records = item.stash.get(_RECORDS_KEY, [])
    reason = None
    if exception is not None and not isinstance(exception, pytest.skip.Exception):
        reason = (
            exception.reason
            if isinstance(exception, ProbeFailure)
            else ("assertion" if isinstance(exception, AssertionError | pytest.fail.Exception) else "error")
        )
    evidence: dict[str, object] = {
        "target": marker_target or item.stash.get(_FIRST_TARGET_KEY, ""),
        "slo": slo,
        # Answered requests, and timed-out ones (slower than the timeout, so over any latency
        # threshold); a refused connection has no latency to speak of.
        "latencies": [round(r.elapsed, 6) for r in records if r.status is not None or r.reason == "timeout"],
        "phases": records[-1].phases.as_dict() if records else {},
        "reason": reason,
    }
    if item.stash.get(_PREFETCHED_KEY, False):
        evidence["duration"] = round(sum(record.elapsed for record in records), 6)
    return json.dumps(evidence, separators=(",", ":"))
