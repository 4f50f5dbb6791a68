"""The load gate's section: the verdict table, then per endpoint the exact percentile curves
(latency, and on streaming runs time to first token and tokens/s) with each threshold and
its confidence bound marked. `slo report` shows it, and `slo load` writes it as a page of its
own (``reports/load/index.html``) beside Locust's.

The curves come from the HdrHistograms of the master's ``results.json``, read with the same
nearest-rank rule and conservative bucket ends as the verdict (`slo.loadgate.verdict`), so
the point a threshold is judged at lies on the curve drawn.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from slo import redact, stats
from slo.config.load import FIRST_TOKEN_PERCENTILES, PERCENTILES, TOKEN_RATE_PERCENTILES
from slo.conventions import MAX_ARTIFACT_BYTES
from slo.html.markup import badge, details, extras, page, table, text
from slo.html.svg import Mark, percentile_curve
from slo.loadgate.histogram import ExactHistogram
from slo.loadgate.samples import EndpointRecord, ResultsError, RunResults
from slo.loadgate.summary import _bound, _value  # the table's formatting, so both read alike
from slo.loadgate.verdict import TOTAL

__all__ = ["PAGE_NAME", "curve_points", "load_section", "read_load_results", "write_load_page"]


PAGE_NAME = "index.html"
#: Points per curve: smooth at any width the page is read at, a few kB each.
_CURVE_POINTS = 120
#: The axis stops at 99.999 %: past that no load test here has the samples to say anything.
_MAX_NINES = 5.0
#: The summary's keys this page lays out (schema 1); any other is shown raw, as are unknown
#: keys of a threshold row or of an endpoint's figures.
_KNOWN_SUMMARY = [
    "schema",
    "verdict",
    "reason",
    "environment",
    "config",
    "started",
    "duration_s",
    "users",
    "spawn_rate",
    "warmup_s",
    "workers",
    "confidence",
    "cpu_saturated",
    "warnings",
    "thresholds",
    "endpoints",
    "load_generators",
    "errors",
    "reports",
]


def curve_points(histogram: ExactHistogram, higher_is_better: bool = False) -> list[tuple[float, float]]:
    """(quantile, value) along the sorted samples, evenly spaced on the nines axis, ending at
    the largest sample; each value is its bucket's conservative end, as in the verdict."""
    order = histogram.order_statistics()
    n = order.count
    if n == 0:
        return []
    last = min(_MAX_NINES, math.log10(n)) if n > 1 else 0.0
    points = []
    for step in range(_CURVE_POINTS + 1):
        quantile = 1 - 10 ** -(last * step / _CURVE_POINTS)
        rank = stats.nearest_rank(n, quantile) if 0 < quantile < 1 else 1
        bucket = order.at(rank)
        points.append((quantile, bucket.low if higher_is_better else bucket.high))
    return points


def _records(results: RunResults | None) -> dict[str, EndpointRecord]:
    if results is None:
        return {}
    total = EndpointRecord(method="", name=TOTAL)
    for record in results.endpoints.values():
        total.merge(record)
    return {**results.endpoints, TOTAL: total}


def _marks(thresholds: list[dict[str, Any]], endpoint: str, quantiles: Mapping[str, float]) -> list[Mark]:
    return [
        Mark(
            label=str(row["metric"]),
            quantile=quantiles[row["metric"]],
            limit=float(row["threshold"]),
            observed=row.get("observed"),
            lower=row.get("lower_bound"),
            upper=row.get("upper_bound"),
            verdict=str(row.get("verdict", "")),
        )
        for row in thresholds
        if row.get("endpoint") == endpoint
        and row.get("metric") in quantiles
        and isinstance(row.get("threshold"), int | float)
    ]


def _curves(name: str, record: EndpointRecord | None, thresholds: list[dict[str, Any]]) -> list[str]:
    if record is None:
        return ['<p class="muted">no histogram of this endpoint (results.json missing)</p>']
    charts = []
    curves: tuple[tuple[ExactHistogram | None, Mapping[Any, float], str, str, bool], ...] = (
        (record.histogram, PERCENTILES, "ms", "latency", False),
        (record.first_token, FIRST_TOKEN_PERCENTILES, "ms", "time to first token", False),
        (record.token_rate, TOKEN_RATE_PERCENTILES, "tokens/s", "output tokens per second", True),
    )
    for histogram, quantiles, unit, what, rate in curves:
        if histogram is None or not histogram.count:
            continue
        title = f"{name}: {what} by percentile ({histogram.count} samples)"
        charts.append(f"<h4>{text(what)}</h4>")
        marks = _marks(thresholds, name, quantiles)
        charts.append(percentile_curve(curve_points(histogram, rate), title, unit, marks))
    return charts


_KNOWN_THRESHOLD = [
    "name", "endpoint", "metric", "unit", "threshold", "observed", "bound", "lower_bound", "upper_bound",
    "verdict", "reason",
]  # fmt: skip
_PERCENTILE_KEYS = [f"{p}{end}" for p in PERCENTILES for end in ("_ms", "_lower_ms", "_upper_ms")]
_KNOWN_ENDPOINT = [
    "requests", "failures", "error_rate", "error_rate_lower", "error_rate_upper", "locust", "stream",
    *_PERCENTILE_KEYS,
]  # fmt: skip


