"""Parametrising a probe by the config: one probe per item, or one skip that says why not.

def pytest_generate_tests(metafunc):
    if "endpoint" in metafunc.fixturenames:
        endpoints = probe_config(metafunc.config).probes.latency.endpoints
        parametrize_probes(
            metafunc,
            "endpoint",
            [probe_param(e, id=e.path, target=e.target, slo=e.slo) for e in endpoints],
            empty="no probes.latency.endpoints in the config",
        )
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from _pytest.mark.structures import ParameterSet

__all__ = ["parametrize_probes", "probe_param"]


def probe_param(
    value: object, *, id: str, target: str | None = None, slo: str = "", kind: str | None = None
) -> ParameterSet:
    """One case of a parametrised probe, labelled with its target, SLO and kind like the marker does.

    Pass a name rather than a config object when the object holds secrets (a check's URL or
    body): parameters end up in reports.
    """
    marker = pytest.mark.probe(target=target, slo=slo, **({"kind": kind} if kind else {}))
    return pytest.param(value, id=id, marks=marker)


def parametrize_probes(
    metafunc: pytest.Metafunc, argname: str, params: Iterable[ParameterSet], *, empty: str
) -> None:
    """Parametrise `argname`; with no cases, one skipped probe whose reason is `empty`, so the
    run shows what is not configured instead of silently running nothing."""
    cases = list(params)
    if not cases:
        cases = [pytest.param(None, id="none", marks=pytest.mark.skip(reason=empty))]
    metafunc.parametrize(argname, cases)
