"""One run of a probe, as its author meets it: the `probe` fixture.

Everything a probe hands to the suite goes through this one object, into the run's
:class:`slo.evidence.Evidence`::

    @pytest.mark.probe(target="api")
    def test_sessions(probe):
        body = probe.http().get("/sessions").json()          # timed, by phase
        probe.value("active_sessions", body["active"])        # pushed as synthetic_active_sessions
        previous = probe.previous_reading()                   # None before the first saved run
        probe.keep_reading({"requests": body["requests"]})    # for the next run
        probe.note(f"{body['active']} sessions")              # after the probe in the summary
        if body["queue"] > 100:
            probe.degrade(f"{body['queue']} requests queued")  # passes, shown and pushed degraded

A request slower than its target's `degraded_after` degrades the probe by itself.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

from slo.evidence import MAX_NOTE, Evidence, ValueKind
from slo.redact import scrub
from slo.units import format_ms

if TYPE_CHECKING:
    from slo.config import Config
    from slo.probe.client import ProbeClient, RequestRecord

__all__ = ["PreviousReading", "ProbeRun", "probe_run", "slow_request"]


def slow_request(record: RequestRecord, degraded_after: float | None) -> str | None:
    """Why an answered request degrades its probe (slower than `degraded_after`), or None.
    A request that got no answer fails the probe, or the probe handled it: not a slow one."""
    if degraded_after is None or record.status is None or record.elapsed <= degraded_after:
        return None
    path = urlsplit(record.url).path or "/"
    return scrub(
        f"{record.target} {record.method} {path} took {format_ms(record.elapsed)}, "
        f"over degraded_after {format_ms(degraded_after)}"
    )


@dataclass(frozen=True)
class PreviousReading:
    """A probe's readings at its previous saved run, and when that run finished."""

    values: dict[str, float | str]
    time: float


class ProbeRun:
    """The `probe` fixture's object; `http` and `probe_value` are two of its methods."""

    def __init__(
        self,
        nodeid: str,
        config: Callable[[], Config],
        evidence: Evidence,
        marker_target: str | None,
        previous: Callable[[], PreviousReading | None],
    ) -> None:
        self.nodeid = nodeid
        #: The config, loaded when a client needs it: recording a value does not.
        self._config = config
        self.evidence = evidence
        self._marker_target = marker_target
        self._previous = previous
        self._clients: dict[str, ProbeClient] = {}

    def http(self, name: str | None = None) -> ProbeClient:
        """A timed client of target `name` (the marker's target by default). A target that
        this environment does not define skips the probe, so one probe serves every environment."""
        from slo.probe.client import ProbeClient

        name = name or self._marker_target
        if name is None:
            raise pytest.UsageError(
                f"{self.nodeid}: http() needs a target name or @pytest.mark.probe(target=...)"
            )
        if name not in self._clients:
            config = self._config()
            if name not in config.environment.targets:
                pytest.skip(f"environment {config.env_name!r} defines no target {name!r}")
            self.evidence.target = self.evidence.target or name
            target = config.target(name)
            self._clients[name] = ProbeClient(
                name, target, on_record=functools.partial(self._record, target.degraded_after)
            )
        return self._clients[name]

    def _record(self, degraded_after: float | None, record: RequestRecord) -> None:
        self.evidence.add_request(record)
        self._judge_speed(record, degraded_after)

    def _judge_speed(self, record: RequestRecord, degraded_after: float | None) -> None:
        slow = slow_request(record, degraded_after)
        if slow is not None:
            self.evidence.degrade(slow)

    def degrade(self, reason: str) -> None:
        """A soft assertion: the probe goes on and, unless it fails, ends **degraded** with
        this one-line `reason` (it passes in pytest, with the reason as a JUnit property;
        it is pushed as `synthetic_probe_degraded` 1). The first reason of a run stands."""
        self.evidence.degrade(reason)

    def value(self, name: str, value: float, *, kind: ValueKind = "gauge", **labels: object) -> None:
        """Record a named number, pushed as ``synthetic_<name>`` (kinds gauge, counter,
        histogram: :mod:`slo.report.values`); a bad name, label or value fails the probe."""
        self.labelled_value(name, value, kind, labels)

    def labelled_value(self, name: str, value: float, kind: ValueKind, labels: Mapping[str, object]) -> None:
        """:meth:`value` with the labels as a mapping (label names that are not identifiers)."""
        problem = self.evidence.add_value(name, value, kind, labels)
        if problem is not None:
            raise pytest.UsageError(f"{self.nodeid}: {problem}")

    def previous_reading(self) -> PreviousReading | None:
        """What this probe kept with :meth:`keep_reading` in the last run that was saved
        (runs are saved when results are pushed), or None when there is no such run yet."""
        return self._previous()

    def keep_reading(self, values: Mapping[str, float | str]) -> None:
        """Keep this run's readings (numbers, or strings such as a server's run id) in the
        state file for the probe's next run. Saved with the run's counters: a run that does
        not push (``--no-push``, no Pushgateway) keeps nothing, so the next run compares
        with the last pushed one."""
        self.evidence.reading = {
            str(name): value if isinstance(value, str) else float(value) for name, value in values.items()
        }

    def note(self, text: str) -> None:
        """One line about what a passing probe measured, shown after it in the run's summary."""
        self.evidence.note = text[:MAX_NOTE]

    def requests(
        self, target: str, records: list[RequestRecord], degraded_after: float | None = None
    ) -> None:
        """Requests timed outside :meth:`http` (the concurrent checks): they are the probe's
        requests, and its duration is theirs (the call phase only judged). One slower than
        `degraded_after` (by default the target's, when the config defines the target)
        degrades the probe."""
        self.evidence.target = self.evidence.target or target
        self.evidence.replace_requests(records)
        if degraded_after is None:
            known = self._config().environment.targets.get(target)
            degraded_after = known.degraded_after if known is not None else None
        for record in records:
            self._judge_speed(record, degraded_after)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()


def probe_run(probe: ProbeRun | pytest.FixtureRequest) -> ProbeRun:
    """The run of a probe, given it or the probe's `request`: the recording helpers
    (``record_usage(probe, ...)``) take either, so probes written for `request` keep working."""
    # Asked of the request, not of ProbeRun: a test harness running pytest in process may
    # import this module twice, and a run from either copy is a run.
    if not isinstance(probe, pytest.FixtureRequest):
        return probe
    # The plugin's own fixture, not `probe`: a project may have a fixture of that name.
    found: ProbeRun = probe.getfixturevalue("slo_probe_run")
    return found