def _threshold_table(summary: dict[str, Any]) -> str:
    level = f"bound ({100 * float(summary.get('confidence', 0)):g} %)"
    rows = [
        [
            text(row.get("name", "")),
            text(_value(row.get("threshold"), row.get("unit"))),
            text(_value(row.get("observed"), row.get("unit"))),
            text(
                _bound(
                    {
                        "lower_bound": None,
                        "upper_bound": None,
                        "unit": None,
                        "metric": "",
                        "verdict": "",
                        **row,
                    }
                )
            ),
            badge(str(row.get("verdict", ""))),
            text(row.get("reason", "")),
        ]
        for row in summary.get("thresholds", [])
        if isinstance(row, dict)
    ]
    html = table(["threshold", "limit", "observed", level, "verdict", "reason"], rows, numeric=(1, 2, 3))
    for row in summary.get("thresholds", []):
        if isinstance(row, dict):
            html += extras(row, _KNOWN_THRESHOLD, f"{row.get('name', '')} threshold")
    return html


def _endpoint_table(name: str, figures: dict[str, Any]) -> str:
    locust = figures.get("locust") or {}
    row = [
        text(figures.get("requests", "-")),
        text(figures.get("failures", "-")),
        text(_value(figures.get("error_rate"), "ratio")),
        *(text(_value(figures.get(f"{p}_ms"), "ms")) for p in PERCENTILES),
        text(_value(locust.get("p95_ms"), "ms")),
    ]
    header = ["requests", "failures", "errors", *(f"{p.upper()}" for p in PERCENTILES), "Locust's P95"]
    html = table(header, [row], numeric=range(len(row)))
    stream = figures.get("stream")
    if isinstance(stream, dict):
        cells = [
            text(stream.get("answers", "-")),
            *(text(_value(stream.get(f"{p}_ms"), "ms")) for p in FIRST_TOKEN_PERCENTILES),
            *(text(_value(stream.get(p), "tokens/s")) for p in TOKEN_RATE_PERCENTILES),
        ]
        names = ["answers", *FIRST_TOKEN_PERCENTILES, *TOKEN_RATE_PERCENTILES]
        html += table(names, [cells], numeric=range(len(cells)))
    return html + extras(figures, _KNOWN_ENDPOINT, f"{name} endpoint")


def read_load_results(directory: Path, problems: list[str]) -> RunResults | None:
    """The histograms of the load run in `directory`, or None when it has none."""
    path = directory / "results.json"
    try:
        if not path.exists():
            return None
        if path.stat().st_size > MAX_ARTIFACT_BYTES:
            problems.append(f"{path}: over {MAX_ARTIFACT_BYTES // 1048576} MiB, not a load run's results")
            return None
        return RunResults.read(path)
    except (ResultsError, OSError, KeyError, TypeError, ValueError) as exc:
        problems.append(f"{path}: no percentile curves: {redact.excerpt(str(exc))}")
        return None


def load_section(summary: dict[str, Any], results: RunResults | None) -> str:
    """The load gate's verdict, thresholds and per-endpoint curves, as HTML."""
    verdict = str(summary.get("verdict", "unknown"))
    parts = [
        '<section id="load"><h2>Load gate</h2>',
        f"<p>{badge(verdict)} {text(summary.get('reason', ''))}</p>",
        f'<p class="muted">{text(_run_line(summary))}</p>',
        _threshold_table(summary),
    ]
    parts += [f"<p>warning: {text(warning)}</p>" for warning in summary.get("warnings", [])]
    endpoints = summary.get("endpoints") or {}
    records = _records(results)
    thresholds = [row for row in summary.get("thresholds", []) if isinstance(row, dict)]
    # The total first: it is what the gate's own thresholds judge, by default.
    for name in [n for n in endpoints if n == TOTAL] + [n for n in endpoints if n != TOTAL]:
        figures = endpoints[name]
        if not isinstance(figures, dict):
            continue
        parts.append(f"<h3>{text(name)}</h3>")
        parts.append(_endpoint_table(name, figures))
        parts += _curves(name, records.get(name), thresholds)
    errors = [error for error in summary.get("errors", []) if isinstance(error, dict)]
    if errors:
        rows = [
            [text(e.get("occurrences", "")), text(e.get("endpoint", "")), text(e.get("message", ""))]
            for e in errors
        ]
        parts.append("<h3>Most frequent failures</h3>" + table(["times", "endpoint", "message"], rows, [0]))
    parts.append(extras(summary, _KNOWN_SUMMARY, "load summary"))
    reports = summary.get("reports")
    if isinstance(reports, dict):
        parts.append(
            details("Locust's own files", f"<pre>{text(chr(10).join(map(str, reports.values())))}</pre>")
        )
    parts.append("</section>")
    return "\n".join(parts)


def _run_line(summary: dict[str, Any]) -> str:
    return (
        f"environment {summary.get('environment', '-')}, started {summary.get('started') or '-'}, "
        f"{summary.get('users', '-')} users, {summary.get('duration_s', '-')} s measured after "
        f"{summary.get('warmup_s', '-')} s warm-up, {summary.get('workers', '-')} workers, "
        f"config {summary.get('config', '-')}"
    )


def write_load_page(directory: Path, summary: dict[str, Any], results: RunResults | None) -> Path:
    """``index.html`` of a load run in `directory`; raises OSError."""
    path = directory / PAGE_NAME
    verdict = str(summary.get("verdict", "unknown")).upper()
    html = page(f"Load gate: {verdict} ({summary.get('environment', '')})", [load_section(summary, results)])
    path.write_text(html, encoding="utf-8")
    return path
