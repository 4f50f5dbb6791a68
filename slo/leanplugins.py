"""A run loads only the optional pytest plugins it uses.

pytest loads every installed plugin into every run, and each adds its hooks to every test: in
a probe run xdist, rerunfailures, timeout, anyio and allure cost about a fifth of a cold run's
CPU and do nothing (and rerunfailures starts a socket server whenever xdist is loaded). The project's
pytest settings (``pyproject.toml``'s ``addopts``) leave them out with ``-p no:NAME``; this
plugin, its own ``pytest11`` entry point so that ``-p no:slo`` keeps it, loads each back as
soon as the run puts it in play:

- one of its options on the command line (``addopts`` and ``PYTEST_ADDOPTS`` included),
  one of its ini settings, or its environment variable: before the options are parsed, so
  ``-n 2`` or ``--timeout 300`` are options as usual;
- its marker on a collected test (``flaky``, ``timeout``): after collection, before any test
  runs; ``anyio`` on an async test as it is collected. Under xdist the workers collect, so a
  run with ``-n`` loads rerunfailures from the start: its workers report to the controller.

``-p NAME`` after the exclusion loads a plugin in any case (pytest's rule: a later ``-p``
wins). A run in a project without these exclusions loads every plugin, as pytest does.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from inspect import iscoroutinefunction

import pytest

from slo.compat import ini_keys, load_blocked_plugin

__all__ = ["OPTIONAL_PLUGINS", "OptionalPlugin", "in_play"]


@dataclass(frozen=True)
class OptionalPlugin:
    """An optional plugin: its entry point names and what puts it in play."""

    names: tuple[str, ...]
    options: tuple[str, ...]
    ini: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    markers: tuple[str, ...] = ()


def _plugin(names: str, options: str, ini: str = "", env: str = "", markers: str = "") -> OptionalPlugin:
    return OptionalPlugin(*(tuple(words.split()) for words in (names, options, ini, env, markers)))


XDIST = _plugin(
    "xdist xdist.looponfail",
    "-n --numprocesses --maxprocesses --max-worker-restart --dist -d --tx --px --rsyncdir"
    " --rsyncignore --testrunuid --maxschedchunk --loadscope-reorder --no-loadscope-reorder"
    " -f --looponfail",
    ini="rsyncdirs rsyncignore looponfailroots",
)
RERUNFAILURES = _plugin(
    "rerunfailures",
    "--reruns --reruns-delay --reruns-delay-backoff-factor --only-rerun --rerun-except"
    " --rerun-exclude-path --reruns-mode --force-reruns --max-suite-reruns --rerun-show-tracebacks"
    " --fail-on-flaky",
    ini="reruns reruns_delay reruns_delay_backoff_factor only_rerun rerun_except",
    markers="flaky",
)
TIMEOUT = _plugin(
    "timeout",
    "--timeout --timeout-method --timeout_method --timeout-disable-debugger-detection"
    " --timeout_disable_debugger_detection --session-timeout",
    ini="timeout timeout_method timeout_func_only timeout_disable_debugger_detection session_timeout",
    env="PYTEST_TIMEOUT",
    markers="timeout",
)
ALLURE = _plugin(
    "allure_pytest",
    "--alluredir --clean-alluredir --allure-no-capture --inversion --allure-severities --allure-epics"
    " --allure-features --allure-stories --allure-ids --allure-label --allure-link-pattern",
)
ANYIO = _plugin("anyio", "--anyio-mode", ini="anyio_mode", markers="anyio")

OPTIONAL_PLUGINS = (XDIST, RERUNFAILURES, TIMEOUT, ALLURE, ANYIO)


def _names_option(arg: str, option: str) -> bool:
    """`arg` is `option`, with its value attached (``--timeout=5``, ``-n2``) or not."""
    if arg == option or arg.startswith(option + "="):
        return True
    return len(option) == 2 and not arg.startswith("--") and arg.startswith(option)


def in_play(plugin: OptionalPlugin, args: Iterable[str], ini: Iterable[str]) -> bool:
    """Whether the run's arguments, ini settings or environment ask for `plugin`."""
    ini_set = set(ini)
    return (
        any(_names_option(arg, option) for arg in args for option in plugin.options)
        or not ini_set.isdisjoint(plugin.ini)
        or any(os.environ.get(name) for name in plugin.env)
    )


def _load(config: pytest.Config, plugin: OptionalPlugin) -> None:
    for name in plugin.names:
        load_blocked_plugin(config.pluginmanager, name)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, args: list[str]) -> None:
    # Everything before a bare `--` is pytest's; what follows it is a test's own.
    own = args[: args.index("--")] if "--" in args else args
    ini = ini_keys(early_config)
    for plugin in OPTIONAL_PLUGINS:
        if in_play(plugin, own, ini):
            _load(early_config, plugin)
    if early_config.pluginmanager.hasplugin("xdist"):
        _load(early_config, RERUNFAILURES)


def _left_out(config: pytest.Config, plugin: OptionalPlugin) -> bool:
    return any(config.pluginmanager.is_blocked(name) for name in plugin.names)


def pytest_configure(config: pytest.Config) -> None:
    # The markers of a plugin still left out are known, so that using one (the reason to load
    # the plugin) is no "unknown marker" warning, nor an error under --strict-markers.
    for plugin in OPTIONAL_PLUGINS:
        if _left_out(config, plugin):
            for marker in plugin.markers:
                config.addinivalue_line("markers", f"{marker}: {plugin.names[0]}'s marker (loads it)")


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Module | pytest.Class, name: str, obj: object) -> None:
    if not (iscoroutinefunction(obj) and _left_out(collector.config, ANYIO)):
        return
    own = getattr(obj, "pytestmark", ())
    if collector.get_closest_marker("anyio") or any(mark.name == "anyio" for mark in own):
        _load(collector.config, ANYIO)
        # This collection's hook call began before anyio was loaded: its own hook marks the
        # test for its backend fixture; the next tests get it from pytest.
        plugin = collector.config.pluginmanager.get_plugin("anyio")
        if plugin is not None:
            plugin.pytest_pycollect_makeitem(collector=collector, name=name, obj=obj)


def _marker_names(items: Iterable[pytest.Item]) -> set[str]:
    """Every marker on the items or their modules and classes: each node read once, so a run
    of thousands of checks pays a few attribute reads per check."""
    names: set[str] = set()
    seen: set[int] = set()
    for item in items:
        node: pytest.Item | pytest.Collector | None = item
        while node is not None and id(node) not in seen:
            seen.add(id(node))
            names.update(mark.name for mark in node.own_markers)
            node = node.parent
    return names


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    waiting = [plugin for plugin in (RERUNFAILURES, TIMEOUT) if _left_out(config, plugin)]
    if not waiting:
        return
    used = _marker_names(items)
    for plugin in waiting:
        if not used.isdisjoint(plugin.markers):
            _load(config, plugin)
