"""The run's verdict banner, its probes grouped by target (failures first, each with a
waterfall of its last request's phases), the LLM probes' first token and tokens/s per model,
and the run's metadata: the sections `slo report` builds from ``gate.json`` and ``probes.json``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from slo.html.markup import badge, extras, table, text
from slo.html.svg import PHASES, Bar, bars, waterfall
from slo.report import genai
from slo.units import format_utc

__all__ = ["llm_section", "metadata_section", "probes_section", "verdict_banner"]

#: Probes drawn with a waterfall, in page order (the worst first); the rest list their phases
#: as text, so a run of a thousand checks stays a page of a few hundred KB.
MAX_WATERFALLS = 60
#: How bad an outcome is, worst first: the order of the page.
_SEVERITY = {"error": 0, "failed": 1, "degraded": 2, "passed": 3, "skipped": 4}
_KNOWN_PROBE = [
    "probe",
    "outcome",
    "target",
    "slo",
    "kind",
    "duration",
    "latencies",
    "phases",
    "reason",
    "message",
    "retries",
    "note",
    "values",
]
_KNOWN_RUN = [
    "schema",
    "finished",
    "environment",
    "instance",
    "location",
    "config",
    "config_sha256",
    "git_revision",
    "versions",
    "duration_s",
    "counts",
    "maintenance",
    "probes",
]


def _severity(probe: dict[str, Any]) -> int:
    return _SEVERITY.get(str(probe.get("outcome")), 0)


def verdict_banner(gate: dict[str, Any] | None, probes: dict[str, Any] | None) -> str:
    """The gate's verdict and, when it failed, each condition that failed with its evidence."""
    if gate is None:
        counts = (probes or {}).get("counts")
        counts = counts if isinstance(counts, dict) else {}
        said = ", ".join(f"{count} {outcome}" for outcome, count in counts.items() if count)
        return (
            '<div class="banner unknown" id="verdict">NO GATE VERDICT: run <code>slo gate</code> '
            f"to judge this run{text(f' (probes: {said})' if said else '')}</div>"
        )
    verdict = str(gate.get("verdict", "unknown"))
    conditions = [c for c in gate.get("conditions", []) if isinstance(c, dict)]
    failed = [c for c in conditions if not c.get("passed")]
    reasons = "".join(
        f"<li>{text(c.get('source', ''))} {text(c.get('name', ''))}: {text(c.get('evidence', ''))}</li>"
        for c in failed
    )
    passing = len(conditions) - len(failed)
    css = verdict if verdict in ("pass", "fail") else "unknown"
    said = f"{passing}/{len(conditions)} gate conditions pass, judged {gate.get('generated_at', '-')}"
    listed = f"<ul>{reasons}</ul>" if reasons else ""
    return (
        f'<div class="banner {css}" id="verdict"><strong>{text(verdict.upper())}</strong> '
        f"{text(said)}{listed}</div>"
    )


def _seconds(value: object) -> str:
    return f"{float(value) * 1000:.0f} ms" if isinstance(value, int | float) else "-"


def _probe_row(probe: dict[str, Any], scale: float, draw: bool) -> list[str]:
    phases = probe.get("phases")
    chart = ""
    if isinstance(phases, dict) and any(name in phases for name in PHASES):
        numbers = {k: float(v) for k, v in phases.items() if isinstance(v, int | float)}
        if draw:
            chart = waterfall(numbers, f"{probe.get('probe', '')}: request phases", scale)
        else:
            listed = ", ".join(f"{name} {numbers[name] * 1000:.1f} ms" for name in PHASES if name in numbers)
            chart = f'<span class="muted">{text(listed)}</span>'
    message = text(probe.get("message", ""))
    if probe.get("note"):
        message += f'<div class="muted">{text(probe["note"])}</div>'
    if probe.get("retries"):
        retried = f"{probe['retries']} failed attempt(s) rerun before this outcome"
        message += f'<div class="muted">{text(retried)}</div>'
    return [
        badge(str(probe.get("outcome", "unknown"))),
        f"<code>{text(probe.get('probe', ''))}</code>",
        text(probe.get("reason") or ""),
        message + extras(probe, _KNOWN_PROBE, "probe"),
        text(_seconds(probe.get("duration"))),
        chart,
    ]


def _phase_total(probe: dict[str, Any]) -> float:
    phases = probe.get("phases")
    if not isinstance(phases, dict):
        return 0.0
    return sum(float(phases[name]) for name in PHASES if isinstance(phases.get(name), int | float))


