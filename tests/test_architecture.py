"""ARCHITECTURE.md names every module of `slo/`, and only modules that exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_architecture_lists_each_module_once() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    listed = re.findall(r"^- `(slo/[\w/]+\.py)`: \S", text, flags=re.MULTILINE)
    modules = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "slo").rglob("*.py"))
    assert sorted(listed) == modules
