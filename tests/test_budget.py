"""Budget and burn-rate math against hand-computed cases, and `slo budget`'s own errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.daemons import free_port
from slo.objectives.budget import BudgetRow, error_ratio, main, month_start, render_table, time_to_exhaustion

ROOT = Path(__file__).resolve().parent.parent
DAY = 86400.0


def test_error_ratio_never_divides_by_zero() -> None:
    assert error_ratio(1, 1000) == 0.001
    assert error_ratio(0, 0) is None
    # A latency SLI's bad count is a difference of counters and may dip below zero.
    assert error_ratio(-0.5, 10) == 0


@pytest.mark.parametrize(
    ("remaining", "burn", "expected"),
    [
        # Half the 30-day budget left, burning at 1x: it lasts half the window, 15 days.
        (0.5, 1.0, 15 * DAY),
        # 14.4x spends 2 % of the budget an hour: 100 % lasts 50 hours.
        (1.0, 14.4, 50 * 3600),
        (0.25, 6.0, 1.25 * DAY),
        (0.0, 2.0, 0.0),
        (-3.0, 2.0, 0.0),
        (0.8, 0.0, None),
        (0.8, None, None),
        (None, 5.0, None),
    ],
)
def test_time_to_exhaustion(remaining: float | None, burn: float | None, expected: float | None) -> None:
    result = time_to_exhaustion(remaining, burn, 30 * DAY)
    assert result == (pytest.approx(expected) if expected is not None else None)


def test_burn_rate_and_remaining_by_hand() -> None:
    # 99.9 %: 5 bad of 1000 events is a 0.5 % error ratio, burn rate 5, budget left 1 - 5 = -4.
    ratio = error_ratio(5, 1000)
    assert ratio is not None
    assert ratio / 0.001 == pytest.approx(5)
    assert 1 - ratio / 0.001 == pytest.approx(-4)


def test_month_start_is_utc() -> None:
    # 2024-03-15T12:00:00Z -> 2024-03-01T00:00:00Z
    assert month_start(1710504000.0) == 1709251200.0
    assert month_start(1709251200.0) == 1709251200.0


def test_table_shows_every_column_and_notes() -> None:
    now = 1_800_000_000.0
    rows = [
        BudgetRow(
            "api", "prod", 0.999, "30d", 43200, 10, 0.99977, 0.7685, {"1h": 2.0, "5m": None}, 10.5 * DAY,
            data_since=now - 30 * DAY, coverage=1.0,
        ),
        BudgetRow("lat", "", 0.95, "30d", 0, 0, None, None, {"1h": None}, None, "no events in the window"),
        # 20 minutes of data with a failed run in it: exhausted 383x over, on 1.4 % of the window.
        BudgetRow(
            "gw", "prod", 0.999, "30d", 26, 10, 0.615, -383.6, {"1h": 384.6}, 0.0,
            data_since=now - 1200, coverage=1200 / (30 * DAY), overspent=383.6,
        ),
    ]  # fmt: skip
    lines = render_table(rows, now).splitlines()
    assert lines[0].split() == [
        "SLO",
        "ENV",
        "OBJECTIVE",
        "WINDOW",
        "COVERAGE",
        "SLI",
        "BUDGET",
        "LEFT",
        "EXHAUSTED",
        "IN",
        "BURN",
        "RATES",
    ]
    assert lines[1].split() == [
        "api",
        "prod",
        "99.90%",
        "30d",
        "30d",
        "(100.000%),",
        "43200",
        "events",
        "99.977%",
        "76.8%",
        "10d12h",
        "1h=2.00",
        "5m=-",
    ]
    assert lines[2].split()[:8] == ["lat", "-", "95.00%", "30d", "no", "data", "-", "-"]
    assert lines[3] == "  ! no events in the window"
    assert "20m (0.046%), 26 events" in lines[4]
    assert "exhausted, 38360.0% over" in lines[4]


def test_cli_needs_a_prometheus_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PROMETHEUS_URL", raising=False)
    assert main(["--config", str(ROOT / "monitoring.yaml")]) == 4
    assert capsys.readouterr().err == "slo budget: give --prometheus URL or set PROMETHEUS_URL\n"


def test_cli_unreachable_prometheus_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["--config", str(ROOT / "monitoring.yaml"), "--prometheus", url]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"slo budget: Prometheus at {url}: ConnectError")
    assert err.count("\n") == 1


def test_cli_unknown_slo_and_bad_url(capsys: pytest.CaptureFixture[str]) -> None:
    config = str(ROOT / "monitoring.yaml")
    assert main(["--config", config, "--prometheus", "http://127.0.0.1:1", "--slo", "nope"]) == 4
    assert "unknown SLO 'nope' (known: api-availability" in capsys.readouterr().err
    assert main(["--config", config, "--prometheus", "localhost:9090"]) == 1
    assert "invalid Prometheus URL 'localhost:9090'" in capsys.readouterr().err
