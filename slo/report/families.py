"""Metric families as plain data, and their two encodings: the push's and the text format's.

The probe push (:mod:`slo.report.exposition`) and the load push (:mod:`slo.loadgate.push`)
both build their metrics as these families.

A push carries tens of thousands of samples (about 25 per probe). The Pushgateway parses
Prometheus' protobuf delimited format about three times faster than the text format, and
building prometheus_client objects per sample cost more than the rest of the push
(`bench/bench_push.py`), so the push sends :func:`encode_protobuf` of these families, written
here with no protobuf library (the wire format needs only varints, doubles and lengths).
:func:`as_registry` gives the same families as a prometheus_client registry, whose text
format is the reference the tests and the benchmark's anchor push.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

__all__ = ["PROTOBUF_CONTENT_TYPE", "Family", "Histogram", "Labels", "as_registry", "encode_protobuf"]

PROTOBUF_CONTENT_TYPE = (
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
)

#: Label pairs of one series, in any order (both encodings sort them by name).
Labels = tuple[tuple[str, str], ...]
Kind = Literal["gauge", "counter", "histogram"]


@dataclass(frozen=True)
class Histogram:
    """One histogram series: cumulative counts per upper bound (without +Inf), count and sum."""

    bounds: Sequence[float]
    counts: Sequence[int]
    count: int
    sum: float


@dataclass
class Family:
    """One metric family; `name` is the exposed name (a counter's ends in ``_total``)."""

    name: str
    help: str
    type: Kind
    #: (labels, value): a float for gauges and counters, a :class:`Histogram` for histograms.
    series: list[tuple[Labels, float | Histogram]] = field(default_factory=list)


def _le(bound: float) -> str:
    """A bucket's `le` as prometheus_client spells it ("2.0", "+Inf")."""
    return "+Inf" if bound == float("inf") else repr(float(bound))


# io.prometheus.client (metrics.proto): MetricType values; field numbers inline, as tag bytes.
_TYPES = {"counter": 0, "gauge": 1, "histogram": 4}
_double = struct.Struct("<d").pack
_INF_BOUND = b"\x11" + _double(float("inf"))


_ONE_BYTE = [bytes((number,)) for number in range(0x80)]


def _varint(number: int) -> bytes:
    if number < 0x80:
        return _ONE_BYTE[number]
    if number < 0x4000:  # most lengths: the common case, without the loop
        return bytes((number & 0x7F | 0x80, number >> 7))
    out = bytearray()
    while number >= 0x80:
        out.append(number & 0x7F | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


def _text(number: int, value: str) -> bytes:
    # Label values are any text (a failure message): never fail the push on a lone surrogate.
    data = value.encode("utf-8", "replace")
    return _ONE_BYTE[number << 3 | 2] + _varint(len(data)) + data


def _nested(tag: bytes, payload: bytes) -> bytes:
    return tag + _varint(len(payload)) + payload


class _Encoder:
    """Caches what repeats across a push (each series' labels are shared by several families,
    most label pairs by many series, bounds by every histogram): a push of 1,000 probes
    encodes in a few tens of milliseconds."""

    def __init__(self) -> None:
        self.pairs: dict[tuple[str, str], bytes] = {}
        self.labels: dict[Labels, bytes] = {}
        self.bounds: dict[float, bytes] = {}

    def label_pairs(self, labels: Labels) -> bytes:
        encoded = self.labels.get(labels)
        if encoded is None:
            # Metric.label (1): LabelPair {name (1), value (2)}, sorted by name as Prometheus does.
            parts = []
            for pair in sorted(labels):
                pair_bytes = self.pairs.get(pair)
                if pair_bytes is None:
                    pair_bytes = self.pairs[pair] = _nested(b"\x0a", _text(1, pair[0]) + _text(2, pair[1]))
                parts.append(pair_bytes)
            encoded = self.labels[labels] = b"".join(parts)
        return encoded

    def histogram(self, histogram: Histogram) -> bytes:
        # Histogram {sample_count (1), sample_sum (2), bucket (3): {cumulative_count (1), upper_bound (2)}}
        parts = [b"\x08", _varint(int(histogram.count)), b"\x11", _double(histogram.sum)]
        for bound, count in zip(histogram.bounds, histogram.counts, strict=True):
            encoded = self.bounds.get(bound)
            if encoded is None:
                encoded = self.bounds[bound] = b"\x11" + _double(bound)
            parts.append(_nested(b"\x1a", b"\x08" + _varint(int(count)) + encoded))
        # The +Inf bucket too, as the Pushgateway's text parser keeps it: both pushes store the same.
        parts.append(_nested(b"\x1a", b"\x08" + _varint(int(histogram.count)) + _INF_BOUND))
        return b"".join(parts)

    def family(self, family: Family) -> bytes:
        # MetricFamily {name (1), help (2), type (3), metric (4)}; Metric {label (1), gauge (2),
        # counter (3), histogram (7)}; Gauge and Counter {value (1): a double, 9 bytes with its tag}.
        value_tag = b"\x12\x09\x09" if family.type == "gauge" else b"\x1a\x09\x09"
        parts = [_text(1, family.name), _text(2, family.help), b"\x18", _varint(_TYPES[family.type])]
        cached, double, varint = self.labels.get, _double, _varint  # locals: the hot loop
        for labels, value in family.series:
            label_bytes = cached(labels) or self.label_pairs(labels)
            if isinstance(value, Histogram):
                parts.append(_nested(b"\x22", label_bytes + _nested(b"\x3a", self.histogram(value))))
            else:
                parts += (b"\x22", varint(len(label_bytes) + 11), label_bytes, value_tag, double(value))
        body = b"".join(parts)
        return _varint(len(body)) + body


def encode_protobuf(families: Iterable[Family]) -> bytes:
    """The families as length-delimited MetricFamily messages (:data:`PROTOBUF_CONTENT_TYPE`).

    Families without series are left out, as the Pushgateway drops them from a text push."""
    encoder = _Encoder()
    return b"".join(encoder.family(family) for family in families if family.series)


class _FamiliesCollector(Collector):
    def __init__(self, families: Sequence[Family]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        for family in self.families:
            # prometheus_client names a counter family without `_total` and adds it back.
            name = family.name.removesuffix("_total") if family.type == "counter" else family.name
            metric = Metric(name, family.help, family.type)
            for labels, value in family.series:
                if isinstance(value, Histogram):
                    buckets = [*zip(value.bounds, value.counts, strict=True), (float("inf"), value.count)]
                    for bound, count in buckets:
                        metric.add_sample(f"{family.name}_bucket", {**dict(labels), "le": _le(bound)}, count)
                    # The order HistogramMetricFamily writes: the count, then the sum.
                    metric.add_sample(f"{family.name}_count", dict(labels), value.count)
                    metric.add_sample(f"{family.name}_sum", dict(labels), value.sum)
                else:
                    metric.add_sample(family.name, dict(labels), value)
            yield metric


def as_registry(families: Sequence[Family]) -> CollectorRegistry:
    """The families in a fresh prometheus_client registry (never the global one): the text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_FamiliesCollector(families))
    return registry
