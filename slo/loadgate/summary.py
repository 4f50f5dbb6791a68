"""`summary.json` and the verdict table: what a run leaves for people, CI and `slo gate`.

The summary is a contract (``"schema": 1``): `slo gate` and dashboards read it. Latencies are
milliseconds and say so in their key names (``p95_ms``); ratios are fractions (0.05 is 5 %).
Every threshold row carries a ``unit`` for its ``threshold``, ``observed`` and bounds. An
endpoint that streamed answers has a ``stream`` object: first-token percentiles (ms) and
output tokens per second, each with its bounds, and where the token counts came from.
A judged run adds ``evidence`` (its histograms: what a later run is compared with, see
:mod:`slo.loadgate.baseline`); a run compared with a baseline adds ``baseline``, the
comparison, whose verdict is part of the run's.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from slo.config.load import FIRST_TOKEN_PERCENTILES, PERCENTILES, TOKEN_RATE_PERCENTILES, LoadSettings
from slo.loadgate.baseline import evidence
from slo.loadgate.samples import ErrorRecord, RunResults
from slo.loadgate.verdict import (
    TOTAL,
    EndpointFigures,
    Evaluation,
    PercentileFigures,
    ThresholdResult,
    planned_thresholds,
)
from slo.tables import table

__all__ = ["SCHEMA", "RunInfo", "failed_summary", "render", "summary", "with_baseline", "write_summary"]

SCHEMA = 1
_TOP_ERRORS = 10


@dataclass(frozen=True)
class RunInfo:
    """How the run was asked for: what the summary states beside what was measured."""

    environment: str
    config: Path
    settings: LoadSettings
    #: Workers asked for (here and elsewhere); the summary of a run states those that reported.
    workers: int
    report_dir: Path


def _round(value: float | None, digits: int | None = 3) -> float | None:
    if value is None or digits is None:
        return value
    return round(value, digits)


def _threshold(result: ThresholdResult) -> dict[str, Any]:
    # Ratios keep full precision, so the table and the reason print the same digits.
    digits = None if result.unit == "ratio" else 3
    return {
        "name": result.name,
        "endpoint": result.endpoint,
        "metric": result.metric,
        "unit": result.unit,
        "threshold": _round(result.threshold, digits),
        "observed": _round(result.observed, digits),
        "bound": _round(result.bound, digits),
        "lower_bound": _round(result.lower_bound, digits),
        "upper_bound": _round(result.upper_bound, digits),
        "verdict": result.verdict,
        "reason": result.reason,
    }


def _endpoint(figures: EndpointFigures) -> dict[str, Any]:
    error = figures.error
    data: dict[str, Any] = {
        "requests": figures.requests,
        "failures": figures.failures,
        "error_rate": None if error is None else error.observed,
        "error_rate_lower": None if error is None else error.lower,
        "error_rate_upper": None if error is None else error.upper,
    }
    data.update(_percentile_keys(figures.percentiles, PERCENTILES, "_ms"))
    if figures.locust is not None:
        data["locust"] = {
            "requests": figures.locust.requests,
            "failures": figures.locust.failures,
            "p50_ms": figures.locust.p50_ms,
            "p95_ms": figures.locust.p95_ms,
            "p99_ms": figures.locust.p99_ms,
        }
    data["stream"] = _stream(figures)
    return data


def _percentile_keys(
    percentiles: dict[str, PercentileFigures], names: Iterable[str], unit: str
) -> dict[str, float | None]:
    """``p95_ms``, ``p95_lower_ms``, ``p95_upper_ms`` (say) of each percentile; None when unmeasured."""
    data: dict[str, float | None] = {}
    for name in names:
        percentile = percentiles.get(name)
        data[f"{name}{unit}"] = None if percentile is None else _round(percentile.value)
        data[f"{name}_lower{unit}"] = None if percentile is None else _round(percentile.lower)
        data[f"{name}_upper{unit}"] = None if percentile is None else _round(percentile.upper)
    return data


def _stream(figures: EndpointFigures) -> dict[str, Any] | None:
    if not figures.streams and not figures.rate_samples:
        return None
    return {
        "answers": figures.streams,
        **_percentile_keys(figures.first_token, FIRST_TOKEN_PERCENTILES, "_ms"),
        "rate_samples": figures.rate_samples,
        **_percentile_keys(figures.token_rate, TOKEN_RATE_PERCENTILES, ""),
        "output_tokens_from": {"usage": figures.tokens_from_usage, "counted_deltas": figures.tokens_counted},
    }


def _reason(evaluation: Evaluation, thresholds: list[dict[str, Any]]) -> str:
    if evaluation.verdict == "pass":
        reason = "every threshold is met with the required confidence"
    else:
        first = next(row for row in thresholds if row["verdict"] == evaluation.verdict)
        reason = f"{first['name']}: {first['reason']}"
    if evaluation.cpu_saturated:
        reason += " (the load generator saturated its CPU: see warnings)"
    return reason


def _document(info: RunInfo, verdict: str, reason: str, **run: Any) -> dict[str, Any]:
    """The summary in its documented key order: what was decided, then how the run went."""
    settings = info.settings
    return {
        "schema": SCHEMA,
        "verdict": verdict,
        "reason": reason,
        "environment": info.environment,
        "config": str(info.config),
        "started": run["started"],
        "duration_s": run["duration_s"],
        "users": settings.users,
        "spawn_rate": settings.spawn_rate,
        "warmup_s": settings.warmup,
        "workers": run["workers"],
        "confidence": settings.confidence,
        "cpu_saturated": run["cpu_saturated"],
        "warnings": run["warnings"],
        "thresholds": run["thresholds"],
        "endpoints": run["endpoints"],
        "load_generators": run["load_generators"],
        "errors": run["errors"],
        "reports": {
            "html": str(info.report_dir / "report.html"),
            "csv_prefix": str(info.report_dir / "locust"),
            "log": str(info.report_dir / "locust.log"),
        },
    }


def _ramp_up_warning(settings: LoadSettings) -> list[str]:
    ramp_up = settings.users / settings.spawn_rate
    if settings.warmup >= ramp_up:
        return []
    return [
        f"the warm-up ({settings.warmup:g} s) is shorter than the ramp-up ({ramp_up:g} s at "
        f"{settings.spawn_rate:g} users/s): requests at partial load are in the verdict"
    ]


def summary(evaluation: Evaluation, results: RunResults, info: RunInfo) -> dict[str, Any]:
    """The summary of a run that finished and was judged."""
    thresholds = [_threshold(result) for result in evaluation.thresholds]
    data = _document(
        info,
        evaluation.verdict,
        _reason(evaluation, thresholds),
        started=datetime.fromtimestamp(results.started, UTC).isoformat(timespec="seconds"),
        duration_s=round(results.measured_seconds, 3),
        workers=results.workers,
        cpu_saturated=evaluation.cpu_saturated,
        warnings=evaluation.warnings + _ramp_up_warning(info.settings),
        thresholds=thresholds,
        endpoints={name: _endpoint(figures) for name, figures in evaluation.endpoints.items()},
        load_generators=[
            {"process": usage.process, "cpu_percent": round(usage.percent, 1)} for usage in results.cpu
        ],
        errors=[vars(error) for error in _top_errors(results.errors)],
    )
    data["evidence"] = evidence(results, info.environment, info.settings)
    return data


#: Verdicts from best to worst: the run's verdict is the worst of its thresholds and baseline.
_SEVERITY = ("pass", "inconclusive", "fail")


def with_baseline(data: dict[str, Any], comparison: dict[str, Any]) -> None:
    """Add the comparison with the baseline (``baseline`` key); when it is worse than the
    thresholds' verdict it becomes the run's verdict and reason."""
    data["baseline"] = comparison
    if _SEVERITY.index(comparison["verdict"]) > _SEVERITY.index(data["verdict"]):
        data["verdict"] = comparison["verdict"]
        data["reason"] = f"against the baseline: {comparison['reason']}"


def _top_errors(errors: list[ErrorRecord]) -> list[ErrorRecord]:
    return sorted(errors, key=lambda error: -error.occurrences)[:_TOP_ERRORS]


def failed_summary(info: RunInfo, problem: str) -> dict[str, Any]:
    """The summary of a run that produced no results: every planned threshold fails."""
    rows = [
        {
            "name": name,
            "endpoint": endpoint,
            "metric": metric,
            "unit": None,
            "threshold": None,
            "observed": None,
            "bound": None,
            "lower_bound": None,
            "upper_bound": None,
            "verdict": "fail",
            "reason": problem,
        }
        for name, endpoint, metric in planned_thresholds(info.settings)
    ]
    return _document(
        info,
        "fail",
        problem,
        started=None,
        duration_s=0.0,
        workers=info.workers,
        cpu_saturated=False,
        warnings=[],
        thresholds=rows,
        endpoints={},
        load_generators=[],
        errors=[],
    )


def write_summary(path: Path, data: dict[str, Any]) -> None:
    """Write atomically: `slo gate` may read it while a new run is finishing."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)


