"""The budget probe (`test_budget_left`) on the answers of LiteLLM's database-backed endpoints.

LiteLLM serves ``/key/info`` and ``/team/info`` only from its database, through
prisma-client-py, whose query engine is a native binary downloaded from binaries.prisma.sh on
first use; this machine reaches PyPI, Debian and npm only (npm has the wasm engines, which
prisma-client-py cannot use), so a real LiteLLM with a PostgreSQL ``DATABASE_URL`` stops at
startup here (docs/llm-gateway.md, "Key and team budgets"). These tests serve the exact shapes
LiteLLM's source builds, from a loopback stand-in; what a real LiteLLM without a database answers is
tested against it in ``tests/test_litellm.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from loopback import loopback_server, url_of
from probe_project import junit_cases, make_probe_project
from prometheus_client.parser import text_string_to_metric_families

from devstack.daemons import Pushgateway
from slo.config import ConfigError, load_config

pytestmark = pytest.mark.slow

BUDGET = "test_gateway::test_budget_left"
RESETS = "2026-12-03T00:00:00+00:00"


def key_info(alias: str | None, spend: float, max_budget: float | None, **fields: Any) -> dict[str, Any]:
    """``info_key_fn``'s answer (litellm/proxy/management_endpoints/key_management_endpoints.py):
    ``{"key": ..., "info": key_info_dict}``, the row of ``LiteLLM_VerificationToken``
    (litellm/models/verification_token.py) without ``token``, plus ``status``, as FastAPI
    encodes it (datetimes in ISO 8601)."""
    info = {
        "key_name": "sk-...9f2c",
        "key_alias": alias,
        "spend": spend,
        "total_spend": spend,
        "max_budget": max_budget,
        "expires": None,
        "models": [],
        "aliases": {},
        "config": {},
        "user_id": None,
        "team_id": None,
        "max_parallel_requests": None,
        "metadata": {},
        "tpm_limit": None,
        "rpm_limit": None,
        "budget_duration": "30d" if max_budget is not None else None,
        "budget_reset_at": RESETS if max_budget is not None else None,
        "allowed_cache_controls": [],
        "permissions": {},
        "model_spend": {},
        "model_max_budget": {},
        "soft_budget_cooldown": False,
        "blocked": None,
        "litellm_budget_table": None,
        "budget_id": None,
        "org_id": None,
        "created_at": "2026-11-01T09:00:00+00:00",
        "updated_at": "2026-11-30T09:00:00+00:00",
        "status": "active",
        **fields,
    }
    # The key itself, echoed back as it was passed in: None when it came from the header.
    return {"key": None, "info": info}


def team_info(team_id: str, alias: str, spend: float, max_budget: float | None) -> dict[str, Any]:
    """``team_info``'s answer (litellm/proxy/management_endpoints/team_endpoints.py):
    ``TeamInfoResponseObject`` (litellm/proxy/_types.py) around ``LiteLLM_TeamTable``
    (litellm/models/team.py)."""
    team: dict[str, Any] = {
        "team_alias": alias,
        "team_id": team_id,
        "organization_id": None,
        "admins": [],
        "members": [],
        "members_with_roles": [],
        "metadata": {},
        "tpm_limit": None,
        "rpm_limit": None,
        "max_budget": max_budget,
        "soft_budget": None,
        "budget_duration": "30d",
        "models": [],
        "blocked": False,
        "spend": spend,
        "max_parallel_requests": None,
        "budget_reset_at": "2026-12-01T00:00:00",  # a naive datetime: UTC
        "model_id": None,
        "model_spend": {},
        "model_max_budget": {},
        "created_at": "2026-11-01T09:00:00+00:00",
        "team_member_budget_table": None,
    }
    return {"team_id": team_id, "team_info": team, "keys": [], "team_memberships": []}


def proxy_error(message: str, kind: str, code: int) -> dict[str, Any]:
    """A ``ProxyException`` as LiteLLM's handler renders it (litellm/proxy/_types.py)."""
    return {"error": {"message": message, "type": kind, "param": "None", "code": str(code)}}


NO_DATABASE = (
    "Database not connected. Connect a database to your proxy - "
    "https://docs.litellm.ai/docs/simple_proxy#managing-auth---virtual-keys"
)

