"""The API service (default port 8080): ``/health``, ``/sandbox/status`` and ``/metrics``.

Response shapes follow the seed chapter's exporter and health checker, which read
``active_sessions``, ``tokens_used``, ``total_cost`` from ``/health`` and ``violations`` from
``/sandbox/status``.

``/health`` and ``/sandbox/status`` are traffic: faults apply to them. ``/metrics`` is not
faulted (nor authenticated, nor counted in ``claude_code_api_requests_total``): a stack that
is failing must still be scrapable, or the metrics probe and the alert rules could never see
the failure they are meant to report.
"""

from __future__ import annotations

import shutil
from random import Random
from typing import Any

import psutil

from devstack.refstack.deployment import Deployment
from devstack.refstack.faults import COMMON_FIELDS, Faults, FaultState
from devstack.refstack.server import Request, Response, Service, json_response

FAULT_FIELDS = COMMON_FIELDS | {"sandbox_violations"}
USAGE_THRESHOLD_PERCENT = 90.0
"""The seed health checker's disk and memory threshold."""


def _usage_check(percent: float) -> dict[str, Any]:
    status = "healthy" if percent < USAGE_THRESHOLD_PERCENT else "unhealthy"
    return {
        "status": status,
        "usage_percent": round(percent, 1),
        "threshold_percent": USAGE_THRESHOLD_PERCENT,
    }


class ApiService(Service):
    """The coding assistant's API service as the monitoring sees it."""

    def __init__(
        self, deployment: Deployment, faults: Faults | None = None, *, rng: Random | None = None
    ) -> None:
        fault_state = FaultState(
            FAULT_FIELDS, faults, rng=rng, on_violations=deployment.add_sandbox_violations
        )
        super().__init__("api", fault_state, deployment.api_metrics)
        self.deployment = deployment
        self.add("GET", "/health", self._health)
        self.add("GET", "/sandbox/status", self._sandbox_status)

    def _health(self, request: Request) -> Response:
        sessions, tokens, cost = self.deployment.usage()
        disk = shutil.disk_usage("/")
        # "status" stays "healthy" while the process serves: a full disk on a CI runner is
        # reported in "checks" for the probes to judge, not turned into a failed liveness.
        return json_response(
            {
                "status": "healthy",
                "active_sessions": sessions,
                "tokens_used": tokens,
                "total_cost": round(cost, 6),
                "checks": {
                    "disk": _usage_check(100.0 * disk.used / disk.total),
                    "memory": _usage_check(psutil.virtual_memory().percent),
                },
            }
        )

    def _sandbox_status(self, request: Request) -> Response:
        return json_response(
            {
                "status": "ok",
                "violations": self.faults.current().sandbox_violations,
                "active_sandboxes": self.deployment.active_sandboxes,
            }
        )
