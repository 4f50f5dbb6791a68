"""`slo gate`: the CI release gate over probe results, the load test and the error budget.

    slo gate --junit reports/probes-junit.xml \\
             --load reports/load/summary.json --baseline baseline/load-baseline.json \\
             --prometheus "$PROMETHEUS_URL" --min-budget 0.25 --env staging

Every input is optional but at least one is required. An input older than ``--max-age``
(default 24h), or of another environment than ``--env``, fails its condition.
Each condition becomes a row with its evidence; the verdict is written as JSON (``--output``,
default reports/gate.json). The gate fails closed: a missing or unreadable input, zero tests,
an inconclusive load test or an SLO without data is a failed condition, never a pass. So is an
SLO with *insufficient data*: a window that holds data for less than ``--min-coverage`` of its
length (default 10 %), or fewer than ``--min-events`` events (default: one over the error
budget, 1000 for 99.9 %, the fewest in which a single bad event leaves some budget), because a
budget computed from twenty minutes of a thirty-day window says nothing about the release. With
``--baseline``, the load run is also compared with the last good run: a regression fails, and a
comparison that cannot be made fails too unless ``--allow-inconclusive``. Exit 0 only when
every condition passes, 1 otherwise, 4 for usage and config errors.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from slo import redact
from slo.cliargs import ArgumentParser, fail
from slo.config import ConfigError, LoadSettings, load_config
from slo.config.objectives import SLO
from slo.conventions import ENVIRONMENT_PROPERTY, GATE_VERDICT, MAX_ARTIFACT_BYTES, PROBE_RESULTS
from slo.junit import JunitError, read_cases, read_suite
from slo.loadgate.baseline import compare_with
from slo.objectives.budget import BudgetRow, budget_rows, location_summary, maintenance_windows, select
from slo.objectives.inputs import add_config_options, load_inputs
from slo.objectives.promql import PrometheusClient, PrometheusError
from slo.objectives.rules.sli import sli_query
from slo.options import add_cli_options, parse_cli
from slo.tables import table
from slo.units import format_duration, parse_duration

__all__ = ["BaselineCheck", "Condition", "budget_conditions", "junit_conditions", "load_conditions", "main"]

DEFAULT_OUTPUT = str(GATE_VERDICT)
DEFAULT_MIN_COVERAGE = 0.1
#: Evidence older than this is about another build: a release gate judges this one.
DEFAULT_MAX_AGE = "24h"
_VERDICTS = ("pass", "fail", "inconclusive")


def _too_large(path: Path) -> bool:
    try:
        return path.stat().st_size > MAX_ARTIFACT_BYTES
    except OSError:
        return False  # the read says what is wrong


@dataclass(frozen=True)
class Condition:
    """One gate condition: what was checked, whether it passed, and the evidence."""

    source: str
    name: str
    passed: bool
    evidence: str
    #: Failed because the evidence is too thin to judge, not because it is bad.
    insufficient_data: bool = False
    #: Maintenance windows the evidence comes from (a probe run inside one, an SLO window
    #: holding one, whose runs its SLI does not count).
    maintenance: tuple[str, ...] = ()


def min_events_for(slo: SLO) -> int:
    """Events needed before one bad event leaves some of the budget: 1 / error budget."""
    return math.ceil(1 / slo.error_budget - 1e-9)


def _insufficient(row: BudgetRow, slo: SLO, min_coverage: float, min_events: int | None) -> str:
    """Why the row's evidence is too thin to judge, or '' when it is enough."""
    needed = min_events_for(slo) if min_events is None else min_events
    coverage = row.coverage or 0.0
    problems = []
    if coverage < min_coverage:
        problems.append(
            f"data for {coverage * 100:.1f}% of the {row.window} window (need {min_coverage * 100:g}%)"
        )
    if row.events < needed:
        problems.append(f"{row.events:.0f} events (need {needed})")
    return "; ".join(problems)


def _foreign(path: Path, run: str, ran_in: str, environment: str) -> str:
    return f"{path} is a {run} run of environment {ran_in}, not {environment!r} (--env)"


