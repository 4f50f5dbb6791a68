"""The pytest plugin: probes are ordinary tests; this gives them targets and reports their runs.

Registered through the `pytest11` entry point, so `pytest probes/` needs no conftest. It is
installed for every pytest run in the environment, so it stays out of the way of any project
that is not a probe project: this module imports nothing heavier than pytest, and the config,
the HTTP client and the reporting are imported only when a probe needs them.

What is a probe (:func:`is_probe`): a test with the ``probe`` marker, one that uses a probe
fixture, or one under a ``slo_probe_paths`` directory (default ``probes``); a conftest can
decide otherwise with the ``pytest_slo_is_probe`` hook (:mod:`slo.hooks`). Only probes are
reported and pushed.

When the run is a probe run (an argument lies in a probe path, as in `pytest probes/`) or
names ``--slo-config``, the config is loaded at start-up, so a mistake is exit code 4 in every
process, xdist workers included; a probe run also writes JUnit to ``reports/junit.xml`` unless
``--junit-xml`` says otherwise. Otherwise the config is loaded when a probe first asks for it.

Per probe the plugin keeps one :class:`slo.evidence.Evidence` in the item's stash (the `probe`
fixture adds requests, values, readings and notes to it) and serializes it, with the reason and
message of the exception that failed the probe, into the report that decides its result (xdist
forwards it to the controller). The controller (or the single process) decodes it once and
hands each probe report with its evidence to :class:`slo.report.reporter.Reporter`, a plugin
registered at the first probe report, which folds, saves, pushes once and summarises.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from slo import conventions, hooks
from slo.compat import forget_passed_phase_reports, junit_path, set_junit_path
from slo.evidence import DEGRADED_PROPERTY, EVIDENCE_PROPERTY, MAX_NOTE, Evidence, of_report
from slo.options import add_pytest_options, resolve, sources_from_pytest
from slo.outcomes import MARKER_ARGUMENTS, kind_problem, marker_setting, probe_kind
from slo.runconfig import OPTIONS_KEY, ConfigUnavailable, load_config, probe_config, run_options

if TYPE_CHECKING:
    from slo.config import Config, Target
    from slo.probe.client import ProbeClient
    from slo.probe.run import PreviousReading, ProbeRun
    from slo.report.reporter import Reporter

__all__ = ["evidence", "is_probe", "probe_marker"]

PROBE_FIXTURES = frozenset({"slo_config", "targets", "http", "probe_value", "probe", "slo_probe_run"})

#: ``--slo-shard I/N`` as (I, N).
_SHARD_KEY = pytest.StashKey[tuple[int, int]]()
_IS_PROBE_KEY = pytest.StashKey[bool]()
_PROBE_PATHS_KEY = pytest.StashKey[list[Path]]()
_MARKER_ERROR_KEY = pytest.StashKey[str]()
#: The evidence of the probe's current attempt (a rerun starts a new one).
_EVIDENCE_KEY = pytest.StashKey[Evidence]()
#: The SIGTERM handler this run replaced (slo.stopping), put back at the end.
_SIGTERM_KEY = pytest.StashKey[object]()
#: The test item running now: the one a stopped run reports as interrupted.
_RUNNING_KEY = pytest.StashKey["pytest.Item | None"]()


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hooks)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_pytest_options(parser)
    parser.addini(
        "slo_probe_paths",
        "directories whose tests are probes, relative to the rootdir (default: probes)",
        type="paths",
        default=[],
    )


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _probe_paths(config: pytest.Config) -> list[Path]:
    """Resolved once per run: `is_probe` asks for every collected test."""
    if _PROBE_PATHS_KEY not in config.stash:
        configured: list[Path] = config.getini("slo_probe_paths")
        paths = [path.resolve() for path in configured] or [(config.rootpath / "probes").resolve()]
        config.stash[_PROBE_PATHS_KEY] = paths
    return config.stash[_PROBE_PATHS_KEY]


def _in_probe_path(path: Path, config: pytest.Config) -> bool:
    path = path.resolve()
    return any(path.is_relative_to(probes) for probes in _probe_paths(config))


def _is_probe_run(config: pytest.Config) -> bool:
    """`pytest probes/`, `pytest probes/test_health.py::test_api_health`, or `pytest .` in a
    project that has a probe directory; never a run of some other project's tests."""
    probe_dirs = [path for path in _probe_paths(config) if path.is_dir()]
    for arg in config.args:
        path = Path(config.invocation_params.dir, arg.split("::", 1)[0]).resolve()
        if any(path.is_relative_to(probes) or probes.is_relative_to(path) for probes in probe_dirs):
            return True
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "probe(target=None, slo=None, kind=None, alert=None): a probe of a config target, linked to "
        "an SLO and feeding a registered alert (labels of its metrics)",
    )
    probe_run = _is_probe_run(config)
    # Asked for on the command line, a broken config is exit 4 even outside the probe paths.
    if probe_run or config.getoption("slo_config", None):
        try:
            load_config(config)
        except ConfigUnavailable as exc:
            raise pytest.UsageError(str(exc)) from None
    shard = resolve("shard", sources_from_pytest(config))
    if shard.value:
        from slo.shard import parse_shard

        try:
            config.stash[_SHARD_KEY] = parse_shard(str(shard.value), shard.source)
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None
    if probe_run:
        from slo import stopping

        config.stash[_SIGTERM_KEY] = stopping.install()
    if not _is_worker(config):
        if probe_run and junit_path(config) is None:
            set_junit_path(config, str(config.rootpath / conventions.PROBE_JUNIT))
        config.pluginmanager.register(_ProbeReports(config), "slo-reports")
    from slo.scrubbing import SecretScrubber

    config.pluginmanager.register(SecretScrubber(config), "slo-scrubbing")


