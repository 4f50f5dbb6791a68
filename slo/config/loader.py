"""Reading `monitoring.yaml`: YAML without duplicate keys, ``${VAR}`` expansion, one-line errors.

Every mistake becomes one :class:`ConfigError` line that names the file and the key, e.g.
``monitoring.yaml: environments.local.targets.api.timeout: invalid duration '2x' ...``.
``${VAR}`` and ``${VAR:-default}`` are expanded from the environment before validation, and
only for the selected environment, so staging's secrets are not needed to probe `local`.
Commands that never send a request (`slo rules`, `slo dashboard`, `slo validate`) load with
``secrets=False``: an unset ``${VAR}`` is then empty instead of an error.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from slo import conventions, redact
from slo.config.schema import Config, ConfigError

__all__ = ["MAX_CONFIG_BYTES", "MAX_DEPTH", "MAX_NODES", "load_config", "validate_config"]

#: Limits that hold before anything is expanded: a few hundred bytes of YAML aliases can
#: otherwise stand for billions of values, and deep nesting overflows the parser's stack.
#: A real config is a few kilobytes, a few thousand values and about ten levels deep.
MAX_CONFIG_BYTES = 1024 * 1024
MAX_NODES = 100_000
MAX_DEPTH = 64


_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _check_depth(text: str, loader: type[yaml.SafeLoader] | type[yaml.CSafeLoader]) -> None:
    """Refuse nesting deeper than MAX_DEPTH before anything is composed: both composers recurse
    once per level (libyaml's in C, with no recursion limit), while the parsers keep explicit
    stacks, so walking the events is safe at any depth and costs a few percent of the load."""
    depth = 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                mark: Any = event.start_mark  # libyaml's Mark or PyYAML's: both have .line
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


class _UniqueKeys:
    """PyYAML keeps the last of two equal keys; a duplicate is almost always a mistake.

    It also refuses documents whose aliases expand to more than MAX_NODES values, before
    building any value (the nesting depth is checked on the events, by :func:`_check_depth`).
    """

    def get_single_node(self) -> yaml.Node | None:
        node: yaml.Node | None = super().get_single_node()  # type: ignore[misc]
        if node is not None:
            _expanded_size(node)
        return node


class _PythonLoader(_UniqueKeys, yaml.SafeLoader):
    """PyYAML's own parser: its messages are the ones shown for a file that does not parse."""


#: libyaml's parser and composer, about four times faster on a config of thousands of checks;
#: the constructor (and so the duplicate-key check) is the same Python code in both.
_FastLoader: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = (
    type("_FastLoader", (_UniqueKeys, yaml.CSafeLoader), {}) if yaml.__with_libyaml__ else _PythonLoader
)


def _expanded_size(root: yaml.Node) -> int:
    """How many values the document holds with every alias expanded, counted once per shared
    node (linear time), refusing cycles and totals over MAX_NODES."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        if id(node) in active:
            raise yaml.composer.ComposerError(None, None, "an alias refers to itself", node.start_mark)
        active.add(id(node))
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(key) + size(value) for key, value in node.value)
        active.discard(id(node))
        if total > MAX_NODES:
            raise yaml.composer.ComposerError(
                None, None, f"aliases expand to more than {MAX_NODES} values", node.start_mark
            )
        sizes[id(node)] = total
        return total

    return size(root)


def _mapping_without_duplicates(
    loader: yaml.SafeLoader | yaml.CSafeLoader, node: yaml.MappingNode
) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if not isinstance(key, str | int | float | bool) and key is not None:
            raise yaml.constructor.ConstructorError(
                None, None, f"a key must be a plain value, not {type(key).__name__}", key_node.start_mark
            )
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


_PythonLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)
if _FastLoader is not _PythonLoader:
    _FastLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def _expand(
    value: Any, where: str, source: Path, env: Mapping[str, str], unset: set[str] | None = None
) -> Any:
    """Expand every ``${VAR}``. With `unset` (a set to fill), a required variable that is not
    set becomes empty and its key is added to `unset`, instead of being an error."""
    if isinstance(value, dict):
        return {
            k: _expand(v, f"{where}.{k}" if where else str(k), source, env, unset) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_expand(v, f"{where}[{i}]", source, env, unset) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        # As in the shell, `:-` also replaces a variable that is set but empty.
        if env.get(name) or (name in env and default is None):
            return env[name]
        if default is not None:
            return default
        if unset is not None:
            unset.add(where)
            return ""
        raise ConfigError(
            f"{source}: {where}: environment variable {name} is not set "
            f"(set it, or write ${{{name}:-default}})"
        )

    # Never re-read as YAML: a secret like "#9f2c" or "no" must stay the string it is. The
    # field types convert "5" and "true" themselves.
    return _VARIABLE.sub(substitute, value)


_SLI_KINDS = {"probes", "probe_latency", "first_token", "events", "histogram"}


def _location(error: ErrorDetails) -> str:
    """The key as the user wrote it: ``environments.local.targets.api.timeout``."""
    where, previous = "", None
    for part in error["loc"]:
        if isinstance(part, int):
            where += f"[{part}]"
        elif not (previous == "sli" and part in _SLI_KINDS):
            # pydantic names the union member after `sli`: not a key the user wrote
            where += f".{part}" if where else str(part)
        previous = part
    return where


def _message(error: ErrorDetails) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    if error["type"] == "missing":
        return "required key is missing"
    return error["msg"].removeprefix("Value error, ")


def _sorted_errors(error: ValidationError) -> list[ErrorDetails]:
    # An unknown key usually explains the "missing" error beside it (a typo): show it first.
    return sorted(error.errors(), key=lambda e: e["type"] != "extra_forbidden")


def _describe(error: ValidationError, source: Path) -> str:
    errors = _sorted_errors(error)
    first = errors[0]
    more = len(errors) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{source}: {_location(first)}: {_message(first)}{suffix}"


def load_config(
    path: str | os.PathLike[str] = conventions.CONFIG_FILE,
    env_name: str = conventions.ENVIRONMENT,
    environ: Mapping[str, str] | None = None,
    *,
    secrets: bool = True,
    flag: str | None = "--slo-config",
) -> Config:
    """Read, expand and validate the config, keeping only environment `env_name`.

    ``secrets=False`` for commands that send no request: an unset ``${VAR}`` is then empty.
    `flag` is the option that names another file, for the hint of a missing one (None where
    only ``SLO_CONFIG`` can, as in a Locust worker).
    """
    source = Path(path)
    environ = os.environ if environ is None else environ
    raw = _read_raw(source, flag)
    environments = raw["environments"]
    if env_name not in environments:
        known = ", ".join(sorted(map(str, environments)))
        raise ConfigError(f"{source}: environments: unknown environment {env_name!r} (known: {known})")
    config = _build(
        raw, env_name, source, _expand_selected(raw, env_name, source, environ, None if secrets else set())
    )
    redact.register_secrets(config)
    _check_references(config)
    return config


def validate_config(
    path: str | os.PathLike[str] = conventions.CONFIG_FILE,
    environ: Mapping[str, str] | None = None,
    *,
    flag: str = "--config",
) -> tuple[Config | None, list[str]]:
    """Every environment of the file against the schema, without any secret: the last valid
    environment's config (None when none is) and one line per problem, each naming the file
    and the key (``environments.staging.targets.api.timout``), shared sections reported once.
    A key whose value holds an unset ``${VAR}`` is not judged: its value is not known here."""
    source = Path(path)
    environ = os.environ if environ is None else environ
    try:
        raw = _read_raw(source, flag)
    except ConfigError as exc:
        return None, [str(exc)]
    problems: dict[str, None] = {}
    valid: Config | None = None
    for env_name in raw["environments"]:
        unset: set[str] = set()
        try:
            config = _build(raw, env_name, source, _expand_selected(raw, env_name, source, environ, unset))
            _check_references(config)
        except _Invalid as exc:
            for error in _sorted_errors(exc.error):
                where = _location(error)
                if not any(where == key or where.startswith((f"{key}.", f"{key}[")) for key in unset):
                    problems.setdefault(f"{source}: {where}: {_message(error)}")
            continue
        except ConfigError as exc:
            problems.setdefault(str(exc))
            continue
        valid = config
    return valid, list(problems)


class _Invalid(ConfigError):
    """The schema refused the document; `error` holds every problem."""

    def __init__(self, error: ValidationError, source: Path) -> None:
        super().__init__(_describe(error, source))
        self.error = error


def _read_raw(source: Path, flag: str | None) -> dict[str, Any]:
    """The parsed document, with at least one environment."""
    raw = _parse(_read_text(source, flag), source)
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections")
    environments = raw.get("environments")
    if not isinstance(environments, dict) or not environments:
        raise ConfigError(f"{source}: environments: at least one environment is required")
    return raw


def _expand_selected(
    raw: dict[str, Any], env_name: str, source: Path, environ: Mapping[str, str], unset: set[str] | None
) -> Any:
    selected = {**raw, "environments": {env_name: raw["environments"][env_name]}}
    return _expand(selected, "", source, environ, unset)


def _build(raw: dict[str, Any], env_name: str, source: Path, expanded: Any) -> Config:
    try:
        config = Config.model_validate(expanded)
    except ValidationError as exc:
        raise _Invalid(exc, source) from None
    config._source = source
    config._env_name = env_name
    # Every environment's target names, so a probe marker's typo is told from a target that
    # only the selected environment lacks.
    config._known_targets = frozenset(
        str(name)
        for environment in raw["environments"].values()
        if isinstance(environment, dict) and isinstance(environment.get("targets"), dict)
        for name in environment["targets"]
    )
    return config


def _load_yaml(text: str, loader: type[yaml.SafeLoader] | type[yaml.CSafeLoader]) -> Any:
    _check_depth(text, loader)
    return yaml.load(text, Loader=loader)  # both are SafeLoader subclasses


def _parse(text: str, source: Path) -> Any:
    """The YAML document, or a ConfigError naming the line of the first problem."""
    try:
        return _load_yaml(text, _FastLoader)
    except (yaml.YAMLError, RecursionError):
        pass  # libyaml words its errors differently: PyYAML's parser says it as documented
    try:
        return _load_yaml(text, _PythonLoader)
    except RecursionError:
        raise ConfigError(f"{source}: invalid YAML: nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source}:{line}: invalid YAML: {problem}") from None


def _read_text(source: Path, flag: str | None) -> str:
    try:
        with source.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        hint = f"use {flag} or SLO_CONFIG" if flag else "set SLO_CONFIG"
        raise ConfigError(f"{source}: config file not found ({hint})") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read config file: {exc.strerror}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{source}: config file is over {MAX_CONFIG_BYTES // 1024} KiB; is it the right file?"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{source}: line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x})") from None


def _duplicates(names: Iterable[str]) -> list[str]:
    """The names given more than once, sorted (linear: a config may declare thousands)."""
    return sorted(name for name, count in Counter(names).items() if count > 1)


def _check_references(config: Config) -> None:
    """Names that point elsewhere in the file must exist: a typo must not disable a check."""
    source = config.source
    slo_names = [slo.name for slo in config.slos]
    duplicates = _duplicates(slo_names)
    if duplicates:
        raise ConfigError(f"{source}: slos: duplicate SLO name {duplicates[0]!r}")
    duplicates = _duplicates(check.name for check in config.checks)
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
    duplicates = _duplicates(window.name for window in config.maintenance)
    if duplicates:
        raise ConfigError(f"{source}: maintenance: duplicate window name {duplicates[0]!r}")
    for i, window in enumerate(config.maintenance):
        for target in window.targets:
            if target not in config.known_targets:
                known = ", ".join(sorted(config.known_targets))
                where = f"{source}: maintenance[{i}].targets"
                raise ConfigError(f"{where}: unknown target {target!r} (known: {known})")
    for i, endpoint in enumerate(config.probes.latency.endpoints):
        known_slo(f"probes.latency.endpoints[{i}].slo", endpoint.slo)
        if endpoint.slo and config.slo(endpoint.slo).sli.kind != "probe_latency":
            raise ConfigError(
                f"{source}: probes.latency.endpoints[{i}].slo: SLO {endpoint.slo!r} is not a "
                "probe_latency SLO"
            )