#: What each key's ``/key/info`` and ``/team/info`` answer, by the key the probe sends.
KEYS: dict[str, dict[str, tuple[int, dict[str, Any]]]] = {
    "sk-key-and-team-healthy": {
        "/key/info": (200, key_info("probe-key", 2.5, 10.0, team_id="team-7f3a")),
        "/team/info": (200, team_info("team-7f3a", "platform", 40.0, 100.0)),
    },
    "sk-team-nearly-spent": {
        "/key/info": (200, key_info(None, 1.0, None, team_id="team-7f3a")),
        "/team/info": (200, team_info("team-7f3a", "platform", 99.6, 100.0)),
    },
    "sk-key-overspent": {"/key/info": (200, key_info("ci-key", 10.02, 10.0))},
    "sk-budget-row": {
        "/key/info": (
            200,
            key_info("row-key", 4.5, None, budget_id="b-1", litellm_budget_table={"max_budget": 5.0}),
        )
    },
    "sk-unlimited": {"/key/info": (200, key_info("free-key", 3.0, None))},
    "sk-not-in-db": {"/key/info": (404, proxy_error("Key not found in database", "not_found_error", 404))},
    "sk-no-database": {"/key/info": (500, proxy_error(NO_DATABASE, "internal_server_error", 500))},
}


class LiteLLMBudgets(BaseHTTPRequestHandler):
    """LiteLLM's key and team endpoints with a database behind them, by the caller's key."""

    #: Every path asked for, with its query (the key must never be in it).
    asked: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.asked.append(self.path)
        key = self.headers.get("Authorization", "").removeprefix("Bearer ")
        path = self.path.split("?", 1)[0]
        status, body = KEYS.get(key, {}).get(
            path,
            (401, proxy_error("Authentication Error, Invalid proxy server token passed.", "auth_error", 401)),
        )
        if path == "/team/info" and self.path != "/team/info?team_id=team-7f3a":
            status, body = 404, {"detail": {"message": "Team not found"}}
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass(frozen=True)
class Outcome:
    outcome: str
    message: str
    reason: str | None
    #: (scope, name) -> metric name -> value, as the Pushgateway holds them.
    values: dict[tuple[str, str], dict[str, float]]


@pytest.fixture(scope="module")
def budgets_url() -> Any:
    with loopback_server(LiteLLMBudgets) as server:
        yield url_of(server)


@pytest.fixture(scope="module")
def pushgateway() -> Any:
    with Pushgateway() as daemon:
        yield daemon.url


