"""Reading `monitoring.yaml`: YAML without duplicate keys, ``${VAR}`` expansion, one-line errors.

Every mistake becomes one :class:`ConfigError` line that names the file and the key, e.g.
``monitoring.yaml: environments.local.targets.api.timeout: invalid duration '2x' ...``.
``${VAR}`` and ``${VAR:-default}`` are expanded from the environment before validation, and
only for the selected environment, so staging's secrets are not needed to probe `local`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from slo import conventions
from slo.config.schema import Config, ConfigError

__all__ = ["load_config"]


_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys; a duplicate is almost always a mistake."""


def _mapping_without_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def _expand(value: Any, where: str, source: Path, env: Mapping[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _expand(v, f"{where}.{k}" if where else str(k), source, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, f"{where}[{i}]", source, env) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        # As in the shell, `:-` also replaces a variable that is set but empty.
        if env.get(name) or (name in env and default is None):
            return env[name]
        if default is not None:
            return default
        raise ConfigError(
            f"{source}: {where}: environment variable {name} is not set "
            f"(set it, or write ${{{name}:-default}})"
        )

    # Never re-read as YAML: a secret like "#9f2c" or "no" must stay the string it is. The
    # field types convert "5" and "true" themselves.
    return _VARIABLE.sub(substitute, value)


_SLI_KINDS = {"probes", "probe_latency", "events", "histogram"}


def _describe(error: ValidationError, source: Path) -> str:
    errors = error.errors()
    # An unknown key usually explains the "missing" error beside it (a typo): show it first.
    first = min(errors, key=lambda e: e["type"] != "extra_forbidden")
    where, previous = "", None
    for part in first["loc"]:
        if isinstance(part, int):
            where += f"[{part}]"
        elif not (previous == "sli" and part in _SLI_KINDS):
            # pydantic names the union member after `sli`: not a key the user wrote
            where += f".{part}" if where else str(part)
        previous = part
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    elif first["type"] == "missing":
        message = "required key is missing"
    more = len(errors) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{source}: {where}: {message}{suffix}"


def load_config(
    path: str | os.PathLike[str] = conventions.CONFIG_FILE,
    env_name: str = conventions.ENVIRONMENT,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read, expand and validate the config, keeping only environment `env_name`."""
    source = Path(path)
    environ = os.environ if environ is None else environ
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: config file not found (use --slo-config or SLO_CONFIG)") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read config file: {exc.strerror}") from None
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source}:{line}: invalid YAML: {problem}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections")
    environments = raw.get("environments")
    if not isinstance(environments, dict) or not environments:
        raise ConfigError(f"{source}: environments: at least one environment is required")
    if env_name not in environments:
        known = ", ".join(sorted(map(str, environments)))
        raise ConfigError(f"{source}: environments: unknown environment {env_name!r} (known: {known})")

    selected = {**raw, "environments": {env_name: environments[env_name]}}
    expanded = _expand(selected, "", source, environ)
    try:
        config = Config.model_validate(expanded)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None
    config._source = source
    config._env_name = env_name
    _check_references(config)
    return config


def _check_references(config: Config) -> None:
    """Names that point elsewhere in the file must exist: a typo must not disable a check."""
    source = config.source
    slo_names = [slo.name for slo in config.slos]
    duplicates = sorted({name for name in slo_names if slo_names.count(name) > 1})
    if duplicates:
        raise ConfigError(f"{source}: slos: duplicate SLO name {duplicates[0]!r}")
    check_names = [check.name for check in config.checks]
    duplicates = sorted({name for name in check_names if check_names.count(name) > 1})
    if duplicates:
        raise ConfigError(f"{source}: checks: duplicate check name {duplicates[0]!r}")

    def known_slo(where: str, name: str) -> None:
        if name and name not in slo_names:
            raise ConfigError(
                f"{source}: {where}: unknown SLO {name!r} (known: {', '.join(slo_names) or 'none'})"
            )

    for i, check in enumerate(config.checks):
        if (check.url is None) == (check.target is None):
            raise ConfigError(f"{source}: checks[{i}] ({check.name}): give exactly one of url or target")
        if check.target is not None and check.target not in config.environment.targets:
            known = ", ".join(sorted(config.environment.targets))
            raise ConfigError(
                f"{source}: checks[{i}].target: environment {config.env_name!r} has no target "
                f"{check.target!r} (known: {known})"
            )
        known_slo(f"checks[{i}].slo", check.slo)
    for i, endpoint in enumerate(config.probes.latency.endpoints):
        known_slo(f"probes.latency.endpoints[{i}].slo", endpoint.slo)
        if endpoint.slo and config.slo(endpoint.slo).sli.kind != "probe_latency":
            raise ConfigError(
                f"{source}: probes.latency.endpoints[{i}].slo: SLO {endpoint.slo!r} is not a "
                "probe_latency SLO"
            )