def _age_condition(source: str, path: Path, started: datetime | None, max_age: float) -> Condition | None:
    """A failed condition when the input is older than `max_age` seconds (its own time, else
    the file's modification time), else None."""
    if started is None:
        try:
            started = datetime.fromtimestamp(path.stat().st_mtime).astimezone()
        except OSError:
            return None  # the read says what is wrong
    age = (datetime.now().astimezone() - started) / timedelta(seconds=1)
    if age <= max_age:
        return None
    shown = format_duration(max(60, round(age / 60) * 60))
    evidence = f"{path} is {shown} old, over --max-age {format_duration(max_age)}: run it again"
    return Condition(source, "age", False, evidence)


def junit_conditions(
    path: Path, environment: str | None = None, max_age: float = math.inf
) -> list[Condition]:
    """The probe run passed: at least one test, no failure, no error; not older than
    `max_age`, and of `environment` when the report names one (a probe run's does)."""
    if _too_large(path):
        return [
            Condition(
                "junit",
                str(path),
                False,
                f"over {MAX_ARTIFACT_BYTES // 1048576} MiB, not a probe run's JUnit",
            )
        ]
    try:
        cases = read_cases(path)
    except JunitError as exc:
        return [Condition("junit", str(path), False, redact.excerpt(str(exc)))]
    suite = read_suite(path)
    ran_in = suite.properties.get(ENVIRONMENT_PROPERTY)
    if environment is not None and ran_in is not None and ran_in != environment:
        shown = redact.excerpt(ran_in, 80)
        return [Condition("junit", "environment", False, _foreign(path, "probe", shown, environment))]
    stale = _age_condition("junit", path, suite.started, max_age)
    if stale is not None:
        return [stale]
    count = Counter(case.outcome for case in cases)
    ran = len(cases) - count["skipped"]
    evidence = (
        f"{len(cases)} tests: {count['failed']} failed, {count['error']} errors, {count['skipped']} skipped"
    )
    degraded = sum(1 for case in cases if case.degraded)
    if degraded:  # they passed: worth knowing before a release, never a reason to stop it
        evidence += f", {degraded} passed degraded"
    bad = [case for case in cases if case.outcome in ("failed", "error")]
    if bad:
        evidence += f"; first: {redact.excerpt(f'{bad[0].classname}::{bad[0].name}')}"
    elif ran == 0:
        evidence += "; nothing ran, which proves nothing"
    windows = _run_windows(path.with_name(PROBE_RESULTS.name))
    if windows:
        evidence += f"; ran inside maintenance window {', '.join(windows)} (not counted in the SLOs)"
    return [Condition("junit", str(path), not bad and ran > 0, evidence, maintenance=windows)]


def _run_windows(run_file: Path) -> tuple[str, ...]:
    """The windows open at the start of the probe run whose results are `run_file` (its
    `probes.json`, beside the JUnit), each as ``name (targets)``; none when it cannot tell."""
    if _too_large(run_file):
        return ()
    try:
        windows = json.loads(run_file.read_text(encoding="utf-8")).get("maintenance") or []
        return tuple(
            redact.excerpt(f"{w['name']} ({', '.join(w['targets']) or 'all targets'})", 120) for w in windows
        )
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return ()


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


@dataclass(frozen=True)
class BaselineCheck:
    """Compare the load summary with this baseline, judged by these settings."""

    path: Path
    settings: LoadSettings
    allow_inconclusive: bool = False


