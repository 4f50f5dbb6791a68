"""The public API is explicit: `__all__` lists exactly what probe authors may rely on, the
shipped probes use nothing else, and importing it costs nothing until a name is used."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import slo

PROBES = Path(__file__).resolve().parents[1] / "probes"


#: What a probe author needs, by what it is for (httpx's tests/test_exported_members.py): a
#: name added to or dropped from `slo.__all__` is a decision made here too.
INTENDED = {
    # a probe's own run (the `probe` fixture's type), its config and its targets
    "ProbeRun", "PreviousReading", "probe_config", "Target",
    # one probe per configured item
    "parametrize_probes", "probe_param",
    # HTTP and what an answer must be
    "ProbeClient", "tls_verify", "safe_url", "ProbeFailure", "classify_status", "error_message",
    "describe", "expect_json", "expect_metrics", "expect_status", "json_path", "require_shape",
    # the latency probe's statistics
    "estimate", "min_samples", "percentile_upper_bound", "verdict", "format_ms",
    # the deployment checks, for probes of one's own on the same sections
    "BackupChecks", "CacheChecks", "LogChecks", "tls_handshake", "CheckFetcher", "judge",
    # the LLM gateway: its plan, streams, budgets and what they record
    "gateway_plan", "DiscoveryFailure", "EventLines", "ChatStream", "MessagesStream", "StreamedAnswer",
    "TokenTiming", "read_chat_stream", "read_messages_stream", "tool_call_problem", "tool_use_problem",
    "record_answer_headers", "record_deployment_health", "record_stream_timing", "record_usage",
    "Budget", "read_budgets", "record_budgets",
}  # fmt: skip


def test_all_is_exactly_the_intended_names() -> None:
    assert set(slo.__all__) == INTENDED
    assert len(slo.__all__) == len(INTENDED), "each name once"


def test_every_exported_name_resolves() -> None:
    assert sorted(slo.__all__) == slo.__all__
    for name in slo.__all__:
        assert getattr(slo, name) is not None, name
    assert set(dir(slo)) >= set(slo.__all__)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        slo.no_such_name  # noqa: B018


def test_shipped_probes_import_only_the_public_api() -> None:
    offences = []
    for module in sorted(PROBES.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text(), str(module))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("slo"):
                if node.module != "slo":
                    offences.append(f"{module.name}: from {node.module} import ...")
                offences += [
                    f"{module.name}: from slo import {alias.name}"
                    for alias in node.names
                    if alias.name not in slo.__all__
                ]
            elif isinstance(node, ast.Import):
                offences += [
                    f"{module.name}: import {a.name}" for a in node.names if a.name.startswith("slo")
                ]
    assert not offences, "probes/ reach past slo.__all__:\n" + "\n".join(offences)


def test_importing_the_package_and_the_plugin_loads_no_http_or_schema_stack() -> None:
    heavy = ("httpx", "pydantic", "yaml", "prometheus_client")
    code = f"import sys, slo, slo.plugin; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
