"""Synthetic monitoring and SLO suite: pytest probes, Pushgateway metrics, load gate, SLO rules.

The names below are the public API for probe authors and integrations; everything else is
internal and may change. Probe modules import only these (a test checks it)::

    from slo import expect_json, parametrize_probes, probe_config, probe_param

Each name is imported on first use: the pytest plugin imports this package in every pytest
run of the environment, probe project or not, and must not pay for httpx or pydantic there.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from slo.config import Check, Config, ConfigError, Target, load_config
    from slo.exchange.failures import ProbeFailure, classify_status, error_message
    from slo.llmstream import (
        ChatStream,
        MessagesStream,
        StreamedAnswer,
        TokenTiming,
        read_chat_stream,
        read_messages_stream,
    )
    from slo.plugin import probe_config, record_requests
    from slo.probe.backups import BackupChecks
    from slo.probe.balancer import tls_handshake
    from slo.probe.cache import CacheChecks
    from slo.probe.checks import CheckFetcher, judge
    from slo.probe.client import Phases, ProbeClient, RequestRecord, tls_verify
    from slo.probe.expect import (
        describe,
        expect_json,
        expect_metrics,
        expect_status,
        json_path,
        require_shape,
    )
    from slo.probe.gateway_plan import DiscoveryFailure, gateway_plan
    from slo.probe.key_budget import Budget, read_budgets, record_budgets
    from slo.probe.llm import (
        record_answer_headers,
        record_deployment_health,
        record_stream_timing,
        record_usage,
        tool_call_problem,
        tool_use_problem,
    )
    from slo.probe.logs import LogChecks
    from slo.probe.params import parametrize_probes, probe_param
    from slo.probe.sse import EventLines
    from slo.redact import safe_url
    from slo.report.push import PushResult, push_registry
    from slo.report.readings import PreviousReading, previous_reading, record_reading, report_note
    from slo.report.values import record_value
    from slo.stats import estimate, min_samples, percentile_upper_bound, verdict
    from slo.units import format_ms

_EXPORTS = {
    "slo.config": ("Check", "Config", "ConfigError", "Target", "load_config"),
    "slo.plugin": ("probe_config", "record_requests"),
    "slo.probe.backups": ("BackupChecks",),
    "slo.probe.balancer": ("tls_handshake",),
    "slo.probe.cache": ("CacheChecks",),
    "slo.probe.checks": ("CheckFetcher", "judge"),
    "slo.probe.client": ("Phases", "ProbeClient", "RequestRecord", "tls_verify"),
    "slo.probe.expect": (
        "describe",
        "expect_json",
        "expect_metrics",
        "expect_status",
        "json_path",
        "require_shape",
    ),
    "slo.exchange.failures": ("ProbeFailure", "classify_status", "error_message"),
    "slo.llmstream": (
        "ChatStream",
        "MessagesStream",
        "StreamedAnswer",
        "TokenTiming",
        "read_chat_stream",
        "read_messages_stream",
    ),
    "slo.probe.llm": (
        "record_answer_headers",
        "record_deployment_health",
        "record_stream_timing",
        "record_usage",
        "tool_call_problem",
        "tool_use_problem",
    ),
    "slo.probe.gateway_plan": ("DiscoveryFailure", "gateway_plan"),
    "slo.probe.key_budget": ("Budget", "read_budgets", "record_budgets"),
    "slo.probe.logs": ("LogChecks",),
    "slo.probe.params": ("parametrize_probes", "probe_param"),
    "slo.probe.sse": ("EventLines",),
    "slo.redact": ("safe_url",),
    "slo.report.push": ("PushResult", "push_registry"),
    "slo.report.readings": ("PreviousReading", "previous_reading", "record_reading", "report_note"),
    "slo.report.values": ("record_value",),
    "slo.stats": ("estimate", "min_samples", "percentile_upper_bound", "verdict"),
    "slo.units": ("format_ms",),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "BackupChecks",
    "Budget",
    "CacheChecks",
    "ChatStream",
    "Check",
    "CheckFetcher",
    "Config",
    "ConfigError",
    "DiscoveryFailure",
    "EventLines",
    "LogChecks",
    "MessagesStream",
    "Phases",
    "PreviousReading",
    "ProbeClient",
    "ProbeFailure",
    "PushResult",
    "RequestRecord",
    "StreamedAnswer",
    "Target",
    "TokenTiming",
    "classify_status",
    "describe",
    "error_message",
    "estimate",
    "expect_json",
    "expect_metrics",
    "expect_status",
    "format_ms",
    "gateway_plan",
    "json_path",
    "judge",
    "load_config",
    "min_samples",
    "parametrize_probes",
    "percentile_upper_bound",
    "previous_reading",
    "probe_config",
    "probe_param",
    "push_registry",
    "read_budgets",
    "read_chat_stream",
    "read_messages_stream",
    "record_answer_headers",
    "record_budgets",
    "record_deployment_health",
    "record_reading",
    "record_requests",
    "record_stream_timing",
    "record_usage",
    "record_value",
    "report_note",
    "require_shape",
    "safe_url",
    "tls_handshake",
    "tls_verify",
    "tool_call_problem",
    "tool_use_problem",
    "verdict",
]


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'slo' has no attribute {name!r}")
    value = getattr(importlib.import_module(_MODULE_OF[name]), name)
    globals()[name] = value  # imported once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
