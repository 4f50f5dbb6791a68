"""Maintenance in the rules: which targets are in a window now, the clause that keeps every
alert of such a target quiet, and the one notice that a window is open.

Every run pushes `synthetic_maintenance{target}` (1 inside a window) and, inside one, the
window's end. A runner stopped inside a window leaves its 1 in the Pushgateway for ever, so a
1 whose window has ended no longer counts: the alerts it held back fire again, and a stale
runner is named once its window is over.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slo.config.objectives import SLO
from slo.metric_names import MAINTENANCE, MAINTENANCE_END
from slo.objectives.rules.names import promql_string

__all__ = [
    "NOTICE",
    "NOTICE_SEVERITY",
    "in_maintenance",
    "maintenance_group",
    "slo_target",
    "unless_in_maintenance",
]

#: The informational alert while a window is open; the only one a target in a window raises.
NOTICE = "SyntheticMaintenance"
#: Routed to no one by the shipped Alertmanager config: it informs, it never notifies.
NOTICE_SEVERITY = "info"

#: The labels every run's maintenance series carry (its grouping key and the target).
_RUNNER = ("job", "environment", "instance", "location", "target")


def slo_target(slo: SLO) -> str | None:
    """The target a probe SLO measures; None for an SLO of a service's own metrics."""
    target = getattr(slo.sli, "target", None)
    return target if isinstance(target, str) else None


def in_maintenance(target: str | None = None) -> str:
    """Series (labelled like a run's push, with ``target``) of the targets in a window now;
    only `target`'s when given."""
    matcher = f"{{target={promql_string(target)}}}" if target else ""
    return (
        f"({MAINTENANCE}{matcher} == 1 unless on ({', '.join(_RUNNER)}) {MAINTENANCE_END}{matcher} <= time())"
    )


def unless_in_maintenance(on: Sequence[str], target: str | None = None) -> str:
    """The clause appended to an alert's expression whose series carry the labels `on`: it
    drops the series of a target (`target`, or the series' own) in a window now."""
    labels = ", ".join(on)
    return f"unless on ({labels}) max by ({labels}) {in_maintenance(target)}"


def maintenance_group() -> dict[str, Any]:
    """`synthetic-maintenance`: the notice, one per environment and target in a window."""
    return {
        "name": "synthetic-maintenance",
        "rules": [
            {
                "alert": NOTICE,
                "expr": f"max by (environment, target) {in_maintenance()}",
                "labels": {"severity": NOTICE_SEVERITY},
                "annotations": {
                    "summary": "A maintenance window is open for {{ $labels.target }}",
                    "description": (
                        "{{ $labels.target }} ({{ $labels.environment }}) is in a maintenance "
                        "window: its probes run and report, but their runs are no SLI events and "
                        "no burn, threshold, probe or staleness alert fires for it. `slo "
                        "maintenance list` shows the window; the first run after it counts again."
                    ),
                },
            }
        ],
    }