# --- the table ---------------------------------------------------------------------------------


def _value(value: float | None, unit: str | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if unit == "ratio":
        return f"{100 * value:.2f} %"
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit == "percent":
        return f"{value:.0f} %"
    if unit == "tokens/s":
        return f"{value:.1f} tok/s"
    return f"{value:g}"


def _bound(row: dict[str, Any]) -> str:
    lower, upper, unit = row["lower_bound"], row["upper_bound"], row["unit"]
    # The bound that decided, as a claim: a latency is at most its upper bound (pass) or at
    # least its lower bound (fail); a rate, where higher is better, the other way round.
    rate = row["metric"] in TOKEN_RATE_PERCENTILES
    decided: tuple[float | None, str] = (None, "")
    if row["verdict"] == "fail":
        decided = (upper, "<=") if rate else (lower, ">=")
    elif row["verdict"] == "pass":
        decided = (lower, ">=") if rate else (upper, "<=")
    bound, claim = decided
    if bound is not None:
        return f"{claim} {_value(bound, unit)}"
    if lower is None and upper is None:
        return "-"
    return f"{_value(lower, unit)} .. {_value(upper, unit)}"


def _stream_table(endpoints: dict[str, Any]) -> list[str]:
    """First-token times and output rates of the endpoints that streamed answers."""
    streamed = {name: figures["stream"] for name, figures in endpoints.items() if figures.get("stream")}
    if not streamed:
        return []
    header = [
        "streamed",
        "answers",
        "ttft p50",
        "ttft p95",
        "ttft p99",
        "tok/s p5",
        "tok/s p50",
        "tokens from",
    ]
    rows = []
    for name in [name for name in streamed if name != TOTAL] + [name for name in streamed if name == TOTAL]:
        stream = streamed[name]
        source = stream["output_tokens_from"]
        rows.append(
            [
                name,
                str(stream["answers"]),
                *(_value(stream[f"{p}_ms"], "ms") for p in FIRST_TOKEN_PERCENTILES),
                *(_value(stream[p], "tokens/s") for p in TOKEN_RATE_PERCENTILES),
                f"usage {source['usage']}, counted {source['counted_deltas']}",
            ]
        )
    return ["", *("  " + line for line in table([header, *rows], right=range(1, 7)))]


def _change(row: dict[str, Any]) -> tuple[str, str]:
    """The change and its interval as people read them: x1.62 for a ratio, points for errors."""
    if row["change"] is None:
        return "-", "-"
    if row["kind"] == "difference":
        return (
            f"{100 * row['change']:+.2f} pt",
            f"{100 * row['lower']:+.2f} .. {100 * row['upper']:+.2f} pt",
        )
    return f"x{row['change']:.3f}", f"x{row['lower']:.3f} .. x{row['upper']:.3f}"


def _baseline_table(comparison: dict[str, Any] | None) -> list[str]:
    if comparison is None:
        return []
    source = f" of {comparison['started']}" if comparison["started"] else ""
    lines = [
        "",
        f"  against the baseline{source} ({comparison['path']}): {comparison['verdict'].upper()}, "
        f"noise floor {100 * comparison['noise']:g} %, {100 * comparison['confidence']:g} % intervals",
    ]
    header = ["comparison", "baseline", "this run", "change", "interval", "verdict"]
    rows = []
    for row in comparison["comparisons"]:
        change, interval = _change(row)
        verdict = row["verdict"]
        rows.append(
            [
                f"{row['endpoint']} {row['measure']}",
                _value(row["baseline"], row["unit"]),
                _value(row["current"], row["unit"]),
                change,
                interval,
                verdict if verdict in ("unchanged", "improved") else verdict.upper(),
            ]
        )
    lines += ["  " + line for line in table([header, *rows], right={1, 2, 3})]
    lines += [
        f"  {row['verdict']}: {row['endpoint']} {row['measure']}: {row['reason']}"
        for row in comparison["comparisons"]
        if row["verdict"] in ("regressed", "inconclusive")
    ][:5]
    return lines


def render(data: dict[str, Any]) -> str:
    """The verdict table printed at the end of `slo load`."""
    level = f"{100 * data['confidence']:g} %"
    workers = data["workers"]
    generators = f"master + {workers} worker{'s' if workers > 1 else ''}" if workers else "1 process"
    lines = [
        f"slo load: {data['verdict'].upper()}  ({data['environment']}: {data['users']} users, "
        f"{data['duration_s']:.1f} s measured after {data['warmup_s']:g} s warm-up, {generators})",
        "",
    ]
    header = ["threshold", "limit", "observed", f"bound ({level})", "verdict"]
    rows = [
        [
            row["name"],
            _value(row["threshold"], row["unit"]),
            _value(row["observed"], row["unit"]),
            _bound(row),
            row["verdict"].upper() if row["verdict"] != "pass" else "pass",
        ]
        for row in data["thresholds"]
    ]
    lines += ["  " + line for line in table([header, *rows], right={1, 2})]
    if data["endpoints"]:
        lines.append("")
        header = ["endpoint", "requests", "failures", "errors", "p50", "p95", "p99", "locust p95"]
        ordered = [name for name in data["endpoints"] if name != TOTAL] + [TOTAL]
        rows = []
        for name in ordered:
            endpoint = data["endpoints"][name]
            locust = endpoint.get("locust") or {}
            rows.append(
                [
                    name,
                    str(endpoint["requests"]),
                    str(endpoint["failures"]),
                    _value(endpoint["error_rate"], "ratio"),
                    _value(endpoint["p50_ms"], "ms"),
                    _value(endpoint["p95_ms"], "ms"),
                    _value(endpoint["p99_ms"], "ms"),
                    _value(locust.get("p95_ms"), "ms"),
                ]
            )
        lines += ["  " + line for line in table([header, *rows], right=range(1, 8))]
        lines += _stream_table(data["endpoints"])
    if data["errors"]:
        lines += ["", "  most frequent failures:"]
        lines += [
            f"    {error['occurrences']}x {error['endpoint']}: {error['message']}"
            for error in data["errors"][:5]
        ]
    lines += _baseline_table(data.get("baseline"))
    lines.append("")
    lines += [f"warning: {warning}" for warning in data["warnings"]]
    if data["verdict"] != "pass":
        lines.append(f"{data['verdict']}: {data['reason']}")
    return "\n".join(lines)
