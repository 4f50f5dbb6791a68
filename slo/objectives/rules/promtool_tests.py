"""`promtool test rules` files: every SLO's alerts proved by evaluation, not by reading.

Per SLO, one test file with these scenarios, each stated by :mod:`slo.objectives.rules.simulate`:

- total outage after clean history: no page one minute before the predicted minute, the
  page (with its exact labels, burn rate and failing probes) at it;
- for `probes` SLIs, a fresh deploy (ten clean runs): one bad run raises nothing, and a total
  outage pages at its third failed run;
- burn rate 5 (0.5 % errors on a 99.9 % SLO) from the start: tickets, no page, and the
  recorded burn rate and budget remaining read 5 and -4;
- a single bad event after three days of clean history: no alert of any severity;
- zero traffic: no ratio recorded (not NaN) and no alert;
- for probe-based SLOs, the runner stops: `SyntheticProbesStale` at the predicted minute and
  no burn alert;
- for `probes` and `degraded` SLIs, hours of the other kind of bad run (every run degraded
  for an availability SLO, every run failed for a "fast enough" one): nothing fires, ever.

Probe and histogram SLIs are fed their real metric names, so the tests also prove the
selectors. A `probes` SLI is fed as the suite pushes it: a target run counter (one run a
minute) and, during an outage, several failing probes of the target (availability ones, which
the page names, and a budget probe, which it must not). An `events` SLI is arbitrary PromQL
that no generator can feed, so its test rules swap the two queries for ``slo_test_*``
counters: its tests prove the alert policy, and `promtool check rules` plus a live
Prometheus prove the queries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from slo import metric_names as m
from slo.config.objectives import (
    SLO,
    Budgets,
    DegradedSLI,
    EventsSLI,
    HistogramSLI,
    ProbeLatencySLI,
    ProbesSLI,
    RunSLI,
)
from slo.objectives.rules import names
from slo.objectives.rules.generate import (
    DEGRADED_LINE,
    FAILING_LINE,
    LOCATION_LINE,
    NONE_DEGRADED,
    NONE_FAILING,
    burn_annotations,
    burn_labels,
    location_failing_annotations,
    location_failing_labels,
    render,
    slo_groups,
)
from slo.objectives.rules.maintenance import NOTICE, NOTICE_SEVERITY, maintenance_group
from slo.objectives.rules.quorum import uses_quorum
from slo.objectives.rules.simulate import (
    Counts,
    Firing,
    firing_alerts,
    firing_at_locations,
    location_ratios,
    locations_failing,
)
from slo.objectives.rules.thresholds import IN_LOCATION, staleness_group
from slo.objectives.rules.windows import BurnWindow, burn_windows

__all__ = ["scenario_files"]

_ENVIRONMENT = "test"
_INSTANCE = "runner-1"
#: Events per minute fed to each kind: one probe run a minute, the latency probe's 60
#: requests a run, one stream a run (first token), a busy service's 1000 requests.
_RATE = {
    "probes": 1.0,
    "degraded": 1.0,
    "probe_latency": 60.0,
    "first_token": 1.0,
    "histogram": 1000.0,
    "events": 1000.0,
}
#: Burn-rate-5 scenarios need fractional bad events per minute: fed at 1000 a minute.
_DENSE = 1000.0
_LIMIT = 24 * 60
#: Clean history before the single bad event: a day (three would cost 9x the evaluation
#: time and change nothing, since a day already dilutes one event below every ticket factor).
_CLEAN_DAY = 24 * 60
#: Clean runs before a fresh deploy's first bad run.
_FRESH = 10
_REASON, _MESSAGE = "http_status", "GET /health returned 503"
#: Minutes of the maintenance scenarios' window: longer than a total outage takes to page.
_WINDOW = 60


def _fmt(value: float) -> str:
    return format(value, ".12g")


def _values(values: Sequence[float]) -> str:
    """promtool's expanding notation (``a+bxn``) for a per-minute list of values."""
    parts, i = [], 0
    while i < len(values):
        if i + 1 == len(values):
            parts.append(_fmt(values[i]))
            break
        step = values[i + 1] - values[i]
        n = 1
        while i + n + 1 < len(values) and values[i + n + 1] - values[i + n] == step:
            n += 1
        sign = "+" if step >= 0 else "-"
        parts.append(f"{_fmt(values[i])}{sign}{_fmt(abs(step))}x{n}")
        i += n + 1
    return " ".join(parts)


def _cumulative(per_minute: Sequence[float]) -> list[float]:
    # Accumulated like promtool's `a+bxn` (repeated addition), so both see the same floats.
    total, out = 0.0, [0.0]
    for value in per_minute:
        total += value
        out.append(total)
    return out