def load_conditions(
    path: Path,
    environment: str | None = None,
    max_age: float = math.inf,
    baseline: BaselineCheck | None = None,
) -> list[Condition]:
    """The load gate's own verdict, each of its thresholds and each comparison with the
    baseline (``baseline``'s, else the one `slo load --baseline` made); only ``pass`` passes,
    and a comparison passes when unchanged or improved. A summary of another environment than
    `environment`, or older than `max_age` seconds, fails.

    The summary must have the shape `slo load` writes: a verdict and a non-empty list of
    thresholds, each with a name and a verdict; anything else fails the gate (a summary of
    only ``{"verdict": "pass"}`` proves nothing).
    """
    if _too_large(path):
        return [
            Condition(
                "load", str(path), False, f"over {MAX_ARTIFACT_BYTES // 1048576} MiB, not a load summary"
            )
        ]
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return [Condition("load", str(path), False, "file not found")]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        return [Condition("load", str(path), False, f"not a load summary: {redact.excerpt(str(exc))}")]
    problem = _summary_problem(summary)
    if problem:
        return [Condition("load", str(path), False, f"not a load summary: {problem}")]
    ran_in = summary.get("environment")
    if environment is not None and ran_in != environment:
        shown = redact.excerpt(str(ran_in), 80)
        return [Condition("load", "environment", False, _foreign(path, "load", shown, environment))]
    stale = _age_condition("load", path, _finished(summary), max_age)
    if stale is not None:
        return [stale]
    conditions = []
    for threshold in summary["thresholds"]:
        verdict = threshold["verdict"]
        evidence = (
            f"{verdict}: observed {_number(threshold.get('observed', '-'))}, "
            f"threshold {_number(threshold.get('threshold', '-'))}"
        )
        if threshold.get("reason"):
            evidence += f" ({threshold['reason']})"
        conditions.append(
            Condition(
                "load", redact.excerpt(threshold["name"], 80), verdict == "pass", redact.excerpt(evidence)
            )
        )
    if baseline is not None:
        comparison = compare_with(summary, baseline.path, baseline.settings, baseline.allow_inconclusive)
    else:
        comparison = summary.get("baseline")
    if comparison is not None:
        conditions += _baseline_conditions(comparison)
    verdict = summary["verdict"]
    note = {"inconclusive": " (not enough evidence is not a pass)"}.get(verdict, "")
    conditions.append(Condition("load", "verdict", verdict == "pass", f"{verdict}{note}"))
    return conditions


def _baseline_conditions(comparison: dict[str, Any]) -> list[Condition]:
    allowed = {"improved", "unchanged"} | ({"inconclusive"} if comparison["allow_inconclusive"] else set())
    return [
        Condition(
            "load",
            redact.excerpt(row["name"], 80),
            row["verdict"] in allowed,
            redact.excerpt(f"{row['verdict']}: {row['reason']}"),
            insufficient_data=row["verdict"] == "inconclusive",
        )
        for row in comparison["comparisons"]
    ]


def _finished(summary: dict[str, Any]) -> datetime | None:
    """When the load run ended, from its ``started`` and ``duration_s``; None if unreadable."""
    try:
        started = datetime.fromisoformat(summary["started"]).astimezone()
        return started + timedelta(seconds=float(summary.get("duration_s") or 0))
    except (KeyError, TypeError, ValueError, OverflowError):
        return None


def _summary_problem(summary: Any) -> str:
    """What makes `summary` not a load summary, or "" when it is one."""
    if not isinstance(summary, dict) or summary.get("verdict") not in _VERDICTS:
        return 'no top-level "verdict" of pass, fail or inconclusive'
    thresholds = summary.get("thresholds")
    if not isinstance(thresholds, list) or not thresholds:
        return 'no "thresholds": a verdict without them proves nothing'
    for index, threshold in enumerate(thresholds):
        if not isinstance(threshold, dict) or not isinstance(threshold.get("name"), str):
            return f"thresholds[{index}] is not an object with a name"
        if threshold.get("verdict") not in _VERDICTS:
            return f"thresholds[{index}] has no verdict of pass, fail or inconclusive"
    if summary["verdict"] == "pass" and any(t["verdict"] != "pass" for t in thresholds):
        return 'verdict "pass" with a threshold that did not pass'
    problem = _baseline_problem(summary.get("baseline"))
    if (
        not problem
        and summary["verdict"] == "pass"
        and (summary.get("baseline") or {}).get("verdict", "pass") != "pass"
    ):
        return 'verdict "pass" with a comparison with the baseline that did not pass'
    return problem


