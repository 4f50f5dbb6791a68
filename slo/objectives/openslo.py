"""OpenSLO v1 `SLO` and `SLI` documents as SLO definitions (ratio SLIs on Prometheus).

Read with ``slos = load_openslo(["slos/checkout.yaml"])``.

Supported: ``apiVersion: openslo/v1``; `SLO` with an inline `indicator` or an `indicatorRef`
to an `SLI` document in the same files; `ratioMetric` with `counter: true` and `good` or
`bad` plus `total`, each a Prometheus `metricSource` whose `query` is either a metric selector
(``http_requests_total{code=~"5.."}``, wrapped in ``sum(rate(...[{{window}}]))``) or PromQL
with a ``{{window}}`` (or Sloth's ``{{.window}}``) placeholder; `budgetingMethod:
Occurrences`; one objective (`target` or `targetPercent`); a rolling `timeWindow` in whole
days or a calendar month. `Service` documents are accepted and ignored. Anything else
(threshold metrics, timeslices, alert policies) is one clear error, never silently dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from slo.config import ConfigError
from slo.config.objectives import CALENDAR_MONTH, SLO

__all__ = ["load_openslo"]

_SELECTOR = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})?", re.DOTALL)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class _Metadata(_Model):
    name: str
    display_name: str = Field("", alias="displayName")
    labels: dict[str, Any] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class _MetricSourceSpec(_Model):
    query: str


class _MetricSource(_Model):
    type: Literal["Prometheus", "prometheus"]
    metric_source_ref: str = Field("", alias="metricSourceRef")
    spec: _MetricSourceSpec


class _Metric(_Model):
    metric_source: _MetricSource = Field(alias="metricSource")


class _RatioMetric(_Model):
    counter: bool
    good: _Metric | None = None
    bad: _Metric | None = None
    total: _Metric


class _SLISpec(_Model):
    description: str = ""
    ratio_metric: _RatioMetric = Field(alias="ratioMetric")


class _Indicator(_Model):
    metadata: _Metadata
    spec: _SLISpec


class _Calendar(_Model):
    start_time: str = Field(alias="startTime")
    time_zone: str = Field(alias="timeZone")


class _TimeWindow(_Model):
    duration: str
    is_rolling: bool = Field(alias="isRolling")
    calendar: _Calendar | None = None


class _Objective(_Model):
    display_name: str = Field("", alias="displayName")
    target: float | None = None
    target_percent: float | None = Field(None, alias="targetPercent")


class _SLOSpec(_Model):
    description: str = ""
    service: str = ""
    indicator: _Indicator | None = None
    indicator_ref: str = Field("", alias="indicatorRef")
    time_window: list[_TimeWindow] = Field(alias="timeWindow", min_length=1, max_length=1)
    budgeting_method: Literal["Occurrences"] = Field(alias="budgetingMethod")
    objectives: list[_Objective] = Field(min_length=1, max_length=1)


def _query(metric: _Metric) -> str:
    query = metric.metric_source.spec.query.strip().replace("{{.window}}", "{{window}}")
    query = query.replace("{{ .window }}", "{{window}}")
    if "{{window}}" in query:
        return query
    if _SELECTOR.fullmatch(query):
        return f"sum(rate({query}[{{{{window}}}}]))"
    raise ValueError(f"query {query!r} must be a metric selector or contain a {{{{window}}}} placeholder")


def _window(window: _TimeWindow) -> str:
    if window.is_rolling:
        if not re.fullmatch(r"\d+d", window.duration):
            raise ValueError(f"rolling timeWindow {window.duration!r} must be whole days (e.g. 28d)")
        return window.duration
    if window.duration != "1M" or window.calendar is None:
        raise ValueError("a calendar timeWindow must be duration 1M with a calendar")
    if window.calendar.time_zone not in ("UTC", "Etc/UTC"):
        raise ValueError("calendar timeWindow: only timeZone UTC is supported")
    return CALENDAR_MONTH


def _objective(objective: _Objective) -> float:
    if (objective.target is None) == (objective.target_percent is None):
        raise ValueError("objectives[0]: give exactly one of target or targetPercent")
    if objective.target is not None:
        return objective.target * 100
    assert objective.target_percent is not None
    return objective.target_percent


def _to_slo(metadata: _Metadata, spec: _SLOSpec, indicators: dict[str, _Indicator]) -> SLO:
    if spec.indicator is not None and spec.indicator_ref:
        raise ValueError("give indicator or indicatorRef, not both")
    indicator = spec.indicator or indicators.get(spec.indicator_ref)
    if indicator is None:
        wanted = spec.indicator_ref or "(none given)"
        raise ValueError(f"indicatorRef {wanted!r} names no SLI document in these files")
    ratio = indicator.spec.ratio_metric
    if not ratio.counter:
        raise ValueError("ratioMetric.counter must be true (gauges are not supported)")
    if (ratio.good is None) == (ratio.bad is None):
        raise ValueError("ratioMetric: give exactly one of good or bad")
    sli: dict[str, str] = {"kind": "events", "total_query": _query(ratio.total)}
    if ratio.bad is not None:
        sli["error_query"] = _query(ratio.bad)
    else:
        assert ratio.good is not None
        sli["good_query"] = _query(ratio.good)
    runbook = metadata.annotations.get("runbook_url") or metadata.annotations.get("runbook", "")
    return SLO.model_validate(
        {
            "name": metadata.name,
            "objective": _objective(spec.objectives[0]),
            "window": _window(spec.time_window[0]),
            "description": spec.description or metadata.display_name,
            "runbook": runbook,
            "sli": sli,
        }
    )


def _location(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    message = "unknown or unsupported key" if first["type"] == "extra_forbidden" else first["msg"]
    return f"{where}: {message.removeprefix('Value error, ')}"


def _documents(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read OpenSLO file: {exc.strerror}") from None
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {str(exc).splitlines()[0]}") from None
    for index, document in enumerate(documents):
        if document is None:
            continue
        if not isinstance(document, dict):
            raise ConfigError(f"{path}: document {index + 1}: not a mapping")
        yield index, document


def load_openslo(paths: Sequence[str | Path]) -> list[SLO]:
    """SLOs from OpenSLO v1 files; `SLI` documents may be in any of the files."""
    indicators: dict[str, _Indicator] = {}
    pending: list[tuple[str, _Metadata, _SLOSpec]] = []
    for path in map(Path, paths):
        for index, document in _documents(path):
            where = f"{path}: document {index + 1}"
            if document.get("apiVersion") != "openslo/v1":
                raise ConfigError(f"{where}: apiVersion must be openslo/v1")
            kind = document.get("kind")
            try:
                metadata = _Metadata.model_validate(document.get("metadata"))
                where = f"{path}: {kind} {metadata.name}"
                if kind == "SLI":
                    indicator = _Indicator.model_validate(
                        {"metadata": document["metadata"], "spec": document.get("spec")}
                    )
                    indicators[metadata.name] = indicator
                elif kind == "SLO":
                    pending.append((where, metadata, _SLOSpec.model_validate(document.get("spec"))))
                elif kind != "Service":
                    raise ConfigError(f"{where}: kind {kind!r} is not supported (SLO, SLI, Service)")
            except ValidationError as exc:
                raise ConfigError(f"{where}: {_location(exc)}") from None
    slos = []
    for where, metadata, spec in pending:
        try:
            slos.append(_to_slo(metadata, spec, indicators))
        except ValidationError as exc:
            raise ConfigError(f"{where}: {_location(exc)}") from None
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    return slos
