"""Every ``>>>`` example in the package's docstrings runs, and shows what it prints.

An example that needs a running service or a probe session is written as plain text
(an indented ``::`` block) instead, so a ``>>>`` is always a checked claim.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "slo"
WITH_EXAMPLES = sorted(
    ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
    for path in PACKAGE.rglob("*.py")
    if ">>>" in path.read_text(encoding="utf-8")
)


def test_examples_are_found() -> None:
    assert "slo.stats" in WITH_EXAMPLES


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    failed, attempted = doctest.testmod(module, optionflags=doctest.ELLIPSIS, report=False)
    assert attempted > 0, f"{name} has a '>>>' that is not a docstring example"
    assert failed == 0, f"{failed} of the examples of {name} failed (run `python -m doctest -v` on it)"
