"""Every option of every entry point, and the one rule that picks its value.

Each option can come from a command-line flag, an environment variable, a pytest ini key or
`monitoring.yaml`, and has a built-in default. The first source that sets it wins, in that
order. An empty value (``SLO_ENV=``) counts as unset everywhere, so it means the default in
`pytest probes/`, `pytest load/`, `slo load` and `slo rules` alike.

This module is pure: it reads mappings, never pytest or argparse objects. The adapters below
turn a pytest config (:func:`sources_from_pytest`) or parsed arguments (:func:`sources_from_cli`) into
those mappings, and every value keeps the name of its source for error messages and the
report header ("PUSHGATEWAY_URL environment variable: invalid URL ...").
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from slo import conventions

if TYPE_CHECKING:  # pydantic is imported only when a probe project needs the config
    import pytest

    from slo.config import Config, PushgatewaySettings

__all__ = [
    "OPTIONS",
    "Option",
    "Resolved",
    "RunOptions",
    "Sources",
    "add_cli_options",
    "add_pytest_options",
    "override",
    "parse_cli",
    "resolve",
    "resolve_cli",
    "sources_from_cli",
    "sources_from_pytest",
]

Kind = Literal["text", "flag"]


@dataclass(frozen=True)
class Option:
    """One option and every place it can be set; None where a source does not offer it."""

    name: str
    help: str
    #: pytest's flag (``--slo-env``); the `slo` commands use `cli_flag` where it differs.
    flag: str | None = None
    cli_flag: str | None = None
    env: str | None = None
    #: The pytest ini key, e.g. ``slo_env`` in ``[tool.pytest.ini_options]``.
    ini: str | None = None
    #: The key in `monitoring.yaml` (dotted), for the error message.
    config_key: str | None = None
    default: str | bool | None = None
    kind: Kind = "text"


OPTIONS: dict[str, Option] = {
    option.name: option
    for option in (
        Option("config", "config file",
               flag="--slo-config", cli_flag="--config", env="SLO_CONFIG", ini="slo_config",
               default=conventions.CONFIG_FILE),
        Option("env", "environment in the config to use",
               flag="--slo-env", cli_flag="--env", env="SLO_ENV", ini="slo_env",
               default=conventions.ENVIRONMENT),
        Option("pushgateway", "Pushgateway URL to push results to",
               flag="--pushgateway", cli_flag="--pushgateway", env="PUSHGATEWAY_URL",
               ini="slo_pushgateway", config_key="pushgateway.url"),
        Option("no_push", "do not push results, even if a Pushgateway is configured",
               flag="--no-push", cli_flag="--no-push", kind="flag", default=False),
        Option("push_required", "fail the run (exit 1) when the push fails",
               flag="--push-required", env="SLO_PUSH_REQUIRED", ini="slo_push_required",
               config_key="pushgateway.required", kind="flag", default=False),
        Option("state_file", "file keeping the cumulative counters between runs",
               flag="--slo-state", env="SLO_STATE_FILE", ini="slo_state_file",
               config_key="pushgateway.state_file"),
        Option("instance", "runner name in the grouping key (default: the host name)",
               flag="--slo-instance", env="SLO_INSTANCE", ini="slo_instance",
               config_key="pushgateway.instance"),
        Option("location", "where the runner is, a grouping label of every push (default: the instance)",
               flag="--slo-location", env="SLO_LOCATION", ini="slo_location",
               config_key="pushgateway.location"),
        Option("shard", "run only shard I of N of the probes (`I/N`, 1-based): runners of one "
               "location split a large suite",
               flag="--slo-shard", env="SLO_SHARD", ini="slo_shard"),
        Option("run_deadline", "wall time for a probe run's requests; the ones still waiting then fail "
               "as timeouts, and the results are still saved and pushed (`off`: no limit)",
               flag="--slo-run-deadline", env="SLO_RUN_DEADLINE", ini="slo_run_deadline",
               default=conventions.RUN_DEADLINE),
        Option("check_concurrency", "declarative checks sent at once, on one event loop",
               flag="--slo-check-concurrency", env="SLO_CHECK_CONCURRENCY", ini="slo_check_concurrency",
               default=str(conventions.CHECK_CONCURRENCY)),
        Option("prometheus", "Prometheus base URL", cli_flag="--prometheus", env="PROMETHEUS_URL"),
        Option("job", "job in the grouping key",
               flag="--slo-job", env="SLO_JOB", ini="slo_job", config_key="pushgateway.job",
               default=conventions.JOB),
    )
}  # fmt: skip

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Sources:
    """What each source says, by option name; a missing or empty value means "not set"."""

    flags: Mapping[str, object] = field(default_factory=dict)
    environ: Mapping[str, str] = field(default_factory=dict)
    ini: Mapping[str, object] = field(default_factory=dict)
    config: Mapping[str, object] = field(default_factory=dict)
    #: Named in messages about a config value, e.g. ``monitoring.yaml``.
    config_file: str = conventions.CONFIG_FILE
    #: Whose flags `flags` holds, so a message names the flag the user typed.
    style: Literal["pytest", "cli"] = "cli"


@dataclass(frozen=True)
class Resolved:
    value: str | bool | None
    #: Where the value came from, as a user would name it.
    source: str


def _is_set(value: object) -> bool:
    return value is not None and value != ""


def _as(option: Option, value: object, source: str) -> str | bool:
    if option.kind == "text":
        return str(value)
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise ValueError(f"{source}: expected true or false, got {value!r}")


def resolve(name: str, sources: Sources) -> Resolved:
    """The value of option `name` from the first source that sets it, and that source."""
    option = OPTIONS[name]
    flag = sources.flags.get(name)
    # A store_true flag that was not given is False, not "set to False".
    if _is_set(flag) and not (option.kind == "flag" and flag is False):
        shown = (option.flag if sources.style == "pytest" else option.cli_flag) or option.name
        return Resolved(_as(option, flag, shown), shown)
    if option.env and _is_set(sources.environ.get(option.env)):
        source = f"{option.env} environment variable"
        return Resolved(_as(option, sources.environ[option.env], source), source)
    if option.ini and _is_set(sources.ini.get(option.ini)):
        source = f"{option.ini} in the pytest ini file"
        return Resolved(_as(option, sources.ini[option.ini], source), source)
    if option.config_key and _is_set(sources.config.get(name)):
        source = f"{sources.config_file}: {option.config_key}"
        return Resolved(_as(option, sources.config[name], source), source)
    return Resolved(option.default, "default")


# --- pytest -----------------------------------------------------------------------------------


def add_pytest_options(parser: pytest.Parser) -> None:
    """Each option with a pytest flag, as a flag and an ini key (pytest-timeout's style)."""
    group = parser.getgroup("slo", "synthetic monitoring and SLO probes")
    for option in OPTIONS.values():
        if option.flag is None:
            continue
        where = " / ".join(
            filter(None, [option.env and f"${option.env}", option.ini and f"ini {option.ini}"])
        )
        help_ = f"{option.help} ({where})" if where else option.help
        if option.kind == "flag":
            group.addoption(
                option.flag, dest=f"slo_{option.name}", action="store_true", default=None, help=help_
            )
        else:
            group.addoption(option.flag, dest=f"slo_{option.name}", default=None, help=help_)
        if option.ini:
            parser.addini(option.ini, f"{option.help} ({option.flag})", default=None)


def sources_from_pytest(
    config: pytest.Config, file_values: Mapping[str, object] | None = None, config_file: str = ""
) -> Sources:
    """The sources of a pytest run. Works without the plugin's options registered (``-p no:slo``
    in `pytest load/`): then only the environment and the defaults apply."""
    flags: dict[str, object] = {}
    ini: dict[str, object] = {}
    for option in OPTIONS.values():
        if option.flag:
            flags[option.name] = config.getoption(f"slo_{option.name}", None)
        if option.ini:
            with contextlib.suppress(ValueError):  # not registered: the plugin is disabled
                ini[option.ini] = config.getini(option.ini)
    return Sources(
        flags, os.environ, ini, file_values or {}, config_file or conventions.CONFIG_FILE, "pytest"
    )


# --- the `slo` commands -----------------------------------------------------------------------


def add_cli_options(parser: argparse._ActionsContainer, names: Iterable[str]) -> None:
    """The options `names` as flags of an `slo` command; unset flags stay None."""
    for name in names:
        option = OPTIONS[name]
        assert option.cli_flag, f"option {name} has no command-line flag"
        fallbacks = [f"${option.env}" for _ in [0] if option.env] + [str(option.default)] * (
            option.default is not None
        )
        where = f" (default: {', else '.join(fallbacks)})" if fallbacks else ""
        if option.kind == "flag":
            parser.add_argument(option.cli_flag, dest=name, action="store_true", help=option.help)
        else:
            parser.add_argument(option.cli_flag, dest=name, metavar=name.upper(), help=option.help + where)


def sources_from_cli(
    args: argparse.Namespace, file_values: Mapping[str, object] | None = None, config_file: str = ""
) -> Sources:
    flags = {name: getattr(args, name) for name in OPTIONS if hasattr(args, name)}
    return Sources(flags, os.environ, {}, file_values or {}, config_file or conventions.CONFIG_FILE)


def resolve_cli(args: argparse.Namespace) -> argparse.Namespace:
    """`args` with every option added by :func:`add_cli_options` replaced by its resolved value
    (flag, else environment variable, else default), so the command reads final values."""
    sources = sources_from_cli(args)
    for name in OPTIONS:
        if hasattr(args, name):
            setattr(args, name, resolve(name, sources).value)
    return args


def parse_cli(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse `argv` (the process's arguments when None), options resolved (:func:`resolve_cli`)."""
    return resolve_cli(parser.parse_args(list(sys.argv[1:] if argv is None else argv)))


# --- what a probe run resolves to ------------------------------------------------------------


def pushgateway_values(settings: PushgatewaySettings) -> dict[str, object]:
    """The options `monitoring.yaml`'s ``pushgateway:`` section sets, by option name."""
    return {
        "pushgateway": settings.url,
        "push_required": settings.required,
        "state_file": settings.state_file,
        "instance": settings.instance,
        "location": settings.location,
        "job": settings.job,
    }


@dataclass(frozen=True)
class RunOptions:
    """Where a probe run's results go, after precedence is applied."""

    config_path: Path
    env_name: str
    push: PushgatewaySettings
    push_enabled: bool
    state_file: Path
    #: Seconds the run's requests may take in all, or None for no limit.
    run_deadline: float | None
    #: Declarative checks sent at once.
    check_concurrency: int
    #: The source of each option, for the report header.
    sources: Mapping[str, str]

    @classmethod
    def build(cls, config: Config, sources: Sources) -> RunOptions:
        """Apply `sources` over the config's ``pushgateway:`` section; ValueError names the source."""
        values = {name: resolve(name, sources) for name in OPTIONS}
        text = {name: str(r.value) if r.value is not None else None for name, r in values.items()}
        base = config.pushgateway
        push = base
        for name, field_name in (("pushgateway", "url"), ("job", "job"), ("push_required", "required")):
            resolved = values[name]
            if resolved.source != "default":
                push = override(push, field_name, resolved)
        instance = text["instance"] or socket.gethostname()
        push = override(push, "instance", Resolved(instance, values["instance"].source))
        location = Resolved(text["location"] or instance, values["location"].source)
        push = override(push, "location", location)
        state = text["state_file"] or default_state_file(push.job, config.env_name)
        run_deadline = _run_deadline(values["run_deadline"])
        _restore_within(config, run_deadline, values["run_deadline"].source)
        return cls(
            config_path=config.source,
            env_name=config.env_name,
            push=push,
            push_enabled=bool(push.url) and not values["no_push"].value,
            state_file=Path(state).expanduser(),
            run_deadline=run_deadline,
            check_concurrency=_check_concurrency(values["check_concurrency"]),
            sources={name: r.source for name, r in values.items()},
        )


def _run_deadline(resolved: Resolved) -> float | None:
    from slo.units import parse_duration

    if str(resolved.value).strip().lower() == "off":
        return None
    try:
        seconds = parse_duration(resolved.value)
    except ValueError as exc:
        raise ValueError(f"{resolved.source}: {exc}") from None
    if seconds <= 0:
        raise ValueError(f"{resolved.source}: the run deadline must be positive (or off)")
    return seconds


def _check_concurrency(resolved: Resolved) -> int:
    text = str(resolved.value).strip()
    if not text.isdigit() or not 1 <= int(text) <= conventions.MAX_CHECK_CONCURRENCY:
        raise ValueError(
            f"{resolved.source}: the check concurrency must be a whole number from 1 to "
            f"{conventions.MAX_CHECK_CONCURRENCY}, not {text[:20]!r}"
        )
    return int(text)


def _restore_within(config: Config, run_deadline: float | None, source: str) -> None:
    """A restore check longer than the run could never finish in it: a usage error, not a
    probe that always times out."""
    restore = config.backups.restore if config.backups is not None else None
    if restore is None or run_deadline is None or restore.timeout <= run_deadline:
        return
    raise ValueError(
        f"{config.source}: backups.restore.timeout {restore.timeout:g}s is longer than the run "
        f"deadline {run_deadline:g}s ({source}): shorten it, or lengthen the run deadline"
    )


def override(settings: PushgatewaySettings, field_name: str, resolved: Resolved) -> PushgatewaySettings:
    """`settings` with one resolved option applied; a ValueError names where the bad value came from."""
    try:
        return settings.with_overrides(**{field_name: resolved.value})
    except ValueError as exc:
        raise ValueError(f"{resolved.source}: {exc}") from None


def default_state_file(job: str, env_name: str) -> Path:
    """Outside the repo and reports/ (which CI wipes): counters must survive a fresh checkout."""
    from slo.files import path_component

    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    # `--slo-job ../../x` names a job, never a place to write.
    return base / "slo-probes" / path_component(f"{job}-{env_name}.json")
