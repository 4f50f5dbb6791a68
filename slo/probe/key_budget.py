"""What is left of a LiteLLM key's budget and its team's, and when each resets.

LiteLLM keeps virtual keys, teams and their spend in its database (``DATABASE_URL``):

- ``GET /key/info`` without a ``key`` parameter describes the key the request is sent with
  (so the key stays out of URLs and access logs) as ``{"key": ..., "info": {...}}``, `info`
  being the key's row without its hash: ``spend``, ``max_budget`` (None: unlimited),
  ``budget_duration``, ``budget_reset_at`` (when the window ends and spend drops to 0),
  ``key_alias``, ``key_name`` (``sk-...abcd``), ``team_id``, ``litellm_budget_table``
  (litellm/proxy/management_endpoints/key_management_endpoints.py, ``info_key_fn``; the
  fields are ``LiteLLM_VerificationToken`` in litellm/models/verification_token.py);
- ``GET /team/info?team_id=ID`` answers ``{"team_id", "team_info": {...}, "keys",
  "team_memberships"}``, `team_info` with ``spend``, ``max_budget``, ``budget_duration``,
  ``budget_reset_at``, ``team_alias`` (team_endpoints.py, ``team_info``;
  ``LiteLLM_TeamTable`` in litellm/models/team.py), and a team's own key may read it.

Without a database both answer 500 ``Database not connected. Connect a database to your
proxy - ...`` to the master key, and every other key is refused first with 400
``No connected db.`` (type ``no_db_connection``): :func:`read_budgets` says so in one line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
import pytest

from slo.exchange.failures import ProbeFailure, classify_status, error_message
from slo.probe.client import ProbeClient
from slo.probe.expect import describe, expect_json, require_shape
from slo.probe.run import ProbeRun, probe_run
from slo.report import genai

__all__ = ["Budget", "read_budgets", "record_budgets"]

#: What LiteLLM answers on ``/key/info`` and ``/team/info`` when it has no database.
NO_DATABASE = "database not connected"
#: LiteLLM's ``error.type`` for a virtual key it cannot look up without a database.
NO_DB_CONNECTION = "no_db_connection"


@dataclass(frozen=True)
class Budget:
    """One budget as the gateway reports it: a key's or its team's."""

    scope: Literal["key", "team"]
    #: The alias, else the key's abbreviated name (``sk-...abcd``) or the team id.
    name: str
    spend: float
    #: None: no budget (unlimited).
    max_budget: float | None
    #: When the budget window ends and spend resets (None: never, or no window).
    reset_at: datetime | None

    @property
    def left(self) -> float | None:
        """USD left (negative: overspent, which LiteLLM allows by the last request's cost)."""
        return None if self.max_budget is None else self.max_budget - self.spend

    def describe(self) -> str:
        if self.max_budget is None or self.left is None:
            return f"{self.scope} {self.name}: no max_budget (spent ${self.spend:.2f})"
        text = f"{self.scope} {self.name}: ${self.left:.2f} left of ${self.max_budget:.2f}"
        if self.reset_at is not None:
            text += f", resets {self.reset_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
        return text


def read_budgets(client: ProbeClient) -> list[Budget]:
    """The budget of the key `client` sends, then its team's when it has one.

    Raises :class:`ProbeFailure` naming the cause when the gateway has no database, when the
    key is not one of its virtual keys (the master key is not), or on any other error.
    """
    response = client.get("/key/info")
    _fail_without_database(response)
    if response.status_code == 404:
        raise ProbeFailure(
            f"{describe(response)}: {error_message(response.text)[0] or 'key not found'}: the "
            "target's key is not a virtual key (the master key has no budget); probe with the key "
            "whose budget matters",
            "http_status",
        )
    document = expect_json(response)
    require_shape(response, document, {"info": dict})
    info = document["info"]
    table = info.get("litellm_budget_table")
    max_budget = info.get("max_budget")
    if max_budget is None and isinstance(table, dict):
        # A key linked to a budget row: LiteLLM enforces that row's max_budget.
        max_budget = table.get("max_budget")
    name = str(info.get("key_alias") or info.get("key_name") or "")
    budgets = [_budget(response, "key", name, info, max_budget)]
    team_id = info.get("team_id")
    if isinstance(team_id, str) and team_id:
        response = client.get("/team/info", params={"team_id": team_id})
        _fail_without_database(response)
        document = expect_json(response)
        require_shape(response, document, {"team_info": dict})
        team = document["team_info"]
        name = str(team.get("team_alias") or team_id)
        budgets.append(_budget(response, "team", name, team, team.get("max_budget")))
    return budgets


def _fail_without_database(response: httpx.Response) -> None:
    if response.is_success:
        return
    message, kind = error_message(response.text)
    if kind == NO_DB_CONNECTION or NO_DATABASE in message.lower():
        reason, _ = classify_status(response.status_code, response.text)
        raise ProbeFailure(
            f"{describe(response)} returned {response.status_code}: the gateway has no database, "
            f"where LiteLLM keeps key and team budgets (DATABASE_URL): {message}",
            # 500 is LiteLLM's, not an upstream provider's failure: a configuration to fix.
            reason if reason == "auth" else "http_status",
        )


def _budget(
    response: httpx.Response,
    scope: Literal["key", "team"],
    name: str,
    row: Mapping[str, Any],
    max_budget: object,
) -> Budget:
    spend = _number(row.get("spend") or 0.0)
    limit = None if max_budget is None else _number(max_budget)
    if spend is None or (max_budget is not None and limit is None):
        raise ProbeFailure(
            f"{describe(response)} reports {scope} {name} spend {row.get('spend')!r} and max_budget "
            f"{max_budget!r}, expected numbers",
        )
    return Budget(scope, name, spend, limit, _timestamp(row.get("budget_reset_at")))


def record_budgets(probe: ProbeRun | pytest.FixtureRequest, budgets: Iterable[Budget]) -> None:
    """Each budget's USD left and reset time as gauges labelled `scope` and `name`; a budget
    without a max_budget has nothing left to record."""
    for budget in budgets:
        labels = {"scope": budget.scope, "name": budget.name}
        if budget.left is not None:
            probe_run(probe).labelled_value(genai.BUDGET_REMAINING, budget.left, "gauge", labels)
        if budget.reset_at is not None:
            probe_run(probe).labelled_value(genai.BUDGET_RESET, budget.reset_at.timestamp(), "gauge", labels)


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _timestamp(value: object) -> datetime | None:
    """LiteLLM's ISO 8601 ``budget_reset_at`` (naive values are UTC, as its database keeps them)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
