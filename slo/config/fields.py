"""Base model and field types shared by every section of `monitoring.yaml`."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, PlainSerializer

from slo.units import parse_duration, parse_percent

__all__ = ["Duration", "Fraction", "StrictModel", "Url"]


class StrictModel(BaseModel):
    """Unknown keys are errors (a typo must never silently fall back to a default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


#: Seconds, written as ``2s``, ``500ms``, ``30d`` or a bare number of seconds.
Duration = Annotated[float, BeforeValidator(parse_duration), PlainSerializer(float)]

#: A fraction 0..1, written as a percentage: ``99.9`` or ``"5%"``.
Fraction = Annotated[float, BeforeValidator(parse_percent), PlainSerializer(float)]


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    shown = url.replace(f"{parts.password}@", "***@") if parts.password else url
    try:
        parts.port  # noqa: B018 - urllib checks the port only when it is read
    except ValueError:
        raise ValueError(f"invalid port in URL {shown!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"invalid URL {shown!r} (expected http://host[:port] or https://...)")
    return url.rstrip("/")


#: An http(s) URL with a host, without a trailing slash.
Url = Annotated[str, AfterValidator(_check_url)]
