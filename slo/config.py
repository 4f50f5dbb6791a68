"""Loading and validating `monitoring.yaml`.

>>> config = load_config("monitoring.yaml", "local")
>>> config.environment.targets["api"].url
'http://127.0.0.1:8080'

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
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import AfterValidator, Field, PrivateAttr, SecretStr, ValidationError, field_validator

from slo.loadgate.settings import LoadSettings
from slo.model import Duration, Fraction, StrictModel
from slo.slodefs import SLO, Budgets

__all__ = [
    "DEFAULT_CONFIG_NAME",
    "Check",
    "Config",
    "ConfigError",
    "Environment",
    "PushgatewaySettings",
    "Target",
    "load_config",
]

DEFAULT_CONFIG_NAME = "monitoring.yaml"


class ConfigError(Exception):
    """A config mistake, already phrased as the one line to show the user."""


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    shown = url.replace(f"{parts.password}@", "***@") if parts.password else url
    try:
        parts.port  # noqa: B018 - urllib checks the port only when it is read
    except ValueError:
        raise ValueError(f"invalid port in URL {shown!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"invalid URL {shown!r} (expected http://host[:port] or https://...)")
    return url.rstrip("/")


#: An http(s) URL with a host, without a trailing slash.
Url = Annotated[str, AfterValidator(_check_url)]


class Target(StrictModel):
    """One service the probes talk to; the HTTP client applies all of it to every request."""

    url: Url
    #: Sent as ``Authorization: Bearer <token>``; write it as ``${ENV_VAR}``.
    token: SecretStr | None = None
    #: Extra request headers; values are treated as secrets in every report.
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    timeout: Duration = 5.0
    #: TLS verification: on by default; false only for a lab, never for production.
    verify: bool = True
    #: A CA bundle to trust instead of the system's (private PKI).
    ca_file: Path | None = None
    #: node_exporter on the target host, for the resources probe.
    node_exporter: Url | None = None
    #: Chat model the gateway probes request.
    model: str = "claude-sonnet-4"
    #: Also measure time to first token of a streaming completion.
    stream: bool = False

    def request_headers(self) -> dict[str, str]:
        """The headers every request to this target carries, secrets revealed: for clients only."""
        headers = {name: value.get_secret_value() for name, value in self.headers.items()}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token.get_secret_value()}"
        return headers

    @field_validator("token", "node_exporter", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        # `${TOKEN:-}` expands to "" when unset: that means no auth, not an empty bearer.
        return None if value == "" else value


class Environment(StrictModel):
    targets: dict[str, Target]


class LatencyEndpoint(StrictModel):
    target: str
    path: str = "/health"
    #: The `probe_latency` SLO this endpoint proves; its threshold and objective are used.
    slo: str = ""


class LatencyProbe(StrictModel):
    samples: int = Field(60, ge=1)
    #: Total time budget for all samples of one endpoint, so a hung target costs one timeout.
    deadline: Duration = 30.0
    #: Used when an endpoint links no SLO.
    threshold: Duration = 2.0
    quantile: Fraction = 0.95
    confidence: Fraction = 0.95
    endpoints: list[LatencyEndpoint] = Field(default_factory=lambda: [LatencyEndpoint(target="api")])


class GatewayProbe(StrictModel):
    target: str = "gateway"
    prompt: str = "Reply with the word pong."
    max_tokens: int = Field(8, ge=1)
    completion_budget: Duration = 10.0
    first_token_budget: Duration = 2.0


class MetricsProbe(StrictModel):
    target: str = "api"
    path: str = "/metrics"
    required: list[str] = Field(
        default_factory=lambda: [
            "claude_code_api_requests_total",
            "claude_code_api_latency_seconds",
            "claude_code_active_sessions",
            "claude_code_tokens_used_total",
            "claude_code_cost_usd",
        ]
    )


class ResourcesProbe(StrictModel):
    """The seed's health-check thresholds for the runner host and node_exporter targets."""

    disk: Fraction = 0.9
    memory: Fraction = 0.9
    disk_path: str = "/"


