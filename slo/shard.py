"""Splitting a probe suite across the runners of one location (``--slo-shard 2/3``).

A probe belongs to shard ``crc32(node id) % N + 1``: the same on every runner and every run,
without coordination, and a probe added to the suite moves no other probe to another shard
(which would reset its counters on one runner and restart them on another). Each runner
pushes under its own instance, so the location's runs add up over its shards.

>>> parse_shard("2/3", "--slo-shard")
(2, 3)
>>> [in_shard(node_id, (1, 1)) for node_id in ("a", "b")]
[True, True]
"""

from __future__ import annotations

import zlib

__all__ = ["in_shard", "parse_shard"]

Shard = tuple[int, int]


def parse_shard(text: str, source: str) -> Shard:
    """``I/N`` (1 <= I <= N) as (I, N); ValueError naming `source` otherwise."""
    index, slash, count = text.strip().partition("/")
    try:
        shard = (int(index), int(count)) if slash else None
    except ValueError:
        shard = None
    if shard is None or not 1 <= shard[0] <= shard[1]:
        raise ValueError(f"{source}: expected I/N with 1 <= I <= N (e.g. 2/3), got {text!r}")
    return shard


def in_shard(node_id: str, shard: Shard) -> bool:
    """Whether the probe `node_id` is one of shard `shard`'s."""
    index, count = shard
    return zlib.crc32(node_id.encode("utf-8")) % count == index - 1
