"""A pytest run's config and options: loaded once per process, kept in `config.stash`.

The plugin loads them at start-up (a probe run) or when a probe first asks; probe modules
(``pytest_generate_tests``) and the probe runtime (the gateway's plan) read them here, so
none of them imports the plugin.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from slo import conventions
from slo.options import RunOptions, pushgateway_values, resolve, sources_from_pytest

if TYPE_CHECKING:
    from slo.config import Config

__all__ = ["CONFIG_KEY", "OPTIONS_KEY", "ConfigUnavailable", "load_config", "probe_config", "run_options"]

CONFIG_KEY = pytest.StashKey["Config"]()
OPTIONS_KEY = pytest.StashKey[RunOptions]()


class ConfigUnavailable(Exception):
    """The config cannot be loaded; the message is the one line to show."""


def _config_location(config: pytest.Config) -> tuple[Path, str]:
    sources = sources_from_pytest(config)
    explicit = resolve("config", sources)
    path = (
        Path(config.invocation_params.dir, str(explicit.value))
        if explicit.source != "default"
        else config.rootpath / conventions.CONFIG_FILE
    )
    return path, str(resolve("env", sources).value)


def probe_config(config: pytest.Config) -> Config:
    """The validated `monitoring.yaml`, with only the selected environment.

    For probe modules that parametrise from the config in ``pytest_generate_tests``::

        def pytest_generate_tests(metafunc):
            endpoints = probe_config(metafunc.config).probes.latency.endpoints

    A config that cannot be loaded ends the run with its one-line error (exit code 4).
    """
    try:
        return load_config(config)
    except ConfigUnavailable as exc:
        pytest.exit(str(exc), returncode=pytest.ExitCode.USAGE_ERROR)


def run_options(config: pytest.Config) -> RunOptions:
    """Where this run's results go (state file, grouping key), resolved once with the config."""
    probe_config(config)
    return config.stash[OPTIONS_KEY]


def load_config(config: pytest.Config) -> Config:
    """The config, loaded once per process; raises ConfigUnavailable."""
    if CONFIG_KEY in config.stash:
        return config.stash[CONFIG_KEY]
    from slo.config import ConfigError
    from slo.config import load_config as load_file

    path, env_name = _config_location(config)
    try:
        loaded = load_file(path, env_name)
        sources = sources_from_pytest(config, pushgateway_values(loaded.pushgateway), str(loaded.source))
        options = RunOptions.build(loaded, sources)
    except (ConfigError, ValueError) as exc:
        raise ConfigUnavailable(str(exc)) from None
    config.stash[CONFIG_KEY] = loaded
    config.stash[OPTIONS_KEY] = options
    from slo.exchange.deadline import set_run_deadline

    # In every process that runs probes, xdist workers included; saving and pushing are not
    # bound by it (they have their own deadlines).
    set_run_deadline(options.run_deadline)
    return loaded
