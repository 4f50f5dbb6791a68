"""The schema of `monitoring.yaml` and its loader: the one place every entry point reads it from.

    config = load_config("monitoring.yaml", "local")
    config.environment.targets["api"].url   # 'http://127.0.0.1:8080'

The core imports no feature package: each section's model lives here, beside the loader.
"""

from slo.config.load import LoadSettings
from slo.config.loader import load_config
from slo.config.objectives import SLO, Budgets
from slo.config.probes import Probes
from slo.config.pushgateway import PushgatewaySettings
from slo.config.schema import Config, ConfigError
from slo.config.targets import Check, Environment, Target

__all__ = [
    "SLO",
    "Budgets",
    "Check",
    "Config",
    "ConfigError",
    "Environment",
    "LoadSettings",
    "Probes",
    "PushgatewaySettings",
    "Target",
    "load_config",
]
