"""Durations and percentages as people write them in `monitoring.yaml`.

Both are parsed once, at config load, so the rest of the code only ever sees seconds (float)
and fractions (0..1).
"""

from __future__ import annotations

import re
import time

__all__ = ["format_duration", "format_ms", "format_utc", "parse_duration", "parse_percent"]

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(value: object) -> float:
    """Seconds from ``"500ms"``, ``"2s"``, ``"1h30m"``, ``"30d"``, or a bare number of seconds.

    >>> parse_duration("1m30s")
    90.0
    """
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        seconds = float(value)  # a bare number of seconds, e.g. from `${TIMEOUT:-5}`
    elif isinstance(value, str):
        text = value.strip()
        if not text or _DURATION_PART.sub("", text):
            raise ValueError(f"invalid duration {value!r} (use e.g. 500ms, 2s, 5m, 1h30m, 30d)")
        seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _DURATION_PART.findall(text))
    else:
        raise ValueError(f"invalid duration {value!r} (use e.g. 500ms, 2s, 5m, 1h30m, 30d)")
    if seconds < 0:
        raise ValueError(f"invalid duration {value!r}: must not be negative")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest exact spelling Prometheus understands: 3600 -> ``1h``, 0.25 -> ``250ms``."""
    milliseconds = round(seconds * 1000)
    for unit, size in (
        ("w", 604800000),
        ("d", 86400000),
        ("h", 3600000),
        ("m", 60000),
        ("s", 1000),
    ):
        if milliseconds and milliseconds % size == 0:
            return f"{milliseconds // size}{unit}"
    return f"{milliseconds}ms"


def parse_percent(value: object) -> float:
    """Fraction from a percentage: ``99.9`` or ``"99.9%"`` -> 0.999.

    Numbers are always percent (``5`` means 5 %), so ``0.05`` is read as 0.05 %, never 5 %.
    """
    if isinstance(value, bool):
        raise ValueError(f"invalid percentage {value!r}")
    if isinstance(value, str):
        text = value.strip().removesuffix("%").strip()
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"invalid percentage {value!r} (use e.g. 99.9 or '5%')") from None
    elif isinstance(value, int | float):
        number = float(value)
    else:
        raise ValueError(f"invalid percentage {value!r} (use e.g. 99.9 or '5%')")
    if not 0 <= number <= 100:
        raise ValueError(f"invalid percentage {value!r}: must be between 0 and 100")
    return number / 100


def format_ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def format_utc(timestamp: float) -> str:
    """A Unix time as the summaries and listings show it: ``2026-01-10 02:30:00Z``."""
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(timestamp))