def pytest_unconfigure(config: pytest.Config) -> None:
    if _SIGTERM_KEY in config.stash:
        from slo import stopping

        stopping.uninstall(config.stash[_SIGTERM_KEY])
    if OPTIONS_KEY in config.stash:
        from slo.exchange.deadline import set_run_deadline

        # The run deadline is the session's: a process that goes on after it (pytest run in
        # process, as a test harness does) must not find every later exchange already late.
        set_run_deadline(None)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    item.config.stash[_RUNNING_KEY] = item
    result = yield
    # Not on an exception: a stopped run still needs to know which probe was running.
    item.config.stash[_RUNNING_KEY] = None
    # The evidence left in the probe's report; a run of thousands of checks keeps none per item.
    if _EVIDENCE_KEY in item.stash:
        del item.stash[_EVIDENCE_KEY]
    return result


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    """The resolved settings and where each came from, so a run explains its own setup."""
    if OPTIONS_KEY not in config.stash:
        return None
    from slo.probe.gateway_plan import header_lines

    options = config.stash[OPTIONS_KEY]
    sources = options.sources
    if options.push_enabled and options.push.url:
        from slo.redact import safe_url

        push = f"{safe_url(options.push.url)} ({sources['pushgateway']})"
    elif options.push.url:
        push = f"off ({sources['no_push']})"
    else:
        push = "off (no pushgateway.url, --pushgateway or PUSHGATEWAY_URL)"
    return [
        f"slo: config {options.config_path} ({sources['config']}), "
        f"environment {options.env_name} ({sources['env']})",
        f"slo: pushgateway {push}, state file {options.state_file}",
        f"slo: instance {options.push.instance} ({sources['instance']}), "
        f"location {options.push.location} ({sources['location']})",
        f"slo: run deadline {_seconds(options.run_deadline)} ({sources['run_deadline']})",
        *header_lines(config),
    ]


def _seconds(value: float | None) -> str:
    return "off" if value is None else f"{value:g}s"


# --- which tests are probes -------------------------------------------------------------------


def is_probe(item: pytest.Item) -> bool:
    """Whether `item`'s result is reported and pushed (see the module docstring)."""
    if _IS_PROBE_KEY not in item.stash:
        # ihook: a conftest answers for the tests of its own directory only.
        decided = item.ihook.pytest_slo_is_probe(item=item)
        if decided is None:
            decided = (
                item.get_closest_marker("probe") is not None
                or not PROBE_FIXTURES.isdisjoint(getattr(item, "fixturenames", ()))
                or _in_probe_path(item.path, item.config)
            )
        item.stash[_IS_PROBE_KEY] = bool(decided)
    return item.stash[_IS_PROBE_KEY]


def probe_marker(item: pytest.Item) -> tuple[str | None, str]:
    """The target and SLO a probe declared with ``@pytest.mark.probe``."""
    return marker_setting(item, "target"), marker_setting(item, "slo") or ""