class TlsProbe(StrictModel):
    min_days_left: int = Field(14, ge=0)


class Probes(StrictModel):
    latency: LatencyProbe = LatencyProbe()
    gateway: GatewayProbe = GatewayProbe()
    metrics: MetricsProbe = MetricsProbe()
    resources: ResourcesProbe = ResourcesProbe()
    tls: TlsProbe = TlsProbe()


class Check(StrictModel):
    """A declarative HTTP check: becomes one parametrised probe, no Python needed."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    target: str | None = None
    path: str = "/"
    #: Absolute URL, instead of target + path. Kept out of reprs: it may carry credentials.
    url: Url | None = Field(None, repr=False)
    method: Literal["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"] = "GET"
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    body: Any = Field(None, repr=False)
    status: int | list[int] = 200
    #: Dotted JSON paths and the values they must equal, e.g. ``{"status": "healthy"}``.
    json_fields: dict[str, Any] = Field(default_factory=dict, alias="json")
    body_regex: str | None = None
    latency: Duration | None = None
    timeout: Duration | None = None
    slo: str = ""

    @field_validator("body_regex")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return pattern


class PushgatewaySettings(StrictModel):
    #: Empty: no push. `--pushgateway` / `PUSHGATEWAY_URL` override.
    url: Url | None = None
    job: str = "synthetic-probes"
    #: Runner name in the grouping key; the host name when empty.
    instance: str | None = None
    #: Per attempt; the client library's own default is 30 s, far too long for a timer.
    timeout: Duration = 2.0
    #: Total time spent on retries before giving up and warning.
    deadline: Duration = 6.0
    retries: int = Field(2, ge=0)
    username: str | None = None
    password: SecretStr | None = None
    token: SecretStr | None = None
    verify: bool = True
    ca_file: Path | None = None
    #: Fail the run (exit 1) when the push fails; by default a push failure only warns.
    required: bool = False
    state_file: Path | None = None

    @field_validator("url", "password", "token", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        # `${PUSHGATEWAY_URL:-}` expands to "" when unset: that means no push.
        return None if value == "" else value

    def with_overrides(self, **overrides: object) -> PushgatewaySettings:
        """These settings with values from flags or the environment, validated like the file,
        so `--pushgateway host:9091` is one clear line (ValueError), not a failed push later."""
        try:
            return PushgatewaySettings.model_validate({**self.model_dump(), **overrides})
        except ValidationError as exc:
            problem = exc.errors()[0]["msg"].removeprefix("Value error, ")
            raise ValueError(f"--pushgateway / PUSHGATEWAY_URL: {problem}") from None


class Config(StrictModel):
    """The whole file. Only the selected environment is kept (see :func:`load_config`)."""

    version: Literal[1] = 1
    environments: dict[str, Environment]
    probes: Probes = Probes()
    checks: list[Check] = Field(default_factory=list)
    pushgateway: PushgatewaySettings = PushgatewaySettings()
    slos: list[SLO] = Field(default_factory=list)
    budgets: Budgets = Budgets()
    load: LoadSettings = LoadSettings()

    _source: Path = PrivateAttr(default=Path(DEFAULT_CONFIG_NAME))
    _env_name: str = PrivateAttr(default="local")

    @property
    def source(self) -> Path:
        return self._source

    @property
    def env_name(self) -> str:
        return self._env_name

    @property
    def environment(self) -> Environment:
        return self.environments[self._env_name]

    def slo(self, name: str) -> SLO:
        for slo in self.slos:
            if slo.name == name:
                return slo
        raise KeyError(name)

    def target(self, name: str) -> Target:
        try:
            return self.environment.targets[name]
        except KeyError:
            known = ", ".join(sorted(self.environment.targets)) or "none"
            raise ConfigError(
                f"{self._source}: environments.{self._env_name}.targets: no target {name!r} (known: {known})"
            ) from None


# --- loading ---------------------------------------------------------------------------------

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
    expanded = _VARIABLE.sub(substitute, value)
    return expanded
    return expanded


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
    path: str | os.PathLike[str] = DEFAULT_CONFIG_NAME,
    env_name: str = "local",
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
