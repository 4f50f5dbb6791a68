"""One test case per load threshold (see conftest.py): pass, or fail with the reason."""

from __future__ import annotations

from typing import Any

import pytest


def test_threshold(threshold: str, load_summary: dict[str, Any]) -> None:
    row = next((row for row in load_summary["thresholds"] if row["name"] == threshold), None)
    assert row is not None, f"the load run judged no threshold named {threshold!r}"
    if row["verdict"] != "pass":
        pytest.fail(f"{row['verdict']}: {row['reason']}", pytrace=False)
