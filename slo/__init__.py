"""Synthetic monitoring and SLO suite: pytest probes, Pushgateway metrics, load gate, SLO rules.

The names below are the public API for probe authors; everything else is internal and may
change. Probe modules import only these (a test checks it)::

    from slo import expect_json, parametrize_probes, probe_config, probe_param

A probe's own run (HTTP clients, values, readings, notes) is the ``probe`` fixture, a
:class:`ProbeRun`.

The imports below are the one list of the API: type checkers read them, and at run time
:func:`_exports` reads the same lines, so that each name is imported on first use (the
pytest plugin imports this package in every pytest run of the environment, probe project or
not, and must not pay for httpx or pydantic there). ``__all__`` is made from them.

PYTEST_DONT_REWRITE: this file has no asserts, and `slo run` imports it before pytest (it is
the command's own package), so pytest must not warn that it came too late to rewrite it.
"""

from __future__ import annotations

import ast
import functools
import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from slo.config import (
        Target as Target,
    )
    from slo.exchange.failures import (
        ProbeFailure as ProbeFailure,
    )
    from slo.exchange.failures import (
        classify_status as classify_status,
    )
    from slo.exchange.failures import (
        error_message as error_message,
    )
    from slo.llmstream import (
        ChatStream as ChatStream,
    )
    from slo.llmstream import (
        MessagesStream as MessagesStream,
    )
    from slo.llmstream import (
        StreamedAnswer as StreamedAnswer,
    )
    from slo.llmstream import (
        TokenTiming as TokenTiming,
    )
    from slo.llmstream import (
        read_chat_stream as read_chat_stream,
    )
    from slo.llmstream import (
        read_messages_stream as read_messages_stream,
    )
    from slo.probe.backups import (
        BackupChecks as BackupChecks,
    )
    from slo.probe.balancer import (
        tls_handshake as tls_handshake,
    )
    from slo.probe.cache import (
        CacheChecks as CacheChecks,
    )
    from slo.probe.checks import (
        CheckFetcher as CheckFetcher,
    )
    from slo.probe.checks import (
        judge as judge,
    )
    from slo.probe.client import (
        ProbeClient as ProbeClient,
    )
    from slo.probe.client import (
        tls_verify as tls_verify,
    )
    from slo.probe.expect import (
        describe as describe,
    )
    from slo.probe.expect import (
        expect_json as expect_json,
    )
    from slo.probe.expect import (
        expect_metrics as expect_metrics,
    )
    from slo.probe.expect import (
        expect_status as expect_status,
    )
    from slo.probe.expect import (
        json_path as json_path,
    )
    from slo.probe.expect import (
        require_shape as require_shape,
    )
    from slo.probe.gateway_plan import (
        DiscoveryFailure as DiscoveryFailure,
    )
    from slo.probe.gateway_plan import (
        gateway_plan as gateway_plan,
    )
    from slo.probe.key_budget import (
        Budget as Budget,
    )
    from slo.probe.key_budget import (
        read_budgets as read_budgets,
    )
    from slo.probe.key_budget import (
        record_budgets as record_budgets,
    )
    from slo.probe.llm import (
        record_answer_headers as record_answer_headers,
    )
    from slo.probe.llm import (
        record_deployment_health as record_deployment_health,
    )
    from slo.probe.llm import (
        record_stream_timing as record_stream_timing,
    )
    from slo.probe.llm import (
        record_usage as record_usage,
    )
    from slo.probe.llm import (
        tool_call_problem as tool_call_problem,
    )
    from slo.probe.llm import (
        tool_use_problem as tool_use_problem,
    )
    from slo.probe.logs import (
        LogChecks as LogChecks,
    )
    from slo.probe.params import (
        parametrize_probes as parametrize_probes,
    )
    from slo.probe.params import (
        probe_param as probe_param,
    )
    from slo.probe.run import (
        PreviousReading as PreviousReading,
    )
    from slo.probe.run import (
        ProbeRun as ProbeRun,
    )
    from slo.probe.sse import (
        EventLines as EventLines,
    )
    from slo.redact import (
        safe_url as safe_url,
    )
    from slo.runconfig import (
        probe_config as probe_config,
    )
    from slo.stats import (
        estimate as estimate,
    )
    from slo.stats import (
        min_samples as min_samples,
    )
    from slo.stats import (
        percentile_upper_bound as percentile_upper_bound,
    )
    from slo.stats import (
        verdict as verdict,
    )
    from slo.units import (
        format_ms as format_ms,
    )


@functools.cache
def _exports() -> dict[str, str]:
    """Each public name and its module, read from the ``if TYPE_CHECKING:`` imports above."""
    tree = ast.parse(Path(__file__).read_text(encoding="utf-8"))
    block = next(
        node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    )
    return {
        alias.name: str(node.module)
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }


def __getattr__(name: str) -> Any:
    if name == "__all__":
        return sorted(_exports())
    if name not in _exports():
        raise AttributeError(f"module 'slo' has no attribute {name!r}")
    value = getattr(importlib.import_module(_exports()[name]), name)
    globals()[name] = value  # imported once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_exports()])
