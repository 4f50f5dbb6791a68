"""Every response time (and streamed-answer rate) of a load run, exact to three significant
digits, in bounded memory.

Locust keeps response times rounded to 100 ms steps between 1 s and 10 s, so its P95 of
"2000" can be anything from 1950 to 2050 ms: useless against a 2 s threshold. This keeps an
HdrHistogram in microseconds beside it: below 2.048 ms every microsecond has its own bucket,
above that a bucket is at most 1/1024 of its value wide (under 0.1 %), up to one hour. It
takes about 190 kB whatever the number of requests, and merges exactly, which is what lets
Locust workers ship theirs to the master. :class:`RateHistogram` does the same for output
tokens per second (in thousandths of a token per second, up to a million tokens per second).

>>> histogram = LatencyHistogram()
>>> for milliseconds in (1950.2, 12.5, 0.4):
...     histogram.record(milliseconds)
>>> table = histogram.order_statistics()
>>> table.count, table.at(3)
(3, ValueRange(low=1949.696, high=1950.719))
"""

from __future__ import annotations

import bisect
import zlib
from dataclasses import dataclass
from typing import Self

from hdrh.codec import HdrCookieException, HdrHistogramSettingsException, HdrLengthException
from hdrh.histogram import HdrHistogram

__all__ = [
    "MAX_LATENCY_MS",
    "MAX_RATE",
    "ExactHistogram",
    "LatencyHistogram",
    "OrderStatistics",
    "RateHistogram",
    "ValueRange",
]

_MICROSECONDS_PER_MS = 1000
_SIGNIFICANT_DIGITS = 3
#: Slower responses are recorded as this (an hour): no load test waits that long on purpose.
MAX_LATENCY_MS = 3_600_000.0
_MAX_MICROSECONDS = int(MAX_LATENCY_MS * _MICROSECONDS_PER_MS)
_MILLI_PER_UNIT = 1000
#: Faster rates (tokens per second) are recorded as this: no model decodes that fast.
MAX_RATE = 1_000_000.0


@dataclass(frozen=True)
class ValueRange:
    """The values one histogram bucket stands for (in the histogram's unit): the exact sample
    is within them."""

    low: float
    high: float


class OrderStatistics:
    """The sorted samples of a histogram, by 1-based rank, without expanding them."""

    def __init__(self, histogram: HdrHistogram, per_unit: int) -> None:
        self._cumulative: list[int] = []
        self._ranges: list[ValueRange] = []
        total = 0
        for index in range(histogram.counts_len):
            count = histogram.get_count_at_index(index)
            if count:
                total += count
                value = histogram.get_value_from_index(index)
                self._cumulative.append(total)
                self._ranges.append(
                    ValueRange(
                        histogram.get_lowest_equivalent_value(value) / per_unit,
                        histogram.get_highest_equivalent_value(value) / per_unit,
                    )
                )
        self.count = total

    def at(self, rank: int) -> ValueRange:
        """The bucket holding the ``rank``-th smallest sample (1-based)."""
        if not 1 <= rank <= self.count:
            raise IndexError(f"rank {rank} outside 1..{self.count}")
        return self._ranges[bisect.bisect_left(self._cumulative, rank)]


class ExactHistogram:
    """Values in a unit, kept as integers of ``per_unit`` steps of it, from 0 to ``maximum``."""

    per_unit: int
    maximum: int

    def __init__(self, hdr: HdrHistogram | None = None) -> None:
        self._hdr = hdr or HdrHistogram(1, self.maximum, _SIGNIFICANT_DIGITS)

    @property
    def count(self) -> int:
        total: int = self._hdr.get_total_count()
        return total

    def record(self, value: float) -> None:
        """Add one value; values out of range are kept at the nearest end."""
        steps = round(value * self.per_unit)
        self._hdr.record_value(min(max(steps, 0), self.maximum))

    def merge(self, other: ExactHistogram) -> None:
        """Add every sample of ``other`` (from another worker, or another endpoint)."""
        self._hdr.add(other._hdr)

    def encode(self) -> str:
        """A compact text form (compressed HdrHistogram V2 "histoblob") for messages and files."""
        blob: bytes = self._hdr.encode()
        return blob.decode("ascii")

    @classmethod
    def decode(cls, text: str) -> Self:
        """The histogram :meth:`encode` wrote; ValueError for anything else (a baseline file
        is read back long after it was written, and may have been edited or cut)."""
        try:
            return cls(HdrHistogram.decode(text.encode("ascii")))
        except (
            ValueError,
            zlib.error,
            HdrCookieException,
            HdrLengthException,
            HdrHistogramSettingsException,
        ) as exc:
            raise ValueError(f"not an HdrHistogram: {exc}") from None

    def order_statistics(self) -> OrderStatistics:
        """A rank index over the current samples, for percentiles and their bounds."""
        return OrderStatistics(self._hdr, self.per_unit)


class LatencyHistogram(ExactHistogram):
    """Response times in milliseconds (Locust's float milliseconds), recorded in microseconds
    (see the module doc)."""

    per_unit = _MICROSECONDS_PER_MS
    maximum = _MAX_MICROSECONDS


class RateHistogram(ExactHistogram):
    """Output tokens per second of streamed answers, in steps of a thousandth."""

    per_unit = _MILLI_PER_UNIT
    maximum = int(MAX_RATE * _MILLI_PER_UNIT)
