"""Names of the recorded series: the contract between rules, budget report and dashboard.

Every series carries ``slo="<name>"``; window-dependent ones also carry ``window="1h"`` (or
the SLO's own window, ``30d`` / ``calendar-month``), so one name serves every window and a
dashboard can list all windows with one query. Probe-based SLIs keep the ``environment``
label of the pushed metrics, so staging failures never burn production's budget.
"""

from __future__ import annotations

import json

__all__ = [
    "BAD_EVENTS",
    "BUDGET_REMAINING",
    "BURN_RATE",
    "ERROR_BUDGET",
    "ERROR_RATIO",
    "EVENTS",
    "LOCATION_BAD_EVENTS",
    "LOCATION_ERROR_RATIO",
    "LOCATION_EVENTS",
    "OBJECTIVE",
    "promql_string",
    "selector",
]

#: Events (probe runs, requests) in the window.
EVENTS = "slo:sli_events:increase"
#: Bad events (failed runs, slow or failed requests) in the window.
BAD_EVENTS = "slo:sli_bad_events:increase"
#: Bad over all events; absent when the window saw no events (never NaN).
ERROR_RATIO = "slo:sli_error:ratio"
#: Error ratio over the error budget: 1 spends the budget exactly over the SLO window.
BURN_RATE = "slo:burn_rate:ratio"
#: Share of the error budget left over the SLO window: 1 untouched, 0 spent, below 0 overspent.
BUDGET_REMAINING = "slo:error_budget:remaining"
#: The same per location (probe SLIs: ``location`` label), for the quorum and the views.
LOCATION_EVENTS = "slo:location_events:increase"
LOCATION_BAD_EVENTS = "slo:location_bad_events:increase"
LOCATION_ERROR_RATIO = "slo:location_error:ratio"
#: The objective (0.999) and error budget (0.001) as series, for dashboards and joins.
OBJECTIVE = "slo:objective:ratio"
ERROR_BUDGET = "slo:error_budget:ratio"


def promql_string(value: str) -> str:
    """A PromQL double-quoted string literal (Go escapes, which JSON's are a subset of)."""
    return json.dumps(value, ensure_ascii=False)


def selector(metric: str, **labels: str) -> str:
    """``metric{label="value",...}`` with every value quoted safely."""
    matchers = ",".join(f"{name}={promql_string(value)}" for name, value in labels.items())
    return f"{metric}{{{matchers}}}"
