"""The layout keeps the promises ARCHITECTURE.md and the test helpers rely on."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_architecture_lists_each_module_once() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    listed = re.findall(r"^- `(slo/[\w/]+\.py)`: \S", text, flags=re.MULTILINE)
    modules = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "slo").rglob("*.py"))
    assert sorted(listed) == modules


def test_no_test_module_shares_a_name_with_a_probe_module() -> None:
    # pytest imports both by their basename: a pytester run of the probes inside this
    # session would find the test module of that name already imported and refuse the probe
    # ("import file mismatch"). Name a probe's tests test_<name>_probe.py instead.
    probes = {path.name for path in (ROOT / "probes").glob("test_*.py")}
    tests = {path.name for path in (ROOT / "tests").glob("test_*.py")}
    assert probes & tests == set()