def _marker_problem(item: pytest.Item) -> str | None:
    for marker in item.iter_markers("probe"):
        if marker.args:
            return (
                f"{item.nodeid}: @pytest.mark.probe takes keyword arguments only "
                f"({', '.join(f'{name}=' for name in MARKER_ARGUMENTS)}), got {marker.args!r}"
            )
        unknown = sorted(set(marker.kwargs) - set(MARKER_ARGUMENTS))
        if unknown:
            return (
                f"{item.nodeid}: @pytest.mark.probe: unknown argument {', '.join(f'{u}=' for u in unknown)} "
                f"(known: {', '.join(MARKER_ARGUMENTS)})"
            )
        from slo.markers import alert_problem

        if (kind := kind_problem(marker.kwargs) or alert_problem(marker.kwargs.get("alert"))) is not None:
            return f"{item.nodeid}: @pytest.mark.probe: {kind}"
    return None


def _marker_name_problem(item: pytest.Item) -> str | None:
    """A marker's target or SLO that the config does not know (`slo.markers`). Only checked
    when the config loads: otherwise the probe fails on the config's own error."""
    target, slo = probe_marker(item)
    if not (target or slo) or not is_probe(item):
        return None
    try:
        config = load_config(item.config)
    except ConfigUnavailable:
        return None
    from slo.markers import name_problems

    problems = name_problems(config, target, slo, marker_setting(item, "kind"))
    return f"{item.nodeid}: @pytest.mark.probe: {problems[0]}" if problems else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _keep_shard(config, items)
    for item in items:
        problem = _marker_problem(item) or _marker_name_problem(item)
        if problem is None:
            continue
        if not _is_worker(config):
            raise pytest.UsageError(problem)
        # A worker cannot stop the session cleanly (xdist reports a crash): the probe errors.
        item.stash[_MARKER_ERROR_KEY] = problem


