"""What a probe hands to its next run, and to the run's summary.

Budget probes judge a counter over the interval since their previous run, so each run keeps
its readings (:func:`record_reading`, saved in the state file with the run's counters) and
reads the previous run's (:func:`previous_reading`). Probes run in xdist workers too, which
never write the state file: readings travel to the controller in the report's
`user_properties`, like the rest of a probe's evidence, and the previous ones are read from
the file as last saved.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pytest

from slo.plugin import run_options
from slo.report.reporter import grouping
from slo.report.results import NOTE_PROPERTY, READING_PROPERTY
from slo.report.state import StateFile

__all__ = ["PreviousReading", "previous_reading", "record_reading", "report_note"]


@dataclass(frozen=True)
class PreviousReading:
    """A budget probe's counters at its previous run, and when that run finished."""

    values: dict[str, float]
    time: float


def previous_reading(request: pytest.FixtureRequest) -> PreviousReading | None:
    """What this probe recorded with :func:`record_reading` in the last run that was saved
    (runs are saved when results are pushed), or None when there is no such run yet."""
    options = run_options(request.config)
    key = {"job": options.push.job, **grouping(options)}
    state = StateFile(options.state_file).peek(key).get(request.node.nodeid)
    if state is None or not state.reading or state.reading_time is None:
        return None
    return PreviousReading(dict(state.reading), state.reading_time)


def record_reading(request: pytest.FixtureRequest, values: Mapping[str, float]) -> None:
    """Keep this run's counter readings in the state file for the probe's next run."""
    request.node.user_properties.append((READING_PROPERTY, json.dumps(dict(values))))


def report_note(request: pytest.FixtureRequest, note: str) -> None:
    """One line about what a passing probe measured, shown after it in the run's summary."""
    request.node.user_properties.append((NOTE_PROPERTY, json.dumps({"note": note})))
