"""Hooks the plugin offers to conftest files and other plugins (added by `pytest_addhooks`).

# conftest.py of a directory whose tests are not probes (load/conftest.py does this)
def pytest_slo_is_probe(item):
    return False
"""

from __future__ import annotations

import pytest

__all__ = ["pytest_slo_is_probe"]


@pytest.hookspec(firstresult=True)
def pytest_slo_is_probe(item: pytest.Item) -> bool | None:
    """Whether `item` is a probe whose result is reported and pushed.

    Return None to leave it to the plugin: a probe has the ``probe`` marker, uses a probe
    fixture (``slo_config``, ``targets``, ``http``) or lives under a ``slo_probe_paths``
    directory. The first non-None answer wins.
    """