def _keep_shard(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With ``--slo-shard I/N``, deselect the probes of the other shards (other tests stay)."""
    shard = config.stash.get(_SHARD_KEY, None)
    if shard is None:
        return
    from slo.shard import in_shard

    deselected = [item for item in items if is_probe(item) and not in_shard(item.nodeid, shard)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        gone = set(map(id, deselected))
        items[:] = [item for item in items if id(item) not in gone]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if is_probe(item):
        # Before the fixtures: each attempt (a rerun's too) gathers its own evidence.
        item.stash[_EVIDENCE_KEY] = _fresh_evidence(item)
    problem = item.stash.get(_MARKER_ERROR_KEY, None)
    if problem is not None:
        raise pytest.UsageError(problem)


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def slo_config(pytestconfig: pytest.Config) -> Config:
    """The validated `monitoring.yaml`, with only the selected environment."""
    return probe_config(pytestconfig)


@pytest.fixture(scope="session")
def targets(slo_config: Config) -> dict[str, Target]:
    """The selected environment's targets by name."""
    return dict(slo_config.environment.targets)


def evidence(item: pytest.Item) -> Evidence:
    """The evidence the probe `item` gathers in this attempt (:mod:`slo.evidence`)."""
    if _EVIDENCE_KEY not in item.stash:  # a probe's fixture asked before its setup hook ran
        item.stash[_EVIDENCE_KEY] = _fresh_evidence(item)
    return item.stash[_EVIDENCE_KEY]


def _fresh_evidence(item: pytest.Item) -> Evidence:
    """An attempt's evidence before it ran: what the probe's markers declare."""
    target, slo = probe_marker(item)
    alert = marker_setting(item, "alert") or ""
    return Evidence(target=target or "", slo=slo, kind=probe_kind(item), alert=alert)


@pytest.fixture
def slo_probe_run(request: pytest.FixtureRequest) -> Iterator[ProbeRun]:
    """The run `probe`, `http` and `probe_value` share. They build on this name, not on
    `probe`: a project's own fixture named `probe` must not take `http` with it."""
    from slo.probe.run import ProbeRun

    item = request.node
    run = ProbeRun(
        item.nodeid,
        functools.partial(probe_config, item.config),
        evidence(item),
        probe_marker(item)[0],
        functools.partial(_previous_reading, item),
    )
    yield run
    run.close()


@pytest.fixture
def probe(slo_probe_run: ProbeRun) -> ProbeRun:
    """This run of the probe: ``probe.http("api").get("/health")``, ``probe.value(...)``,
    ``probe.previous_reading()``, ``probe.keep_reading(...)``, ``probe.note(...)``,
    ``probe.degrade(...)`` (:class:`slo.probe.run.ProbeRun`)."""
    return slo_probe_run


def _previous_reading(item: pytest.Item) -> PreviousReading | None:
    from slo.probe.run import PreviousReading
    from slo.report.state import StateFile, runner_key

    options = run_options(item.config)
    found = StateFile(options.state_file).previous_reading(runner_key(options), item.nodeid)
    return None if found is None else PreviousReading(*found)


@pytest.fixture
def http(slo_probe_run: ProbeRun) -> Callable[..., ProbeClient]:
    """A factory of timed clients: ``http("api").get("/health")``, the same as ``probe.http``."""
    return slo_probe_run.http


@pytest.fixture
def probe_value(slo_probe_run: ProbeRun) -> Callable[..., None]:
    """Record a named number, pushed with the run as ``synthetic_<name>``:
    ``probe_value("active_sessions", 3)``, the same as ``probe.value``."""
    return slo_probe_run.value


# --- reports ----------------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if not is_probe(item):
        return report
    from slo.exchange.failures import ProbeFailure
    from slo.redact import MAX_MESSAGE, excerpt, scrub_report

    if call.when == "teardown":
        scrub_report(report)  # every channel (terminal, JUnit, Allure) reads the report
        if report.failed:
            _attach(item, report, call.excinfo)
        return report
    exception = call.excinfo.value if call.excinfo is not None else None
    if isinstance(exception, ProbeFailure):
        # The message already says what happened; the traceback through httpx helps nobody.
        report.longrepr = str(exception)
    elif isinstance(exception, AssertionError) and str(exception) and item.config.option.tbstyle == "auto":
        # A probe's assert message is written for the person on call: one line, unless a
        # traceback style was asked for (`--tb=long` shows pytest's full explanation).
        report.longrepr = excerpt(str(exception).splitlines()[0], MAX_MESSAGE)
    scrub_report(report)  # every channel (terminal, JUnit, Allure) reads the report
    if call.when == "call" or report.failed or report.skipped:
        _attach(item, report, call.excinfo)  # encoded scrubbed, after the report's own scrub
    return report


def _attach(
    item: pytest.Item, report: pytest.TestReport, excinfo: pytest.ExceptionInfo[BaseException] | None
) -> None:
    """The probe's evidence, with the reason and message of the exception that ended this
    phase, serialized into the report: the one place a probe's result leaves the worker."""
    from slo.redact import scrub_values

    found = evidence(item)
    if report.failed and excinfo is not None and not found.reason:
        found.reason, found.message = _failure(excinfo)
    if report.when == "call" and report.passed and found.degraded:
        # On the item: its JUnit case is written from the teardown report, which copies them.
        item.user_properties.append((DEGRADED_PROPERTY, found.degraded))
    report.user_properties.append((EVIDENCE_PROPERTY, found.encode(scrub_values)))


def _failure(excinfo: pytest.ExceptionInfo[BaseException]) -> tuple[str, str]:
    """The reason (closed vocabulary) and one-line message of a probe's exception."""
    from slo.exchange.failures import ProbeFailure

    exception = excinfo.value
    if isinstance(exception, ProbeFailure):
        reason, text = str(exception.reason), str(exception)
    elif isinstance(exception, AssertionError):
        # A probe's assert message is written for the person on call; a bare assert's is
        # pytest's rewritten comparison.
        reason, text = "assertion", str(exception) or excinfo.exconly(tryshort=True)
    else:
        reason = "assertion" if isinstance(exception, pytest.fail.Exception) else "error"
        text = excinfo.exconly(tryshort=True)
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return reason, line[:MAX_NOTE]


def _interrupted_report(item: pytest.Item, message: str) -> pytest.TestReport:
    """The call report of a probe the run was stopped in, made as its own would be (with its
    evidence: target, SLO, kind), failed with `message` as a timeout."""
    from slo.exchange.failures import ProbeFailure

    failure = ProbeFailure(message, "timeout")

    def interrupted() -> None:
        raise failure

    call = pytest.CallInfo.from_call(interrupted, when="call")
    report: pytest.TestReport = item.ihook.pytest_runtest_makereport(item=item, call=call)
    return report


class _ProbeReports:
    """In the process that sees every report (never an xdist worker): tells probe reports
    from others, decodes each one's evidence once and hands both to the reporter, which is
    imported, created and registered as a plugin (it has its own end-of-run hooks) at the
    first one. A run without probes imports nothing, writes nothing and pushes nothing."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.reporter: Reporter | None = None
        #: Running tests whose call phase was reported: not reported again when the run
        #: stops. Only while they run: a run of thousands of checks keeps no set of them all.
        self.called: set[str] = set()
        #: Tests started and not finished (in this process or an xdist worker), by node id.
        self.running: dict[str, tuple[str, int | None, str]] = {}
        self.stopped = False
        #: Node ids this run selected (after deselection; from every xdist worker): the suite,
        #: so the reporter can tell which probes left it.
        self.selected: set[str] = set()

    def _reporter(self) -> Reporter:
        if self.reporter is None:
            from slo.report.reporter import Reporter

            slo_config = probe_config(self.config)
            self.reporter = Reporter(self.config, slo_config, self.config.stash[OPTIONS_KEY], self.selected)
            self.config.pluginmanager.register(self.reporter, "slo-reporter")
        return self.reporter

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        # A release gate must not take another environment's results for this one's.
        if OPTIONS_KEY in self.config.stash:
            from slo.compat import add_junit_property

            add_junit_property(
                self.config, conventions.ENVIRONMENT_PROPERTY, self.config.stash[OPTIONS_KEY].env_name
            )

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # Only probes: another project's thousands of tests are no business of the reporter.
        self.selected.update(item.nodeid for item in session.items if is_probe(item))

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: object, ids: list[str]) -> None:
        self.selected.update(ids)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call":
            self.called.add(report.nodeid)
        # Every phase of a probe carries evidence when it matters; a passing setup does not,
        # but it only opens the probe's result, which the call report does as well.
        found = of_report(report)
        if found is not None:
            # Decoded once, kept by the reporter: the terminal's copy of the report needs no
            # second one (a few hundred bytes per check).
            report.user_properties = [p for p in report.user_properties if p[0] != EVIDENCE_PROPERTY]
        # A probe's later reports carry no evidence: its result, kept by the reporter, says
        # it is a probe.
        if found is not None or (self.reporter is not None and self.reporter.has_result(report.nodeid)):
            self._reporter().add(report, found)
            forget_passed_phase_reports(self.config)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        # A probe module that fails to import is a failed run, not silence.
        if report.failed and report.fspath and _in_probe_path(Path(report.fspath), self.config):
            self._reporter().add_collection_error(report)

    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        # Under xdist these come from the workers: the controller knows what runs where.
        self.running[nodeid] = location

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        self.running.pop(nodeid, None)
        self.called.discard(nodeid)

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        """Ctrl-C or SIGTERM: the probes that were running are reported failed, so the run
        records and pushes them with everything it saw before."""
        from slo.stopping import RunStopped, interrupted_message

        # pytest calls this for `pytest.exit()` too: a deliberate end (a config the probe
        # needs cannot load, exit 4) stops nothing that was running, so nothing is reported.
        if not isinstance(excinfo.value, KeyboardInterrupt):
            return
        self.stopped = isinstance(excinfo.value, RunStopped)
        message = interrupted_message(excinfo.value)
        here = self.config.stash.get(_RUNNING_KEY, None)
        for nodeid, location in list(self.running.items()):
            if nodeid in self.called:
                continue
            if here is not None and here.nodeid == nodeid:
                if not is_probe(here):
                    continue
                report = _interrupted_report(here, message)
            elif _in_probe_path(self.config.rootpath / location[0], self.config):
                # An xdist worker's probe: its item lives in the worker; what the controller
                # knows is where it is and that it did not finish.
                record = Evidence(reason="timeout", message=message[:MAX_NOTE])
                report = pytest.TestReport(
                    nodeid,
                    location,
                    {},
                    "failed",
                    message,
                    "call",
                    user_properties=[(EVIDENCE_PROPERTY, record.encode())],
                )
            else:
                continue
            self.config.hook.pytest_runtest_logreport(report=report)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        # After the reporter's own (registered later, so called first): a stopped run's
        # exit status wins over a failed push's.
        if self.stopped:
            from slo.stopping import STOPPED_EXIT

            session.exitstatus = STOPPED_EXIT