def _labels(labels: dict[str, str]) -> str:
    return "{" + ",".join(f"{k}={names.promql_string(v)}" for k, v in labels.items()) + "}"


def _example_probe(patterns: Sequence[str], model: str = "") -> str:
    # A node id the SLO's patterns match: wildcards replaced by the least they may match.
    probe = (
        patterns[0].replace("*", "").replace("?", "x") if patterns else "probes/test_example.py::test_probe"
    )
    return f"{probe}[{model}]" if model and not probe.endswith(f"[{model}]") else probe


def _suite_probes(sli: RunSLI) -> list[tuple[str, str]]:
    """(node id, kind) of the probes of a realistic suite for the SLI's target."""
    available = (
        [_example_probe(sli.probe, sli.model)]
        if sli.narrowed
        else ["probes/test_checks.py::test_check[health]", "probes/test_health.py::test_api_health"]
    )
    return [*((probe, "availability") for probe in available), ("probes/test_metrics.py::test_5xx", "budget")]


def _failing_text(sli: RunSLI | None, failing: bool, instance: str = _INSTANCE) -> str | None:
    """The `failing` annotation (`degraded` for a `degraded` SLI) as Prometheus renders it for
    the fed probes, which fail (are degraded) when `failing`."""
    if sli is None:
        return None
    line, none = (
        (FAILING_LINE, NONE_FAILING) if isinstance(sli, ProbesSLI) else (DEGRADED_LINE, NONE_DEGRADED)
    )
    if not failing:
        return none
    lines = sorted(
        line.format(probe=probe, instance=instance, reason=_REASON, message=_MESSAGE)
        for probe, kind in _suite_probes(sli)
        if kind == "availability"
    )
    return "".join(lines)


@dataclass
class _Feed:
    """How one SLO's events become input series (and which series labels its alerts keep)."""

    slo: SLO
    job: str

    @property
    def group(self) -> dict[str, str]:
        """The runner's grouping labels; a quorum SLO's one runner has a location."""
        group = {"job": self.job, "environment": _ENVIRONMENT, "instance": _INSTANCE}
        return {**group, "location": _LOCATIONS[0]} if uses_quorum(self.slo) else group

    @property
    def probe_based(self) -> bool:
        return isinstance(self.slo.sli, RunSLI | ProbeLatencySLI)

    def series(
        self,
        total: Sequence[float],
        bad: Sequence[float],
        pushes: int,
        outage: int | None = None,
        other: Sequence[float] | None = None,
    ) -> list[dict[str, str]]:
        """Input series; `outage` is the minute from which every probe fails (for `probes`);
        `other` the counter of the other kind of bad run (degraded runs for `probes`, failed
        runs for `degraded`), zero by default."""
        sli, series = self.slo.sli, []
        good = [t - b for t, b in zip(total, bad, strict=True)]
        text: list[dict[str, str]] = []
        if isinstance(sli, RunSLI | ProbeLatencySLI):
            group = self.group
            probe = {
                **group,
                "probe": _example_probe(sli.probe, sli.model),
                "target": sli.target,
                "slo": self.slo.name,
            }
            if isinstance(sli, RunSLI):
                runs = {**group, "target": sli.target, "slo": self.slo.name if sli.narrowed else ""}
                others = [0.0] * len(total) if other is None else other
                failed, degraded = (bad, others) if isinstance(sli, ProbesSLI) else (others, bad)
                series += [
                    (m.TARGET_RUNS, runs, total),
                    (m.TARGET_FAILED_RUNS, runs, failed),
                    (m.TARGET_DEGRADED_RUNS, runs, degraded),
                ]
                if outage is not None and isinstance(sli, ProbesSLI):
                    text = self._failing_probes(sli, group, outage, len(total))
                elif outage is not None:
                    text = self._degraded_probes(sli, group, outage, len(total))
            else:
                series += self._histogram(sli.metric, probe, sli.threshold, total, good, "2.0")
            pushed = [60.0 * min(minute, pushes) for minute in range(len(total))]
            series.append(("push_time_seconds", group, pushed))
        elif isinstance(sli, HistogramSLI):
            series += self._histogram(
                sli.metric, _selector_labels(sli.selector), sli.threshold, total, good, "2"
            )
        else:
            series += [
                ("slo_test_events_total", {"slo": self.slo.name}, total),
                ("slo_test_bad_events_total", {"slo": self.slo.name}, bad),
            ]
        return [
            {"series": f"{metric}{_labels(labels)}", "values": _values(values)}
            for metric, labels, values in series
        ] + text

    def _failing_probes(
        self, sli: ProbesSLI, group: dict[str, str], outage: int, minutes: int
    ) -> list[dict[str, str]]:
        """Per-probe gauges as pushed: success 1 then 0 from `outage`; the last failure's
        timestamp (with reason and message) from then on."""
        text = []
        for node_id, kind in _suite_probes(sli):
            labels = {**group, "probe": node_id, "target": sli.target, "slo": self.slo.name, "kind": kind}
            success = [1.0] * outage + [0.0] * (minutes - outage)
            failure = {**labels, "reason": _REASON, "message": _MESSAGE}
            failed_at = f"_x{outage} " if outage else ""
            text += [
                {"series": f"{m.PROBE_SUCCESS}{_labels(labels)}", "values": _values(success)},
                {
                    "series": f"{m.PROBE_LAST_FAILURE}{_labels(failure)}",
                    "values": f"{failed_at}{_values([60.0 * m for m in range(outage, minutes)])}",
                },
            ]
        return text

    def _degraded_probes(
        self, sli: RunSLI, group: dict[str, str], outage: int, minutes: int
    ) -> list[dict[str, str]]:
        """Per-probe gauges as pushed: degraded 0, then 1 from `outage` (every probe of the
        suite, the budget probe too, which the `degraded` annotation must not name)."""
        text = []
        for node_id, kind in _suite_probes(sli):
            labels = {**group, "probe": node_id, "target": sli.target, "slo": self.slo.name, "kind": kind}
            degraded = [0.0] * outage + [1.0] * (minutes - outage)
            text.append({"series": f"{m.PROBE_DEGRADED}{_labels(labels)}", "values": _values(degraded)})
        return text

    @staticmethod
    def _histogram(
        metric: str,
        labels: dict[str, str],
        threshold: float,
        total: Sequence[float],
        good: Sequence[float],
        spelling: str,
    ) -> list[tuple[str, dict[str, str], Sequence[float]]]:
        # A 2 s threshold is written le="2" (Go clients) for services, le="2.0" (Python) for
        # probes: the rules must match both spellings.
        le = spelling if threshold == 2.0 else repr(float(threshold))
        return [
            (f"{metric}_count", labels, total),
            (f"{metric}_bucket", {**labels, "le": le}, good),
            (f"{metric}_bucket", {**labels, "le": "+Inf"}, total),
        ]