def _baseline_problem(comparison: Any) -> str:
    """What makes a summary's ``baseline`` comparison unreadable, or "" (also when absent)."""
    if comparison is None:
        return ""
    rows = comparison.get("comparisons") if isinstance(comparison, dict) else None
    if not isinstance(rows, list) or not rows or not isinstance(comparison.get("allow_inconclusive"), bool):
        return '"baseline" is not a comparison with a list of comparisons'
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or not isinstance(row.get("name"), str):
            return f"baseline comparisons[{index}] is not an object with a name"
        if not isinstance(row.get("verdict"), str) or not isinstance(row.get("reason"), str):
            return f"baseline comparisons[{index}] has no verdict and reason"
    return ""


def budget_conditions(
    rows: Sequence[BudgetRow],
    slos: Sequence[SLO],
    min_budget: float,
    environment: str,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
    min_events: int | None = None,
) -> list[Condition]:
    """Each SLO keeps at least `min_budget` of its error budget (in `environment` for probe
    SLIs); an SLO without data, or with too little (see the module doc), fails."""
    conditions = []
    for slo in slos:
        probe_based = "environment" in sli_query(slo).by
        mine = [r for r in rows if r.slo == slo.name and (not probe_based or r.environment == environment)]
        if not mine:
            conditions.append(
                Condition("budget", slo.name, False, f"no data for environment {environment!r}")
            )
            continue
        for row in mine:
            name = slo.name
            if row.budget_remaining is None or row.sli is None:
                conditions.append(Condition("budget", name, False, row.note or "no data"))
                continue
            evidence = (
                f"{round(row.budget_remaining * 100, 1) + 0.0:.1f}% of the {row.window} budget left "
                f"(need {min_budget * 100:g}%), SLI {row.sli * 100:.3f}%"
            )
            if row.note:
                evidence += f"; {row.note}"
            if row.locations:
                evidence += f"; {location_summary(row)}"
            if row.maintenance:
                evidence += f"; the window holds maintenance {', '.join(row.maintenance)} (runs not counted)"
            thin = _insufficient(row, slo, min_coverage, min_events)
            if thin:
                evidence = f"insufficient data: {thin}; {evidence}"
                conditions.append(
                    Condition("budget", name, False, evidence, True, maintenance=tuple(row.maintenance))
                )
                continue
            passed = row.budget_remaining >= min_budget and not row.note
            conditions.append(Condition("budget", name, passed, evidence, maintenance=tuple(row.maintenance)))
    return conditions


def _result(condition: Condition) -> str:
    if condition.passed:
        return "PASS"
    return "INSUFFICIENT DATA" if condition.insufficient_data else "FAIL"


def render_table(conditions: Sequence[Condition]) -> str:
    header = ("SOURCE", "CONDITION", "RESULT", "EVIDENCE")
    rows = [(c.source, c.name, _result(c), c.evidence) for c in conditions]
    return "\n".join(table([header, *rows]))


def _parser() -> ArgumentParser:
    parser = ArgumentParser(prog="slo gate", description=__doc__.split("\n\n")[0])
    add_config_options(parser)
    parser.add_argument("--junit", metavar="FILE", help="JUnit XML of the probe run")
    parser.add_argument("--load", metavar="FILE", help="load test summary.json")
    parser.add_argument(
        "--baseline",
        metavar="FILE",
        help="compare the load summary with this passing run (summary.json or --save-baseline file)",
    )
    parser.add_argument(
        "--allow-inconclusive",
        action="store_true",
        help="with --baseline: comparisons that cannot be made (first run, other config) pass",
    )
    add_cli_options(parser, ["prometheus"])
    parser.add_argument(
        "--min-budget",
        type=float,
        metavar="SHARE",
        help="least share of each SLO's error budget that must be left, 0..1 (e.g. 0.25)",
    )
    parser.add_argument(
        "--min-coverage",
        type=float,
        default=DEFAULT_MIN_COVERAGE,
        metavar="SHARE",
        help="least share of each SLO window that must hold data, 0..1 "
        f"(default {DEFAULT_MIN_COVERAGE:g}); less is insufficient data",
    )
    parser.add_argument(
        "--min-events",
        type=int,
        metavar="N",
        help="least events in each SLO window (default: 1 / error budget, e.g. 1000 for 99.9 %%)",
    )
    parser.add_argument(
        "--max-age",
        default=DEFAULT_MAX_AGE,
        metavar="DURATION",
        help=f"refuse a JUnit file or load summary older than this (default {DEFAULT_MAX_AGE})",
    )
    parser.add_argument(
        "--slo", action="append", default=[], metavar="NAME", help="gate on this SLO only (repeatable)"
    )
    parser.add_argument(
        "--output", default=DEFAULT_OUTPUT, metavar="FILE", help=f"JSON verdict (default: {DEFAULT_OUTPUT})"
    )
    return parser


