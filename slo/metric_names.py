"""The names of the pushed metrics (a contract: see DESIGN.md), defined once.

The exposition that pushes them, the rules and dashboard that read them, the demo and the
tests all take them from here, so a name cannot drift between the writer and its readers.
This module imports nothing: every layer may use it.

Every probe series carries the labels ``kind``, ``probe``, ``slo`` and ``target``, and
``alert`` when its marker names the alert it feeds (:data:`ALERT_LABEL`).
"""

from __future__ import annotations

__all__ = [
    "ALERT_LABEL",
    "GEN_AI_BUDGET_REMAINING",
    "GEN_AI_BUDGET_RESET",
    "GEN_AI_COST",
    "GEN_AI_DEPLOYMENT_HEALTHY",
    "GEN_AI_FIRST_TOKEN",
    "GEN_AI_MAX_GAP",
    "GEN_AI_OPERATION_DURATION",
    "GEN_AI_RATELIMIT_REMAINING",
    "GEN_AI_TIME_PER_TOKEN",
    "GEN_AI_TOKENS",
    "GEN_AI_TOKENS_PER_SECOND",
    "MAINTENANCE",
    "MAINTENANCE_END",
    "MAINTENANCE_WINDOW_END",
    "MAINTENANCE_WINDOW_START",
    "PREFIX",
    "PROBE_DEGRADED",
    "PROBE_DURATION",
    "PROBE_FAILURES",
    "PROBE_HTTP_PHASE",
    "PROBE_LAST_FAILURE",
    "PROBE_LATENCY",
    "PROBE_RETRIES",
    "PROBE_RUNS",
    "PROBE_SUCCESS",
    "RUNNER_HEARTBEAT",
    "RUNNER_SKIPPED_TICKS",
    "SUITE_DURATION",
    "SUITE_LAST_RUN",
    "SUITE_PROBES",
    "TARGET_DEGRADED_RUNS",
    "TARGET_FAILED_RUNS",
    "TARGET_RUNS",
    "TLS_DAYS_LEFT",
    "last_gauge",
    "value_metric",
]

#: Every pushed name starts with it: users often run blackbox_exporter (``probe_*``) beside.
PREFIX = "synthetic_"

PROBE_SUCCESS = "synthetic_probe_success"
PROBE_DEGRADED = "synthetic_probe_degraded"
PROBE_DURATION = "synthetic_probe_duration_seconds"
PROBE_RUNS = "synthetic_probe_runs_total"
PROBE_FAILURES = "synthetic_probe_failures_total"
PROBE_RETRIES = "synthetic_probe_retries_total"
PROBE_LATENCY = "synthetic_probe_latency_seconds"
PROBE_HTTP_PHASE = "synthetic_probe_http_phase_seconds"
PROBE_LAST_FAILURE = "synthetic_probe_last_failure_timestamp_seconds"
TARGET_RUNS = "synthetic_target_runs_total"
TARGET_FAILED_RUNS = "synthetic_target_failed_runs_total"
TARGET_DEGRADED_RUNS = "synthetic_target_degraded_runs_total"
SUITE_LAST_RUN = "synthetic_suite_last_run_timestamp_seconds"
SUITE_DURATION = "synthetic_suite_duration_seconds"
SUITE_PROBES = "synthetic_suite_probes"
#: The warm runner's (`slo run`) liveness: when it last ticked, and the ticks it skipped
#: because the previous run was still going.
RUNNER_HEARTBEAT = "synthetic_runner_heartbeat_timestamp_seconds"
RUNNER_SKIPPED_TICKS = "synthetic_runner_skipped_ticks_total"
#: 1 while a maintenance window covers the target (0 outside), pushed by every run per target.
MAINTENANCE = "synthetic_maintenance"
#: When the window covering the target ends, pushed beside a 1: a runner stopped inside a
#: window leaves its 1 in the Pushgateway for ever, and the rules stop believing it here.
MAINTENANCE_END = "synthetic_maintenance_end_timestamp_seconds"
#: An ad-hoc window (`slo maintenance start`) as its own group (`conventions.MAINTENANCE_JOB`).
MAINTENANCE_WINDOW_START = "synthetic_maintenance_window_start_timestamp_seconds"
MAINTENANCE_WINDOW_END = "synthetic_maintenance_window_end_timestamp_seconds"

# Probe values (``probe_value(name, ...)``, pushed as ``synthetic_<name>``: :func:`value_metric`).
#: The LLM layer's, named after OpenTelemetry's gen-ai conventions (:mod:`slo.report.genai`).
GEN_AI_FIRST_TOKEN = "gen_ai_time_to_first_token_seconds"
GEN_AI_TIME_PER_TOKEN = "gen_ai_time_per_output_token_seconds"
GEN_AI_MAX_GAP = "gen_ai_max_time_between_tokens_seconds"
GEN_AI_TOKENS_PER_SECOND = "gen_ai_output_tokens_per_second"
GEN_AI_OPERATION_DURATION = "gen_ai_operation_duration_seconds"
GEN_AI_TOKENS = "gen_ai_tokens"
GEN_AI_COST = "gen_ai_probe_cost_usd"
GEN_AI_RATELIMIT_REMAINING = "gen_ai_ratelimit_remaining"
GEN_AI_BUDGET_REMAINING = "gen_ai_budget_remaining_usd"
GEN_AI_BUDGET_RESET = "gen_ai_budget_reset_timestamp_seconds"
GEN_AI_DEPLOYMENT_HEALTHY = "gen_ai_deployment_healthy"
#: Days left on a target's TLS certificate (probes/test_tls.py).
TLS_DAYS_LEFT = "tls_certificate_days_left"

#: The probe series' label naming the alert the probe feeds (``@pytest.mark.probe(alert=...)``):
#: alert rules select their probes by it, never by a file or test name.
ALERT_LABEL = "alert"


def value_metric(name: str) -> str:
    """The pushed name of a probe value (``probe_value("tls_certificate_days_left", ...)``)."""
    return PREFIX + name


def last_gauge(name: str) -> str:
    """The gauge of a streaming timing's last value: ``gen_ai_last_output_tokens_per_second``."""
    return name.replace("gen_ai_", "gen_ai_last_", 1)