def probes_section(run: dict[str, Any]) -> str:
    """Probes by target: the targets with failures first, inside each the failures first."""
    probes = [p for p in run.get("probes", []) if isinstance(p, dict)]
    if not probes:
        return '<section id="probes"><h2>Probes</h2><p>The run recorded no probes.</p></section>'
    by_target: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for probe in probes:
        by_target[str(probe.get("target") or "(no target)")].append(probe)
    order = sorted(by_target, key=lambda t: (min(map(_severity, by_target[t])), t))
    windows = _windows(run)
    parts = ['<section id="probes"><h2>Probes</h2>', _windows_table(windows)]
    paused = {target for window in windows for target in (window["targets"] or by_target)}
    header = ["outcome", "probe", "reason", "message", "duration", "request phases"]
    drawn = 0
    for target in order:
        group = sorted(by_target[target], key=lambda p: (_severity(p), str(p.get("probe"))))
        scale = max(map(_phase_total, group))
        counts: dict[str, int] = defaultdict(int)
        for probe in group:
            counts[str(probe.get("outcome"))] += 1
        said = ", ".join(f"{count} {outcome}" for outcome, count in counts.items())
        if target in paused:
            said += "; in a maintenance window: no SLI event"
        parts.append(f'<h3>{text(target)} <span class="muted">{text(said)}</span></h3>')
        rows = []
        for probe in group:
            rows.append(_probe_row(probe, scale, drawn < MAX_WATERFALLS))
            drawn += 1
        parts.append(table(header, rows, numeric=[4]))
    parts.append("</section>")
    return "\n".join(parts)


def _windows(run: dict[str, Any]) -> list[dict[str, Any]]:
    """The maintenance windows open at the run's start, as the run file lists them."""
    found = run.get("maintenance")
    return [
        w
        for w in (found if isinstance(found, list) else [])
        if isinstance(w, dict) and isinstance(w.get("targets"), list) and {"name", "start", "end"} <= w.keys()
    ]


def _at(timestamp: object) -> str:
    if not isinstance(timestamp, int | float):
        return "unknown"
    return format_utc(timestamp)


def _windows_table(windows: list[dict[str, Any]]) -> str:
    if not windows:
        return ""
    rows = [
        [text(w["name"]), text(w.get("source", "")), text(", ".join(map(str, w["targets"])) or "all"),
         text(_at(w["start"])), text(_at(w["end"]))]
        for w in windows
    ]  # fmt: skip
    intro = "<p>Maintenance windows open at the run's start: their targets' probes ran and reported, "
    intro += "but their runs were no SLI events.</p>"
    return intro + table(["window", "source", "targets", "from", "until"], rows)


def _llm_values(probes: Iterable[dict[str, Any]], name: str) -> dict[str, list[float]]:
    """Every value of `name` the run's probes recorded, by model (and API, when several)."""
    found: dict[str, list[float]] = defaultdict(list)
    for probe in probes:
        for value in probe.get("values") or []:
            if not isinstance(value, dict) or value.get("name") != name:
                continue
            labels = value.get("labels") or {}
            model = str(labels.get("model", "?"))
            if labels.get("api"):
                model += f" ({labels['api']})"
            if isinstance(value.get("value"), int | float):
                found[model].append(float(value["value"]))
    return found


def llm_section(run: dict[str, Any]) -> str:
    """First-token time and output tokens/s per model, from the streaming probes' values."""
    probes = [p for p in run.get("probes", []) if isinstance(p, dict)]
    first = _llm_values(probes, genai.FIRST_TOKEN)
    rates = _llm_values(probes, genai.TOKENS_PER_SECOND)
    if not first and not rates:
        return ""
    models = sorted(set(first) | set(rates))
    rows = [
        [
            text(model),
            text(", ".join(f"{v * 1000:.0f} ms" for v in first.get(model, [])) or "-"),
            text(", ".join(f"{v:.1f}" for v in rates.get(model, [])) or "-"),
        ]
        for model in models
    ]
    parts = [
        '<section id="llm"><h2>LLM probes</h2>',
        table(["model", "time to first token", "output tokens/s"], rows, numeric=[1, 2]),
    ]
    if first:
        items = [Bar(m, max(v), f"{max(v) * 1000:.0f} ms") for m, v in sorted(first.items())]
        parts.append(bars(items, "time to first token by model (slowest of the run)"))
    if rates:
        items = [Bar(m, min(v), f"{min(v):.1f} tok/s") for m, v in sorted(rates.items())]
        parts.append(bars(items, "output tokens per second by model (slowest of the run)"))
    parts.append("</section>")
    return "\n".join(parts)


def metadata_section(run: dict[str, Any] | None, sources: dict[str, str]) -> str:
    """Where, when and with what the run happened, and which files the page was made from."""
    rows: list[list[str]] = []
    if run is not None:
        versions = run.get("versions")
        versions = versions if isinstance(versions, dict) else {}
        for label, value in (
            ("environment", run.get("environment")),
            ("location", run.get("location")),
            ("instance", run.get("instance")),
            ("finished", run.get("finished")),
            ("duration", f"{run['duration_s']} s" if "duration_s" in run else None),
            ("config", run.get("config")),
            ("config hash (sha256)", run.get("config_sha256")),
            ("git revision", run.get("git_revision")),
            *((f"{name} version", version) for name, version in sorted(versions.items())),
        ):
            rows.append([text(label), text(value if value not in (None, "") else "unknown")])
    rows += [[text(f"from {what}"), text(path)] for what, path in sources.items()]
    more = extras(run, _KNOWN_RUN, "run") if run is not None else ""
    return f'<section id="run"><h2>Run</h2>{table(["what", "value"], rows)}{more}</section>'
