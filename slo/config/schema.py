"""The root of `monitoring.yaml`: every section, with only the selected environment kept."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, PrivateAttr, model_validator

from slo import conventions
from slo.config.backups import BackupsSettings
from slo.config.balancer import BalancerProbe
from slo.config.cache import CacheProbe, RedisTarget
from slo.config.fields import StrictModel
from slo.config.load import LoadSettings
from slo.config.logs import LogsProbe
from slo.config.maintenance import MaintenanceWindow
from slo.config.objectives import SLO, AlertingDefaults, Budgets, ProbesSLI
from slo.config.probes import Probes
from slo.config.pushgateway import PushgatewaySettings
from slo.config.targets import Check, Environment, Target

__all__ = ["Config", "ConfigError"]


class ConfigError(Exception):
    """A config mistake, already phrased as the one line to show the user."""


class Config(StrictModel):
    """The whole file. Only the selected environment is kept (see :func:`load_config`)."""

    version: Literal[1] = 1
    environments: dict[str, Environment]
    probes: Probes = Probes()
    checks: list[Check] = Field(default_factory=list)
    pushgateway: PushgatewaySettings = PushgatewaySettings()
    slos: list[SLO] = Field(default_factory=list)
    alerting: AlertingDefaults = AlertingDefaults()
    budgets: Budgets = Budgets()
    load: LoadSettings = LoadSettings()
    #: Planned windows in which a target's runs are no SLI events and nothing pages for it.
    maintenance: list[MaintenanceWindow] = Field(default_factory=list)
    #: The seed's other services; each probe module skips while its section is absent.
    backups: BackupsSettings | None = None
    cache: CacheProbe | None = None
    balancer: BalancerProbe | None = None
    logs: LogsProbe | None = None

    @model_validator(mode="after")
    def _default_quorum(self) -> Config:
        # Filled in here, so every consumer of an SLO reads one number (`SLO.locations_quorum`).
        slos = [
            slo.model_copy(update={"quorum": self.alerting.quorum})
            if slo.quorum is None and isinstance(slo.sli, ProbesSLI)
            else slo
            for slo in self.slos
        ]
        return self.model_copy(update={"slos": slos})

    _source: Path = PrivateAttr(default=Path(conventions.CONFIG_FILE))
    _env_name: str = PrivateAttr(default=conventions.ENVIRONMENT)
    _known_targets: frozenset[str] = PrivateAttr(default=frozenset())

    @property
    def source(self) -> Path:
        return self._source

    @property
    def env_name(self) -> str:
        return self._env_name

    @property
    def known_targets(self) -> frozenset[str]:
        """The target names of every environment of the file, not only the selected one."""
        return self._known_targets or frozenset(self.environment.targets) | frozenset(self.environment.redis)

    @property
    def environment(self) -> Environment:
        return self.environments[self._env_name]

    def slo(self, name: str) -> SLO:
        for slo in self.slos:
            if slo.name == name:
                return slo
        raise KeyError(name)

    def redis_target(self, name: str) -> RedisTarget:
        try:
            return self.environment.redis[name]
        except KeyError:
            known = ", ".join(sorted(self.environment.redis)) or "none"
            raise ConfigError(
                f"{self._source}: environments.{self._env_name}.targets: no target {name!r} "
                f"with kind: redis (known: {known})"
            ) from None

    def target(self, name: str) -> Target:
        try:
            return self.environment.targets[name]
        except KeyError:
            known = ", ".join(sorted(self.environment.targets)) or "none"
            raise ConfigError(
                f"{self._source}: environments.{self._env_name}.targets: no target {name!r} (known: {known})"
            ) from None