def _selector_labels(selector: str) -> dict[str, str]:
    """Labels satisfying `selector`'s equality matchers (others are not fed)."""
    labels = {}
    for part in filter(None, (p.strip() for p in _split_matchers(selector))):
        name, _, value = part.partition("=")
        if not name.endswith(("!", "~")) and not value.startswith("~"):
            labels[name.strip()] = value.strip().strip('"')
    return labels


def _split_matchers(selector: str) -> list[str]:
    parts, current, quoted, escaped = [], "", False, False
    for char in selector:
        if char == "," and not quoted:
            parts.append(current)
            current = ""
            continue
        current += char
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
    parts.append(current)
    return parts


def _feedable(slo: SLO) -> bool:
    """Whether input series can satisfy the SLI's own selector (else the test swaps it)."""
    sli = slo.sli
    if isinstance(sli, EventsSLI):
        return False
    if isinstance(sli, HistogramSLI):
        return all("=~" not in p and "!" not in p for p in _split_matchers(sli.selector) if p.strip())
    return True


def _test_slo(slo: SLO) -> SLO:
    if _feedable(slo):
        return slo
    counters = {"bad": "slo_test_bad_events_total", "all": "slo_test_events_total"}
    matcher = f"{{slo={names.promql_string(slo.name)}}}"
    sli = EventsSLI(
        kind="events",
        error_query=f"sum(rate({counters['bad']}{matcher}[{{{{window}}}}]))",
        total_query=f"sum(rate({counters['all']}{matcher}[{{{{window}}}}]))",
    )
    return slo.model_copy(update={"sli": sli})


