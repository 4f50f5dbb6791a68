"""The quorum rule: how the locations of a `probes` SLI make one error ratio.

Written once, used by the recording rules, the alerts, `slo budget`, `slo gate` and the
scenario model (:mod:`slo.objectives.rules.simulate`):

1. Per location and window, the error ratio is that location's failed runs over its runs,
   from ``synthetic_target_runs_total`` / ``synthetic_target_failed_runs_total`` summed over
   the location's runners. A location without runs in the window (its runners stopped, or
   were retired) has no ratio and does not count.
2. With ``quorum: N``, the SLO's error ratio over the window is the N-th highest location
   ratio; when fewer than N locations report, the lowest of them (the quorum falls to the
   number of locations that report, so a single surviving location still pages on a total
   outage). A burn condition ``ratio > threshold`` therefore holds exactly when at least
   min(N, reporting locations) locations are over the threshold.
3. The minimum-events guard likewise takes the N-th highest count of bad runs among the
   reporting locations: min(N, reporting) locations must each have seen that many.
4. ``quorum: 1`` (the default) keeps the pooled ratio: every location's runs and failures
   summed, as before locations existed.

>>> nth_highest([0.0, 1.0, 0.5], 2)
0.5
>>> nth_highest([1.0], 2)
1.0
>>> nth_highest([], 2) is None
True
"""

from __future__ import annotations

from collections.abc import Sequence

from slo.config.objectives import SLO, ProbesSLI
from slo.objectives.rules.sli import SLIQuery, sli_query

__all__ = ["BY_LOCATION", "location_query", "nth_highest", "quorum_of", "uses_quorum"]

#: The labels a per-location count keeps.
BY_LOCATION = ("environment", "location")


def uses_quorum(slo: SLO) -> bool:
    """Whether `slo`'s ratio is a quorum of locations rather than the pooled ratio."""
    return isinstance(slo.sli, ProbesSLI) and slo.locations_quorum > 1


def location_query(slo: SLO) -> SLIQuery:
    """`slo`'s event counts per environment and location (a `probes` SLI)."""
    return sli_query(slo, BY_LOCATION)


def quorum_of(per_location: str, quorum: int) -> str:
    """PromQL: the `quorum`-th highest value of `per_location` per environment (the lowest
    when fewer locations have one): the smallest of the top `quorum`."""
    return f"min by (environment) (topk by (environment) ({quorum}, {per_location}))"


def nth_highest(values: Sequence[float], quorum: int) -> float | None:
    """The same in Python: the `quorum`-th highest of `values` (the lowest when fewer), or None."""
    if not values:
        return None
    ranked = sorted(values, reverse=True)
    return ranked[min(quorum, len(ranked)) - 1]
