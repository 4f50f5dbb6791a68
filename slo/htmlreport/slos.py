"""The SLO section of `slo report --prometheus`: per SLO its error budget left, the burn rate
of each alert window, and the budget left over the window, read from Prometheus with the
queries `slo budget` runs (`slo.objectives.budget`), evaluated at a few instants back.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from slo.config import Config
from slo.config.maintenance import Window
from slo.config.objectives import SLO
from slo.html.markup import badge, table, text
from slo.html.svg import Bar, bars, line_chart

# The budget command's window rule and wording, so the page and `slo budget` agree.
from slo.objectives.budget import (
    BudgetRow,
    _budget_left,
    _range,
    budget_rows,
    error_ratio,
    maintenance_windows,
)
from slo.objectives.maintenance import window_rows
from slo.objectives.promql import PrometheusClient, PrometheusError, Sample
from slo.objectives.rules.sli import sli_query
from slo.objectives.rules.windows import alert_windows

__all__ = ["slo_section"]

#: Instants the budget is evaluated at across the window: a curve, at a bounded query cost.
HISTORY_POINTS = 12


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def _history(prometheus: PrometheusClient, slo: SLO, row: BudgetRow, now: float) -> list[tuple[float, float]]:
    """(seconds before now, budget left) of `row`'s SLO and environment, oldest first: two
    queries per instant (the window's events and bad events), none for an SLO without data."""
    if not row.events:
        return []
    query = sli_query(slo)
    wanted = {"environment": row.environment} if "environment" in query.by else {}
    points = []
    for step in range(HISTORY_POINTS, -1, -1):
        ago = slo.window_seconds * step / HISTORY_POINTS
        window = _range(slo, now - ago)
        total = _sum(prometheus.query(query.total(window), now - ago), wanted)
        bad = _sum(prometheus.query(query.bad(window), now - ago), wanted)
        ratio = error_ratio(bad, total)
        if ratio is not None:
            points.append((ago, 1 - ratio / slo.error_budget))
    return points


def _sum(samples: list[Sample], wanted: dict[str, str]) -> float:
    return sum(s.value for s in samples if all(s.labels.get(k, "") == v for k, v in wanted.items()))


def _rate(row: BudgetRow, window: str) -> float | None:
    return row.burn_rates.get(window)


def _alerts(slo: SLO, row: BudgetRow) -> str:
    """Each alert's window pair and factor beside the burn of both windows now: an alert
    needs both over its factor (and its minimum of bad events, which is not judged here)."""
    rows = []
    for alert in alert_windows(slo):
        long, short = _rate(row, alert.long_name), _rate(row, alert.short_name)
        over = long is not None and short is not None and long > alert.factor and short > alert.factor
        rows.append(
            [
                text(alert.severity),
                text(f"{alert.long_name} / {alert.short_name}"),
                text(f"{alert.factor:g}x"),
                text("-" if long is None else f"{long:.2f}x"),
                text("-" if short is None else f"{short:.2f}x"),
                badge("both over", "fail") if over else badge("under", "pass"),
            ]
        )
    if not rows:
        return ""
    header = ["alert", "windows (long / short)", "fires over", "long burn", "short burn", "now"]
    return table(header, rows, numeric=[2, 3, 4])


def _slo_html(slo: SLO, row: BudgetRow, history: list[tuple[float, float]]) -> str:
    parts = [f'<h3>{text(row.slo)} <span class="muted">{text(row.environment)}</span></h3>']
    cells = [
        text(f"{row.objective * 100:g} %"),
        text(row.window),
        text(_percent(row.sli)),
        text(_budget_left(row)),
        text(f"{row.events:.0f}"),
        text(f"{row.bad_events:.0f}"),
        text(row.note or ""),
    ]
    parts.append(
        table(["objective", "window", "SLI", "budget left", "events", "bad", "note"], [cells], [2, 3, 4, 5])
    )
    parts.append(_alerts(slo, row))
    burns = [Bar(name, rate, f"{rate:.2f}x") for name, rate in row.burn_rates.items() if rate is not None]
    if burns:
        title = f"{row.slo}: burn rate by alert window"
        parts.append(
            bars(burns, title, limit=1.0, limit_label="1x spends the budget exactly over the window")
        )
    if len(history) > 1:
        parts.append(line_chart(history, f"{row.slo}: error budget left over the {row.window} window"))
    return "\n".join(parts)


def _windows_html(windows: Sequence[Window]) -> str:
    """The maintenance windows in the SLO windows: their runs are no SLI events."""
    if not windows:
        return ""
    header, *rows = window_rows(windows)
    intro = "<h3>Maintenance windows</h3><p>Runs inside these windows are no SLI events.</p>"
    return intro + table(header, [[text(cell) for cell in row] for row in rows])


def slo_section(url: str, slos: Sequence[SLO], environment: str, config: Config | None = None) -> str:
    """Every SLO's budget and burn, or the one line that says why Prometheus could not tell;
    with `config`, the maintenance windows in the SLO windows too."""
    parts = ['<section id="slos"><h2>SLOs</h2>']
    now = time.time()
    try:
        with PrometheusClient(url) as prometheus:
            for slo in slos:
                for row in budget_rows(prometheus, [slo], now):
                    if row.environment not in ("", environment):
                        continue
                    parts.append(_slo_html(slo, row, _history(prometheus, slo, row, now)))
            if config is not None:
                parts.append(_windows_html(maintenance_windows(prometheus, config, slos, [], now)[1]))
    except PrometheusError as exc:
        parts.append(f'<p class="banner unknown">Prometheus: {text(exc)}</p>')
    if len(parts) == 1:
        parts.append("<p>No SLO is defined.</p>")
    parts.append("</section>")
    return "\n".join(parts)
