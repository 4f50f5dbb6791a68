"""Synthetic monitoring and SLO suite: pytest probes, Pushgateway metrics, load gate, SLO rules.

The names below are the public API for probe authors and integrations; everything else is
internal and may change.
"""

from slo.config import Check, Config, ConfigError, Target, load_config
from slo.probe.client import Phases, ProbeClient, RequestRecord
from slo.probe.expect import describe, expect_json, expect_metrics, expect_status, json_path, require_shape
from slo.probe.failures import ProbeFailure
from slo.report.push import PushResult, push_registry

__all__ = [
    "Check",
    "Config",
    "ConfigError",
    "Phases",
    "ProbeClient",
    "ProbeFailure",
    "PushResult",
    "RequestRecord",
    "Target",
    "describe",
    "expect_json",
    "expect_metrics",
    "expect_status",
    "json_path",
    "load_config",
    "push_registry",
    "require_shape",
]
