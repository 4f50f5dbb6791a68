"""Base model and field types shared by every section of `monitoring.yaml`."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer

from slo.units import parse_duration, parse_percent

__all__ = ["Duration", "Fraction", "StrictModel"]


class StrictModel(BaseModel):
    """Unknown keys are errors (a typo must never silently fall back to a default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


#: Seconds, written as ``2s``, ``500ms``, ``30d`` or a bare number of seconds.
Duration = Annotated[float, BeforeValidator(parse_duration), PlainSerializer(float)]

#: A fraction 0..1, written as a percentage: ``99.9`` or ``"5%"``.
Fraction = Annotated[float, BeforeValidator(parse_percent), PlainSerializer(float)]
