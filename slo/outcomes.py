"""The verdict vocabulary every layer shares: outcomes, probe kinds and the probe marker.

A leaf: it imports nothing of `slo`, so the plugin (which writes a probe's outcome in the
worker), the reporting (which folds it in the controller), `slo validate` and the rules all
read these names from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Protocol

__all__ = [
    "MARKER_ARGUMENTS",
    "OUTCOMES",
    "PROBE_KINDS",
    "WORKED",
    "Outcome",
    "kind_problem",
    "marker_setting",
    "probe_kind",
]

#: How a probe run ends, exactly one of these. `degraded`: it worked, but a request took
#: longer than its target's (or check's) `degraded_after`, or the probe said so itself
#: (``probe.degrade(reason)``, a soft assertion). It passes in pytest.
Outcome = Literal["passed", "degraded", "failed", "error", "skipped"]
OUTCOMES: tuple[Outcome, ...] = ("passed", "degraded", "failed", "error", "skipped")

#: The outcomes of a run that worked: good events of an availability SLI (slow is not down),
#: so a degraded run never burns an availability budget; a `degraded` SLI counts it as bad.
WORKED: frozenset[Outcome] = frozenset({"passed", "degraded"})

#: What a probe measures (``@pytest.mark.probe(kind=...)``). Only `availability` probes make a
#: run of their target bad; `budget` probes judge a service's own counters (5xx ratio, tokens,
#: cost), `resource` probes a host's disk and memory, `warning` probes an outage to come.
PROBE_KINDS = ("availability", "budget", "resource", "warning")

#: The keyword arguments ``@pytest.mark.probe`` takes.
MARKER_ARGUMENTS = ("target", "slo", "kind", "alert")


class _Marker(Protocol):
    kwargs: Mapping[str, Any]


class _Marked(Protocol):
    def iter_markers(self, name: str | None = None) -> Any: ...


def marker_setting(item: _Marked, name: str) -> str | None:
    """One argument of the probe's ``probe`` markers, closest first: a parameter's
    ``probe_param(target=...)`` and the function's ``@pytest.mark.probe(kind=...)`` (or the
    module's ``pytestmark``) each give what they set, so none has to repeat the others."""
    marker: _Marker
    for marker in item.iter_markers("probe"):
        value = marker.kwargs.get(name)
        if value:
            return str(value)
    return None


def kind_problem(kwargs: Mapping[str, Any]) -> str | None:
    """What is wrong with a ``probe`` marker's `kind`, or None."""
    kind = kwargs.get("kind")
    if kind is None or kind in PROBE_KINDS:
        return None
    return f"kind={kind!r} is not one of {', '.join(PROBE_KINDS)}"


def probe_kind(item: _Marked) -> str:
    """The `kind` a probe declared on its ``probe`` markers; `availability` when it declares
    none (the plugin rejects any other value at collection: see :func:`kind_problem`)."""
    kind = marker_setting(item, "kind")
    return kind if kind in PROBE_KINDS else PROBE_KINDS[0]