def _budget(args: Any) -> list[Condition]:
    inputs = load_inputs(args)
    slos = select(inputs.slos, args.slo)
    try:
        with PrometheusClient(args.prometheus) as prometheus:
            now = time.time()
            rows, _ = maintenance_windows(
                prometheus, inputs.config, slos, budget_rows(prometheus, slos, now), now
            )
    except PrometheusError as exc:
        return [Condition("budget", "prometheus", False, str(exc))]
    return budget_conditions(
        rows, slos, args.min_budget, inputs.config.env_name, args.min_coverage, args.min_events
    )


def _baseline_check(args: Any) -> BaselineCheck | None:
    if not args.baseline:
        return None
    settings = load_config(args.config, args.env).load
    return BaselineCheck(Path(args.baseline), settings, args.allow_inconclusive)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_cli(_parser(), argv)
    if args.min_budget is not None and not 0 <= args.min_budget <= 1:
        return fail("slo gate: --min-budget is a share of the budget between 0 and 1 (e.g. 0.25)")
    if not 0 <= args.min_coverage <= 1:
        return fail("slo gate: --min-coverage is a share of the SLO window between 0 and 1 (e.g. 0.1)")
    if args.min_events is not None and args.min_events < 0:
        return fail("slo gate: --min-events must be 0 or more")
    if args.min_budget is not None and not args.prometheus:
        return fail("slo gate: --min-budget needs --prometheus URL (or PROMETHEUS_URL)")
    if not (args.junit or args.load or args.min_budget is not None):
        return fail("slo gate: give at least one of --junit, --load, --min-budget (with --prometheus)")
    if args.baseline and not args.load:
        return fail("slo gate: --baseline compares a load run with it: give --load too")
    if args.allow_inconclusive and not args.baseline:
        return fail("slo gate: --allow-inconclusive applies to --baseline: give --baseline too")
    try:
        max_age = parse_duration(args.max_age)
    except ValueError as exc:
        return fail(f"slo gate: --max-age: {exc}")
    conditions: list[Condition] = []
    if args.junit:
        conditions += junit_conditions(Path(args.junit), args.env, max_age)
    if args.load:
        try:
            conditions += load_conditions(Path(args.load), args.env, max_age, _baseline_check(args))
        except ConfigError as exc:
            return fail(str(exc))
    if args.min_budget is not None:
        try:
            conditions += _budget(args)
        except ConfigError as exc:
            return fail(str(exc))
    passed = all(c.passed for c in conditions)
    print(render_table(conditions))
    passing = sum(c.passed for c in conditions)
    print(f"\ngate: {'PASS' if passed else 'FAIL'} ({passing}/{len(conditions)} conditions pass)")
    from_windows = [c for c in conditions if c.maintenance]
    if from_windows:
        shown = ", ".join(f"{c.source} {c.name}" for c in from_windows)
        print(f"gate: evidence from a maintenance window: {shown}")
    verdict = {
        "verdict": "pass" if passed else "fail",
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "conditions": [asdict(c) for c in conditions],
    }
    output = Path(args.output)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(verdict, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        return fail(f"slo gate: cannot write {output}: {exc.strerror}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
