"""The plugin's options, each with a command-line flag, an ini key and an environment variable.

Resolved in one place with one precedence: command line > environment variable > ini file >
`monitoring.yaml` > built-in default.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

from slo import conventions
from slo.config import PushgatewaySettings

__all__ = ["OPTIONS", "RunOptions", "add_options", "resolve"]


@dataclass(frozen=True)
class Option:
    dest: str
    flag: str
    env: str | None
    help: str
    is_flag: bool = False

    @property
    def ini(self) -> str:
        return self.dest


OPTIONS = (
    Option("slo_config", "--slo-config", "SLO_CONFIG",
           f"config file (default: {conventions.CONFIG_FILE} in the rootdir)"),
    Option("slo_env", "--slo-env", "SLO_ENV", "environment in the config to probe (default: local)"),
    Option("slo_pushgateway", "--pushgateway", "PUSHGATEWAY_URL", "Pushgateway URL to push results to"),
    Option("slo_no_push", "--no-push", None,
           "do not push results, even if a Pushgateway is configured", is_flag=True),
    Option("slo_push_required", "--push-required", "SLO_PUSH_REQUIRED",
           "fail the run (exit 1) when the push fails", is_flag=True),
    Option("slo_state_file", "--slo-state", "SLO_STATE_FILE",
           "file keeping the cumulative counters between runs"),
    Option("slo_instance", "--slo-instance", "SLO_INSTANCE",
           "runner name in the grouping key (default: host name)"),
    Option("slo_job", "--slo-job", "SLO_JOB", "job in the grouping key (default: synthetic-probes)"),
)  # fmt: skip


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("slo", "synthetic monitoring and SLO probes")
    for option in OPTIONS:
        if option.is_flag:
            group.addoption(
                option.flag, dest=option.dest, action="store_true", default=None, help=option.help
            )
        else:
            group.addoption(option.flag, dest=option.dest, default=None, help=option.help)
        help_ = f"{option.help} ({option.flag})"
        if option.is_flag:
            parser.addini(option.ini, help_, type="bool", default=None)
        else:
            parser.addini(option.ini, help_, type="string", default=None)


_TRUE = {"1", "true", "yes", "on"}


def resolve(config: pytest.Config, dest: str) -> str | bool | None:
    """The value of one option from the first source that sets it, or None."""
    option = next(o for o in OPTIONS if o.dest == dest)
    value = config.getoption(dest, None)
    if value is not None:
        return bool(value) if option.is_flag else str(value)
    if option.env and os.environ.get(option.env):
        raw = os.environ[option.env]
        return raw.strip().lower() in _TRUE if option.is_flag else raw
    ini_value = config.getini(option.ini)
    if ini_value not in (None, ""):
        return bool(ini_value) if option.is_flag else str(ini_value)
    return None


@dataclass(frozen=True)
class RunOptions:
    """Everything about where results go, after precedence is applied."""

    config_path: Path
    config_explicit: bool
    env_name: str
    push: PushgatewaySettings
    push_enabled: bool
    state_file: Path

    @classmethod
    def from_pytest(cls, config: pytest.Config, pushgateway: PushgatewaySettings | None) -> RunOptions:
        explicit_path = resolve(config, "slo_config")
        path = Path(str(explicit_path)) if explicit_path else config.rootpath / conventions.CONFIG_FILE
        env_name = str(resolve(config, "slo_env") or "local")
        base = pushgateway or PushgatewaySettings()
        url = resolve(config, "slo_pushgateway") or base.url
        required = resolve(config, "slo_push_required")
        try:
            push = base.with_overrides(
                url=str(url) if url else None,
                job=str(resolve(config, "slo_job") or base.job),
                instance=str(resolve(config, "slo_instance") or base.instance or socket.gethostname()),
                required=base.required if required is None else bool(required),
            )
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None
        state = resolve(config, "slo_state_file") or base.state_file or default_state_file(push.job, env_name)
        return cls(
            config_path=path,
            config_explicit=bool(explicit_path),
            env_name=env_name,
            push=push,
            push_enabled=bool(push.url) and not resolve(config, "slo_no_push"),
            state_file=Path(str(state)).expanduser(),
        )


def default_state_file(job: str, env_name: str) -> Path:
    """Outside the repo and reports/ (which CI wipes): counters must survive a fresh checkout."""
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "slo-probes" / f"{job}-{env_name}.json"
