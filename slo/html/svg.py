"""Charts as inline SVG, drawn in Python: no script, no font or library to fetch, nothing that
waits for a timer, so a page prints, archives and opens offline exactly as it was written.

Every chart is one ``<svg class="chart">`` with a ``<title>`` (what a screen reader and a
browser tooltip say) and its data already placed; each text in it goes through :func:`text`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from slo.html.markup import text

__all__ = [
    "PHASES",
    "Bar",
    "Mark",
    "bars",
    "line_chart",
    "nines",
    "percentile_curve",
    "waterfall",
]

#: The request phases the probe client times, in the order a request goes through them.
PHASES = ("dns", "connect", "tls", "ttfb", "transfer")
_PHASE_COLOURS = dict(zip(PHASES, ("#7e57c2", "#26a69a", "#ef6c00", "#1e88e5", "#8d6e63"), strict=True))
_FONT = 'font-family="system-ui,sans-serif" font-size="11"'


def _number(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _svg(width: int, height: int, title: str, body: list[str]) -> str:
    return (
        f'<svg class="chart" role="img" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" {_FONT}><title>{text(title)}</title>'
        + "".join(body)
        + "</svg>"
    )


def waterfall(phases: dict[str, float], title: str, scale: float | None = None) -> str:
    """One row per phase, each starting where the previous ended (seconds in, milliseconds
    shown); `scale` is the time the full width stands for, so several requests compare."""
    width, label, row = 300, 56, 14
    steps = [(name, max(0.0, float(phases.get(name, 0.0)))) for name in PHASES if name in phases]
    total = sum(seconds for _, seconds in steps)
    span = max(scale or 0.0, total) or 1.0
    usable = width - label - 60
    body, start = [], 0.0
    for index, (name, seconds) in enumerate(steps):
        y = index * row + 2
        x = label + usable * start / span
        # At least a pixel, so a phase that took no time is still seen to have happened.
        bar = max(1.0, usable * seconds / span)
        body.append(f'<text x="0" y="{y + 10}">{text(name)}</text>')
        body.append(
            f'<rect x="{x:.1f}" y="{y}" width="{bar:.1f}" height="{row - 4}" '
            f'fill="{_PHASE_COLOURS[name]}"><title>{text(f"{name} {seconds * 1000:.1f} ms")}</title></rect>'
        )
        # In a column of their own: a long last phase must not push its number off the chart.
        body.append(f'<text x="{label + usable + 6}" y="{y + 10}">{_number(seconds * 1000)} ms</text>')
        start += seconds
    return _svg(width, max(1, len(steps)) * row + 4, title, body)


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    #: Text after the bar (the value with its unit).
    shown: str


def bars(items: Sequence[Bar], title: str, limit: float | None = None, limit_label: str = "") -> str:
    """Horizontal bars from zero, one per item, with an optional dashed limit line."""
    width, label, row = 560, 180, 20
    top = max([item.value for item in items] + [limit or 0.0]) or 1.0
    usable = width - label - 90
    body = []
    for index, item in enumerate(items):
        y = index * row + 4
        length = max(1.0, usable * max(0.0, item.value) / top)
        body.append(f'<text x="0" y="{y + 12}">{text(item.label[:32])}</text>')
        body.append(f'<rect x="{label}" y="{y}" width="{length:.1f}" height="{row - 6}" fill="#1e88e5"/>')
        body.append(f'<text x="{label + length + 4:.1f}" y="{y + 12}">{text(item.shown)}</text>')
    height = len(items) * row + 8
    if limit is not None:
        x = label + usable * limit / top
        body.append(
            f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height}" stroke="#c62828" stroke-dasharray="4 3"/>'
        )
        body.append(f'<text x="{x + 3:.1f}" y="{height + 12}" fill="#c62828">{text(limit_label)}</text>')
        height += 16
    return _svg(width, height, title, body)


def nines(quantile: float) -> float:
    """Where a quantile sits on a percentile axis that gives each nine the same room
    (90 % at 1, 99 % at 2, 99.9 % at 3): the tail, where thresholds live, is legible."""
    return -math.log10(max(1e-9, 1.0 - quantile))


@dataclass(frozen=True)
class Mark:
    """A threshold on a percentile curve: the limit, the quantile it gates, what was
    observed there and the confidence bounds around it (None: too few samples)."""

    label: str
    quantile: float
    limit: float
    observed: float | None
    lower: float | None
    upper: float | None
    verdict: str


#: How far above the measured values a limit may be and still set the chart's scale.
_LIMIT_IN_VIEW = 4.0
_VERDICT_COLOURS = {"pass": "#2e7d32", "fail": "#c62828", "inconclusive": "#ef6c00"}


def percentile_curve(
    points: Sequence[tuple[float, float]], title: str, unit: str, marks: Sequence[Mark] = ()
) -> str:
    """Value (y) by quantile (x, on the :func:`nines` axis) from `points` of (quantile,
    value); each mark draws its limit as a dashed line and its bound as an interval."""
    width, height, left, bottom, top_pad, right_pad = 620, 270, 64, 34, 22, 16
    plot_w, plot_h = width - left - right_pad, height - bottom - top_pad
    x_max = max(2.0, math.ceil(max((nines(q) for q, _ in points), default=2.0)))
    values = [value for _, value in points]
    values += [v for mark in marks for v in (mark.upper, mark.observed) if v is not None]
    measured = max(values, default=0.0)
    # A limit far above everything measured would flatten the curve to its axis: the chart
    # then keeps the data's scale and names the limit at its top edge instead.
    values += [mark.limit for mark in marks if mark.limit <= _LIMIT_IN_VIEW * measured or not measured]
    y_max = (max(values, default=1.0) or 1.0) * 1.08

    def x(quantile: float) -> float:
        return left + plot_w * min(nines(quantile), x_max) / x_max

    def y(value: float) -> float:
        return top_pad + plot_h * (1 - max(0.0, value) / y_max)

    axis_y = top_pad + plot_h
    body = [
        f'<line x1="{left}" y1="{axis_y}" x2="{left + plot_w}" y2="{axis_y}" stroke="#555"/>',
        f'<line x1="{left}" y1="{top_pad}" x2="{left}" y2="{axis_y}" stroke="#555"/>',
    ]
    for nine in range(int(x_max) + 1):
        quantile = 1 - 10.0**-nine
        label = f"{quantile * 100:.{max(0, nine - 2)}f}%" if nine else "0%"
        body.append(f'<text x="{x(quantile) - 10:.1f}" y="{height - 18}">{text(label)}</text>')
    for step in range(5):
        value = y_max * step / 4
        body.append(f'<text x="2" y="{y(value) + 4:.1f}">{text(_number(value))}</text>')
        body.append(
            f'<line x1="{left}" y1="{y(value):.1f}" x2="{left + plot_w}" y2="{y(value):.1f}" stroke="#eee"/>'
        )
    body.append(f'<text x="{left + plot_w / 2 - 30:.1f}" y="{height - 3}">percentile</text>')
    body.append(f'<text x="2" y="10">{text(unit)}</text>')
    if points:
        path = " ".join(f"{'M' if i == 0 else 'L'}{x(q):.1f},{y(v):.1f}" for i, (q, v) in enumerate(points))
        body.append(f'<path class="curve" d="{path}" fill="none" stroke="#1e88e5" stroke-width="2"/>')
    for mark in marks:
        colour = _VERDICT_COLOURS.get(mark.verdict, "#555")
        above = mark.limit > y_max
        limit_y = top_pad if above else y(mark.limit)
        said = f"{mark.label} limit {_number(mark.limit)} {unit}" + (" (above the chart)" if above else "")
        body.append(
            f'<line x1="{left}" y1="{limit_y:.1f}" x2="{left + plot_w}" y2="{limit_y:.1f}" '
            f'stroke="{colour}" stroke-dasharray="{"1 4" if above else "5 3"}"/>'
        )
        body.append(f'<text x="{left + 4}" y="{limit_y - 3:.1f}" fill="{colour}">{text(said)}</text>')
        at = x(mark.quantile)
        if mark.lower is not None or mark.upper is not None:
            low = y(mark.lower if mark.lower is not None else 0.0)
            high = y(mark.upper if mark.upper is not None else y_max)
            said = f"{mark.label} confidence bounds {_bounds(mark.lower, mark.upper)} {unit}"
            body.append(
                f'<rect class="bound" x="{at - 4:.1f}" y="{high:.1f}" width="8" '
                f'height="{max(1.0, low - high):.1f}" fill="{colour}" fill-opacity="0.3" '
                f'stroke="{colour}"><title>{text(said)}</title></rect>'
            )
        if mark.observed is not None:
            body.append(
                f'<circle cx="{at:.1f}" cy="{y(mark.observed):.1f}" r="4" fill="{colour}"><title>'
                f"{text(f'{mark.label} {_number(mark.observed)} {unit}: {mark.verdict}')}</title></circle>"
            )
    return _svg(width, height, title, body)


def _bounds(lower: float | None, upper: float | None) -> str:
    return f"{'-' if lower is None else _number(lower)} .. {'-' if upper is None else _number(upper)}"


def line_chart(points: Sequence[tuple[float, float]], title: str) -> str:
    """A share (y, 1 = 100 %) over time (x: seconds before now, oldest left), with the zero
    line drawn: below it the budget is overspent."""
    width, height, left, bottom, pad = 560, 180, 52, 26, 10
    plot_w, plot_h = width - left - pad, height - bottom - pad
    oldest = max((ago for ago, _ in points), default=1.0) or 1.0
    low = min([0.0, *(value for _, value in points)])
    high = max([1.0, *(value for _, value in points)])

    def x(ago: float) -> float:
        return left + plot_w * (1 - ago / oldest)

    def y(value: float) -> float:
        return pad + plot_h * (high - value) / (high - low)

    body = [f'<line x1="{left}" y1="{y(0):.1f}" x2="{left + plot_w}" y2="{y(0):.1f}" stroke="#555"/>']
    for value in (low, 0.0, high) if low < 0 else (0.0, 0.5, 1.0):
        body.append(f'<text x="2" y="{y(value) + 4:.1f}">{text(f"{value * 100:.0f}%")}</text>')
    body.append(f'<text x="{left}" y="{height - 6}">{text(f"{oldest / 86400:g} days ago")}</text>')
    body.append(f'<text x="{left + plot_w - 24}" y="{height - 6}">now</text>')
    path = " ".join(f"{'M' if i == 0 else 'L'}{x(a):.1f},{y(v):.1f}" for i, (a, v) in enumerate(points))
    body.append(f'<path class="curve" d="{path}" fill="none" stroke="#1e88e5" stroke-width="2"/>')
    return _svg(width, height, title, body)