def pushed_budgets(pushgateway: str) -> dict[tuple[str, str], dict[str, float]]:
    text = httpx.get(f"{pushgateway}/metrics", timeout=10, trust_env=False).text
    found: dict[tuple[str, str], dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("synthetic_gen_ai_budget_"):
                where = (sample.labels["scope"], sample.labels["name"])
                found.setdefault(where, {})[sample.name] = sample.value
    return found


def run_budget_probe(
    pytester: pytest.Pytester, pushgateway: str, url: str, token: str, floor: float | None = 1.0
) -> Outcome:
    target = {"url": url, "token": token, "timeout": "5s", "model": "claude-sonnet-4"}
    settings = {} if floor is None else {"min_remaining_budget": floor}
    make_probe_project(
        pytester, None, environments={"local": {"targets": {"gateway": target}}}, probes={"gateway": settings}
    )
    state = pytester.path / "state.json"
    probe = f"probes/{BUDGET.replace('::', '.py::')}"
    pytester.runpytest(probe, "--pushgateway", pushgateway, "--slo-state", str(state))
    case = junit_cases(pytester)[BUDGET]
    groups = json.loads(state.read_text())["groups"].values()
    # A skipped probe has no counters: it did not run.
    reason = next((group[probe].get("last_failure_reason") for group in groups if probe in group), None)
    return Outcome(case.outcome, case.message, reason, pushed_budgets(pushgateway))


def test_key_and_team_budgets_left_are_recorded_and_pass_over_the_floor(
    pytester: pytest.Pytester, pushgateway: str, budgets_url: str
) -> None:
    LiteLLMBudgets.asked.clear()
    run = run_budget_probe(pytester, pushgateway, budgets_url, "sk-key-and-team-healthy")
    assert run.outcome == "passed", run
    reset_key, reset_team = 1_796_256_000.0, 1_796_083_200.0  # 2026-12-03 and 2026-12-01, UTC
    assert run.values == {
        ("key", "probe-key"): {
            "synthetic_gen_ai_budget_remaining_usd": 7.5,
            "synthetic_gen_ai_budget_reset_timestamp_seconds": reset_key,
        },
        ("team", "platform"): {
            "synthetic_gen_ai_budget_remaining_usd": 60.0,
            "synthetic_gen_ai_budget_reset_timestamp_seconds": reset_team,
        },
    }
    # The key is read from the Authorization header, never put in a URL.
    assert LiteLLMBudgets.asked == ["/key/info", "/team/info?team_id=team-7f3a"]


def test_team_budget_under_the_floor_fails_naming_the_team(
    pytester: pytest.Pytester, pushgateway: str, budgets_url: str
) -> None:
    run = run_budget_probe(pytester, pushgateway, budgets_url, "sk-team-nearly-spent")
    assert (run.outcome, run.reason) == ("failed", "budget"), run
    assert (
        "gateway /key/info: team platform: $0.40 left of $100.00, resets 2026-12-01 00:00 UTC, floor $1.00"
        in run.message
    )
    # The key has no budget of its own (nothing left to record); its team has one.
    assert run.values == {
        ("team", "platform"): {
            "synthetic_gen_ai_budget_remaining_usd": pytest.approx(0.4),
            "synthetic_gen_ai_budget_reset_timestamp_seconds": 1_796_083_200.0,
        }
    }
    assert "key sk-...9f2c" not in run.message


def test_overspent_key_fails_even_with_a_zero_floor(
    pytester: pytest.Pytester, pushgateway: str, budgets_url: str
) -> None:
    run = run_budget_probe(pytester, pushgateway, budgets_url, "sk-key-overspent", floor=0)
    assert (run.outcome, run.reason) == ("failed", "budget"), run
    assert "key ci-key: $-0.02 left of $10.00, resets 2026-12-03 00:00 UTC, floor $0.00" in run.message
    assert run.values[("key", "ci-key")]["synthetic_gen_ai_budget_remaining_usd"] == pytest.approx(-0.02)


def test_a_key_linked_to_a_budget_row_is_held_to_that_row(
    pytester: pytest.Pytester, pushgateway: str, budgets_url: str
) -> None:
    run = run_budget_probe(pytester, pushgateway, budgets_url, "sk-budget-row")
    assert (run.outcome, run.reason) == ("failed", "budget"), run
    assert "key row-key: $0.50 left of $5.00, floor $1.00" in run.message


def test_no_budget_anywhere_fails_saying_there_is_nothing_to_judge(
    pytester: pytest.Pytester, pushgateway: str, budgets_url: str
) -> None:
    run = run_budget_probe(pytester, pushgateway, budgets_url, "sk-unlimited")
    assert (run.outcome, run.reason) == ("failed", "assertion"), run
    assert (
        "key free-key: no max_budget (spent $3.00): no budget to hold to "
        "probes.gateway.min_remaining_budget $1.00" in run.message
    )


@pytest.mark.parametrize(
    ("token", "reason", "fragment"),
    [
        (
            "sk-not-in-db",
            "http_status",
            "Key not found in database: the target's key is not a virtual key (the master key has no budget)",
        ),
        (
            "sk-no-database",
            "http_status",
            "returned 500: the gateway has no database, where LiteLLM keeps key and team budgets "
            "(DATABASE_URL): Database not connected.",
        ),
        ("sk-nobody-knows", "auth", "returned 401 (expected 200, auth)"),
    ],
    ids=["not-a-virtual-key", "no-database", "unknown-key"],
)
def test_what_the_gateway_cannot_answer_is_one_line_naming_it(
    pytester: pytest.Pytester, pushgateway: str, budgets_url: str, token: str, reason: str, fragment: str
) -> None:
    run = run_budget_probe(pytester, pushgateway, budgets_url, token)
    assert (run.outcome, run.reason) == ("failed", reason), run
    assert fragment in run.message
    assert token not in run.message


def test_without_a_floor_the_probe_is_skipped(
    pytester: pytest.Pytester, pushgateway: str, budgets_url: str
) -> None:
    run = run_budget_probe(pytester, pushgateway, budgets_url, "sk-key-and-team-healthy", floor=None)
    assert run.outcome == "skipped"
    assert "no probes.gateway.min_remaining_budget" in run.message


@pytest.mark.parametrize(
    ("value", "problem"),
    [("-1", "greater than or equal to 0"), ("lots", "valid number")],
)
def test_a_bad_floor_is_one_line_naming_the_key(tmp_path: Path, value: str, problem: str) -> None:
    path = tmp_path / "monitoring.yaml"
    path.write_text(
        "environments: {local: {targets: {gateway: {url: 'http://127.0.0.1:4000'}}}}\n"
        f"probes: {{gateway: {{min_remaining_budget: {value}}}}}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as raised:
        load_config(path, "local", environ={})
    message = str(raised.value)
    assert "\n" not in message
    assert "probes.gateway.min_remaining_budget" in message, message
    assert problem in message, message
