"""One test case per load threshold, and per comparison with the baseline (see conftest.py):
pass, or fail with the reason."""

from __future__ import annotations

from typing import Any

import pytest

from slo.loadgate.baseline import VERDICT_CASE


def test_threshold(threshold: str, load_summary: dict[str, Any]) -> None:
    row = next((row for row in load_summary["thresholds"] if row["name"] == threshold), None)
    assert row is not None, f"the load run judged no threshold named {threshold!r}"
    if row["verdict"] != "pass":
        pytest.fail(f"{row['verdict']}: {row['reason']}", pytrace=False)


def test_comparison(comparison: str, load_summary: dict[str, Any]) -> None:
    block = load_summary.get("baseline")
    assert block is not None, "the load run made no comparison with the baseline"
    if comparison == VERDICT_CASE:
        if block["verdict"] != "pass":
            pytest.fail(f"{block['verdict']}: {block['reason']}", pytrace=False)
        return
    row = next((row for row in block["comparisons"] if row["name"] == comparison), None)
    if row is None:
        pytest.fail(f"not compared: {block['reason']}", pytrace=False)
    allowed = {"unchanged", "improved"} | ({"inconclusive"} if block["allow_inconclusive"] else set())
    if row["verdict"] not in allowed:
        pytest.fail(f"{row['verdict']}: {row['reason']}", pytrace=False)