class _Scenarios:
    def __init__(self, slo: SLO, budgets: Budgets, job: str) -> None:
        self.slo = _test_slo(slo)
        self.budgets = budgets
        self.job = job
        self.feed = _Feed(self.slo, job)
        self.rate = _RATE[self.slo.sli.kind]
        # Long enough for the page windows; evaluation cost grows with the square of it.
        pages = [w.long for w in burn_windows(self.slo) if w.severity == "page"]
        self.history = round(max(pages) / 60) + 10
        self.env = {"environment": _ENVIRONMENT} if self.feed.probe_based else {}

    def _alerts(
        self,
        fired: Sequence[Firing],
        failing: bool,
        total: Sequence[float],
        bad: Sequence[float],
        minute: int,
    ) -> list[dict[str, Any]]:
        sli = self.slo.sli if isinstance(self.slo.sli, RunSLI) else None
        located = {_LOCATIONS[0]: total}, {_LOCATIONS[0]: bad}
        return [
            {
                "exp_labels": {**self.env, **burn_labels(self.slo, f.window)},
                "exp_annotations": burn_annotations(
                    self.slo,
                    f.window,
                    format(f.value, ".1f"),
                    _failing_text(sli, failing),
                    _locations_text(self.slo, f.window, *located, minute),
                ),
            }
            for f in fired
        ]

    def _burn_test(
        self, minute: int, total: Sequence[float], bad: Sequence[float], failing: bool = False
    ) -> dict[str, Any]:
        """`failing`: the fed probes are failing at `minute` (the outage scenarios)."""
        fired = firing_alerts(self.slo, total, bad, minute)
        alerts = self._alerts(fired, failing, total, bad, minute)
        return {"eval_time": f"{minute}m", "alertname": "ErrorBudgetBurn", "exp_alerts": alerts}

    def total_outage(self, history: int | None = None, what: str = "total outage") -> dict[str, Any]:
        history = self.history if history is None else history
        minutes = history + _LIMIT
        total = _cumulative([self.rate] * minutes)
        bad = _cumulative([0.0] * history + [self.rate] * _LIMIT)
        page = next(
            (
                m
                for m in range(history + 1, minutes + 1)
                if any(f.window.severity == "page" for f in firing_alerts(self.slo, total, bad, m))
            ),
            None,
        )
        if page is None:
            # Paging is off (alerting.page: false): a day of total outage raises no page.
            checks = [self._burn_test(minutes, total, bad, failing=True)]
            return self._test(f"{what}: tickets only", total, bad, checks, len(total), outage=history)
        total, bad = total[: page + 1], bad[: page + 1]
        checks = [
            self._burn_test(page - 1, total, bad, failing=True),
            self._burn_test(page, total, bad, failing=True),
        ]
        name = f"{what} pages after {page - history} minutes"
        return self._test(name, total, bad, checks, len(total), outage=history)

    def fresh_deploy_blip(self) -> dict[str, Any]:
        """Ten clean runs, one bad run (every probe of it failing), clean again: no alert."""
        minutes = _FRESH + 90
        total = _cumulative([self.rate] * minutes)
        bad = _cumulative([0.0] * _FRESH + [self.rate] + [0.0] * 89)
        checks = []
        for after in (1, 2, 5, 30, 89):
            check = self._burn_test(_FRESH + after, total, bad)
            if check["exp_alerts"]:
                raise AssertionError(f"{self.slo.name}: one bad run after a fresh deploy must not alert")
            checks.append(check)
        name = "fresh deploy: one bad run raises nothing"
        return self._test(name, total, bad, checks, len(total))

    def burn_rate_five(self) -> dict[str, Any]:
        bad_rate = round(5 * self.slo.error_budget * _DENSE, 9)
        minutes = self.history
        total = _cumulative([_DENSE] * minutes)
        bad = _cumulative([bad_rate] * minutes)
        fired = firing_alerts(self.slo, total, bad, minutes)
        if any(f.window.severity == "page" for f in fired):
            raise AssertionError(f"{self.slo.name}: burn rate 5 must not page")
        long = burn_windows(self.slo)[0].long_name
        series = {**self.env, "slo": self.slo.name}
        exprs = [
            {
                "expr": f"round({names.selector(names.BURN_RATE, slo=self.slo.name, window=long)}, 0.001)",
                "eval_time": f"{minutes}m",
                "exp_samples": [{"labels": _labels({**series, "window": long}), "value": 5}],
            },
            {
                "expr": f"round({names.selector(names.BUDGET_REMAINING, slo=self.slo.name)}, 0.001)",
                "eval_time": f"{minutes}m",
                "exp_samples": [{"labels": _labels({**series, "window": self.slo.window_name}), "value": -4}],
            },
        ]
        checks = [self._burn_test(minutes, total, bad)]
        return self._test("burn rate 5: tickets, no page", total, bad, checks, len(total), exprs)

    def single_blip(self) -> dict[str, Any]:
        clean = _CLEAN_DAY
        minutes = clean + 90
        total = _cumulative([self.rate] * minutes)
        bad = _cumulative([0.0] * clean + [1.0] + [0.0] * 89)
        checks = []
        for after in (1, 2, 5, 30, 60, 89):
            check = self._burn_test(clean + after, total, bad)
            if check["exp_alerts"]:
                raise AssertionError(f"{self.slo.name}: a single bad event must not alert")
            checks.append(check)
        name = "a single bad event after a clean day alerts nobody"
        return self._test(name, total, bad, checks, len(total))

    def zero_traffic(self) -> dict[str, Any]:
        minutes = self.history
        zeros = [0.0] * (minutes + 1)
        window = burn_windows(self.slo)[0].long_name
        exprs: list[dict[str, Any]] = [
            {
                "expr": names.selector(names.ERROR_RATIO, slo=self.slo.name),
                "eval_time": f"{minutes}m",
                "exp_samples": [],
            },
            {
                "expr": names.selector(names.BURN_RATE, slo=self.slo.name),
                "eval_time": f"{minutes}m",
                "exp_samples": [],
            },
            {
                "expr": names.selector(names.EVENTS, slo=self.slo.name, window=window),
                "eval_time": f"{minutes}m",
                "exp_samples": [
                    {
                        "labels": _labels(
                            {"__name__": names.EVENTS, **self.env, "slo": self.slo.name, "window": window}
                        ),
                        "value": 0,
                    }
                ],
            },
        ]
        # Nothing may fire on no traffic, early (short windows only) or late (every window).
        checks: list[dict[str, Any]] = [
            {"eval_time": f"{m}m", "alertname": "ErrorBudgetBurn", "exp_alerts": []}
            for m in (10, 90, minutes)
        ]
        return self._test("zero traffic: no ratio, no alert", zeros, zeros, checks, len(zeros), exprs)

    def other_bad_runs(self) -> dict[str, Any]:
        """Hours of runs that are bad only for the other run SLI: every run degraded for an
        availability SLO (slow is not down), every run failed for a "fast enough" one (an
        outage is the availability SLO's page). Nothing fires, and the ratio says why. Past
        the longest page window the ratio is what it will stay (zero, or none), so the
        scenario need not run a whole ticket window (which would cost 4x the evaluation)."""
        history = self.history
        minutes = 2 * history
        total = _cumulative([self.rate] * minutes)
        zeros = [0.0] * len(total)
        other = _cumulative([0.0] * history + [self.rate] * history)
        checks: list[dict[str, Any]] = [
            {"eval_time": f"{m}m", "alertname": "ErrorBudgetBurn", "exp_alerts": []}
            for m in (history + 5, history + 60, minutes)
        ]
        window = burn_windows(self.slo)[0].long_name
        ratio = names.selector(names.ERROR_RATIO, slo=self.slo.name, window=window)
        if isinstance(self.slo.sli, ProbesSLI):
            what = "every run degraded: good events, nothing fires"
            labels = {"__name__": names.ERROR_RATIO, **self.env, "slo": self.slo.name, "window": window}
            samples = [{"labels": _labels(labels), "value": 0}]
        else:
            what = "every run failed: no events of this SLI, nothing fires"
            samples = []  # no run worked: no ratio at all, not a perfect one
        exprs = [{"expr": ratio, "eval_time": f"{minutes}m", "exp_samples": samples}]
        return self._test(what, total, zeros, checks, len(total), exprs, other=other)

    def stale_probes(self) -> dict[str, Any]:
        stop = self.history
        stale_minutes = int(self.budgets.probes_stale_after // 60)
        minutes = stop + stale_minutes + 1
        total = _cumulative([self.rate] * stop + [0.0] * (minutes - stop))
        zeros = [0.0] * len(total)
        group = self.feed.group
        age = 60.0 * (minutes - stop)
        checks: list[dict[str, Any]] = [
            {"eval_time": f"{minutes - 1}m", "alertname": "SyntheticProbesStale", "exp_alerts": []},
            {
                "eval_time": f"{minutes}m",
                "alertname": "SyntheticProbesStale",
                "exp_alerts": [
                    {
                        "exp_labels": {"severity": "ticket", **group},
                        "exp_annotations": _stale_annotations(
                            self.budgets, self.job, age, location=group.get("location", "")
                        ),
                    }
                ],
            },
            self._burn_test(minutes, total, zeros),
        ]
        return self._test("stale probes: SyntheticProbesStale, no burn alert", total, zeros, checks, stop)

    def maintenance(self, counted: bool) -> dict[str, Any]:
        """A total outage from a fresh deploy's tenth run, its first `_WINDOW` minutes in a
        maintenance window. `counted`: the window's runs still advance the counters (a runner
        that could not read the window), so the rules alone hold every alert back but the
        notice; else they stand still, as a runner pushes them. After the window, the outage
        pages as usual."""
        sli = self.slo.sli
        assert isinstance(sli, ProbesSLI)
        start, end = _FRESH, _FRESH + _WINDOW
        after = next(
            m
            for m in range(_LIMIT)
            if any(
                f.window.severity == "page"
                for f in firing_alerts(self.slo, *self._maintenance_counts(counted, m), end + m)
            )
        )
        total, bad = self._maintenance_counts(counted, after)
        inside: list[dict[str, Any]] = []
        for minute in (start, start + _WINDOW // 2, end - 1):
            if counted and minute == end - 1 and not firing_alerts(self.slo, total, bad, minute):
                raise AssertionError(f"{self.slo.name}: the window's outage must burn, or it proves nothing")
            inside += [
                {"eval_time": f"{minute}m", "alertname": "ErrorBudgetBurn", "exp_alerts": []},
                {"eval_time": f"{minute}m", "alertname": "SyntheticProbesStale", "exp_alerts": []},
                {"eval_time": f"{minute}m", "alertname": NOTICE, "exp_alerts": [self._notice(sli.target)]},
            ]
        # The page: at the first run after the window when its runs counted, else as a fresh
        # outage would, and not a minute before.
        checks: list[dict[str, Any]] = [
            *inside,
            *([self._burn_test(end + after - 1, total, bad, failing=True)] if after else []),
            self._burn_test(end + after, total, bad, failing=True),
            {"eval_time": f"{end + after}m", "alertname": NOTICE, "exp_alerts": []},
        ]
        what = "runs counted by the rules alone" if counted else "runs not counted"
        name = f"maintenance ({what}): only the notice; the outage pages {after} min after the window"
        test = self._test(name, total, bad, checks, len(total), outage=start)
        flag = [0.0] * start + [1.0] * _WINDOW + [0.0] * (len(total) - end)
        labels = _labels({**self.feed.group, "target": sli.target})
        test["input_series"] += [
            {"series": f"{m.MAINTENANCE}{labels}", "values": _values(flag)},
            {"series": f"{m.MAINTENANCE_END}{labels}", "values": _values([60.0 * end] * len(total))},
        ]
        return test

    def _maintenance_counts(self, counted: bool, after: int) -> tuple[list[float], list[float]]:
        """Cumulative runs and failed runs: clean, then the window, then `after` minutes of outage."""
        window = [self.rate if counted else 0.0] * _WINDOW
        total = _cumulative([self.rate] * _FRESH + window + [self.rate] * after)
        bad = _cumulative([0.0] * _FRESH + window + [self.rate] * after)
        return total, bad

    def _notice(self, target: str) -> dict[str, Any]:
        rule = maintenance_group()["rules"][0]
        rendered = {
            key: text.replace("{{ $labels.target }}", target).replace(
                "{{ $labels.environment }}", _ENVIRONMENT
            )
            for key, text in rule["annotations"].items()
        }
        labels = {"severity": NOTICE_SEVERITY, "environment": _ENVIRONMENT, "target": target}
        return {"exp_labels": labels, "exp_annotations": rendered}

    def _test(
        self,
        name: str,
        total: Sequence[float],
        bad: Sequence[float],
        alerts: list[dict[str, Any]],
        pushes: int,
        exprs: list[dict[str, Any]] | None = None,
        outage: int | None = None,
        other: Sequence[float] | None = None,
    ) -> dict[str, Any]:
        test: dict[str, Any] = {
            "name": f"{self.slo.name}: {name}",
            "interval": "1m",
            "input_series": self.feed.series(total, bad, pushes, outage, other),
            "alert_rule_test": alerts,
        }
        if exprs:
            test["promql_expr_test"] = exprs
        return test

    def all(self) -> list[dict[str, Any]]:
        sli = self.slo.sli
        # A "fast enough" SLO's total outage is every run working slowly.
        bad_runs = "every run degraded" if isinstance(sli, DegradedSLI) else "total outage"
        tests = [self.total_outage(what=bad_runs), self.burn_rate_five(), self.single_blip()]
        tests.append(self.zero_traffic())
        if isinstance(sli, RunSLI):
            tests += [self.fresh_deploy_blip(), self.total_outage(_FRESH, f"fresh deploy: {bad_runs}")]
            tests.append(self.other_bad_runs())
        if isinstance(sli, ProbesSLI):
            located = _LocationScenarios(self)
            tests += [located.failing(_LOCATIONS[1:]), located.lost()]
            tests += [self.maintenance(counted=True), self.maintenance(counted=False)]
            if uses_quorum(self.slo):
                tests.append(located.failing(_LOCATIONS))
        if self.feed.probe_based:
            tests.append(self.stale_probes())
        return tests


#: The locations of the several-location scenarios, one runner each (runner-1, runner-2).
_LOCATIONS = ("eu-west", "us-east")


def _locations_text(slo: SLO, window: BurnWindow, totals: Counts, bads: Counts, minute: int) -> str:
    """The `locations` annotation as Prometheus renders it (`humanizePercentage` is Go's %.4g)."""
    ratios = location_ratios(slo, totals, bads, minute, window.long)
    return "".join(
        LOCATION_LINE.format(location=location, ratio=f"{ratio * 100:.4g}%", window=window.long_name)
        for location, (ratio, _) in sorted(ratios.items())
        if ratio > window.factor * slo.error_budget
    )


def _runner(location: str) -> str:
    return f"runner-{_LOCATIONS.index(location) + 1}"


class _LocationScenarios:
    """A `probes` SLO's scenarios with a runner in each of two locations."""

    def __init__(self, scenarios: _Scenarios) -> None:
        self.scenarios = scenarios
        self.slo = scenarios.slo
        assert isinstance(self.slo.sli, ProbesSLI)
        self.sli: ProbesSLI = self.slo.sli

    def _series(
        self, totals: Counts, bads: Counts, pushes: Mapping[str, int], outage: int | None = None
    ) -> list[dict[str, str]]:
        """Each runner's counters and push time; from `outage` on, the last location's runner
        also pushes its probes failing (what the `failing` annotation quotes)."""
        out = []
        for location, total in totals.items():
            group = {
                "job": self.scenarios.job,
                "environment": _ENVIRONMENT,
                "instance": _runner(location),
                "location": location,
            }
            runs = {**group, "target": self.sli.target, "slo": self.slo.name if self.sli.narrowed else ""}
            pushed = [60.0 * min(minute, pushes[location]) for minute in range(len(total))]
            for metric, labels, values in (
                (m.TARGET_RUNS, runs, total),
                (m.TARGET_FAILED_RUNS, runs, bads[location]),
                ("push_time_seconds", group, pushed),
            ):
                out.append({"series": f"{metric}{_labels(labels)}", "values": _values(values)})
            if outage is not None and location == _LOCATIONS[-1]:
                out += self.scenarios.feed._failing_probes(self.sli, group, outage, len(total))
        return out

    def _checks(self, minute: int, totals: Counts, bads: Counts) -> list[dict[str, Any]]:
        burn = [
            {
                "exp_labels": {"environment": _ENVIRONMENT, **burn_labels(self.slo, f.window)},
                "exp_annotations": burn_annotations(
                    self.slo,
                    f.window,
                    format(f.value, ".1f"),
                    _failing_text(self.sli, True, _runner(_LOCATIONS[-1])),
                    _locations_text(self.slo, f.window, totals, bads, minute),
                ),
            }
            for f in firing_at_locations(self.slo, totals, bads, minute)
        ]
        checks = [{"eval_time": f"{minute}m", "alertname": "ErrorBudgetBurn", "exp_alerts": burn}]
        if uses_quorum(self.slo):
            held = [
                {
                    "exp_labels": {
                        "environment": _ENVIRONMENT,
                        "location": location,
                        **location_failing_labels(self.slo, f.window),
                    },
                    "exp_annotations": {
                        key: text.replace("{{ $labels.location }}", location)
                        for key, text in location_failing_annotations(
                            self.slo, f.window, format(f.value, ".1f")
                        ).items()
                    },
                }
                for location, f in locations_failing(self.slo, totals, bads, minute)
            ]
            checks.append({"eval_time": f"{minute}m", "alertname": "SLOLocationFailing", "exp_alerts": held})
        return checks

    def failing(self, failing: Sequence[str]) -> dict[str, Any]:
        """Every run in `failing` locations fails from a point on, the others stay clean: the
        first minute anything fires, and the minute before."""
        history, rate = self.scenarios.history, self.scenarios.rate
        minutes = history + _LIMIT
        totals = {location: _cumulative([rate] * minutes) for location in _LOCATIONS}
        bads = {
            location: _cumulative([0.0] * history + [rate if location in failing else 0.0] * _LIMIT)
            for location in _LOCATIONS
        }
        first = next(
            m
            for m in range(history + 1, minutes + 1)
            if firing_at_locations(self.slo, totals, bads, m) or locations_failing(self.slo, totals, bads, m)
        )
        totals = {location: counts[: first + 1] for location, counts in totals.items()}
        bads = {location: counts[: first + 1] for location, counts in bads.items()}
        pushes = dict.fromkeys(_LOCATIONS, first + 1)
        fired = firing_at_locations(self.slo, totals, bads, first)
        if any(f.window.severity == "page" for f in fired):
            what = "pages"
        elif locations_failing(self.slo, totals, bads, first):
            what = "no page, SLOLocationFailing names it"
        else:
            what = "tickets"
        where = " and ".join(failing)
        quorum = self.slo.locations_quorum
        return {
            "name": (
                f"{self.slo.name}: quorum {quorum}, runs from {where} fail: "
                f"{what} after {first - history} minutes"
            ),
            "interval": "1m",
            "input_series": self._series(totals, bads, pushes, outage=history),
            "alert_rule_test": [
                *self._checks(first - 1, totals, bads),
                *self._checks(first, totals, bads),
            ],
        }

    def lost(self) -> dict[str, Any]:
        """The first location's runner stops pushing: named by instance and location, no burn
        alert, and the SLI goes on from the other location."""
        stop, rate = self.scenarios.history, self.scenarios.rate
        budgets, job = self.scenarios.budgets, self.scenarios.job
        minutes = stop + int(budgets.probes_stale_after // 60) + 1
        lost, kept = _LOCATIONS
        totals = {
            lost: _cumulative([rate] * stop + [0.0] * (minutes - stop)),
            kept: _cumulative([rate] * minutes),
        }
        bads = {location: [0.0] * (minutes + 1) for location in _LOCATIONS}
        pushes = {lost: stop, kept: minutes + 1}
        short = burn_windows(self.slo)[0].short_name
        group = {"job": job, "environment": _ENVIRONMENT, "instance": _runner(lost), "location": lost}
        age = 60.0 * (minutes - stop)
        series = {"environment": _ENVIRONMENT, "slo": self.slo.name, "window": short}
        return {
            "name": f"{self.slo.name}: the runner in {lost} stops: named, the SLI goes on from {kept}",
            "interval": "1m",
            "input_series": self._series(totals, bads, pushes),
            "alert_rule_test": [
                {"eval_time": f"{minutes - 1}m", "alertname": "SyntheticProbesStale", "exp_alerts": []},
                {
                    "eval_time": f"{minutes}m",
                    "alertname": "SyntheticProbesStale",
                    "exp_alerts": [
                        {
                            "exp_labels": {"severity": "ticket", **group},
                            "exp_annotations": _stale_annotations(budgets, job, age, _runner(lost), lost),
                        }
                    ],
                },
                *self._checks(minutes, totals, bads),
            ],
            "promql_expr_test": [
                {
                    "expr": names.selector(names.LOCATION_ERROR_RATIO, slo=self.slo.name, window=short),
                    "eval_time": f"{minutes}m",
                    "exp_samples": [
                        {
                            "labels": _labels(
                                {"__name__": names.LOCATION_ERROR_RATIO, **series, "location": kept}
                            ),
                            "value": 0,
                        }
                    ],
                },
                {
                    "expr": names.selector(names.ERROR_RATIO, slo=self.slo.name, window=short),
                    "eval_time": f"{minutes}m",
                    "exp_samples": [
                        {"labels": _labels({"__name__": names.ERROR_RATIO, **series}), "value": 0}
                    ],
                },
            ],
        }


def _stale_annotations(
    budgets: Budgets, job: str, age: float, instance: str = _INSTANCE, location: str = ""
) -> dict[str, str]:
    template = staleness_group(budgets, job)["rules"][0]["annotations"]
    rendered = {}
    for key, text in template.items():
        text = text.replace(IN_LOCATION, f" in {location}" if location else "")
        text = text.replace("{{ $labels.instance }}", instance)
        text = text.replace("{{ $labels.environment }}", _ENVIRONMENT)
        rendered[key] = text.replace("{{ $value | humanizeDuration }}", _humanize_duration(age))
    return rendered


def _humanize_duration(seconds: float) -> str:
    """Prometheus's `humanizeDuration` for whole seconds of at least one."""
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h {minutes}m {secs}s"
    if hours:
        return f"{hours}h {minutes}m {secs}s"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def scenario_files(slos: Sequence[SLO], budgets: Budgets, probe_job: str) -> dict[str, str]:
    """File name -> text: per SLO a rule file (its groups and probe staleness) and a test file."""
    files = {}
    for slo in slos:
        scenarios = _Scenarios(slo, budgets, probe_job)
        rules = {
            "groups": [*slo_groups(scenarios.slo), staleness_group(budgets, probe_job), maintenance_group()]
        }
        files[f"rules-{slo.name}.yml"] = render(rules)
        document = {
            "rule_files": [f"rules-{slo.name}.yml"],
            "evaluation_interval": "1m",
            "tests": scenarios.all(),
        }
        files[f"{slo.name}.test.yml"] = render(document)
    return files
