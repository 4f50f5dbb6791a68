"""Redis: the `redis` target kind and the `cache:` section of the cache probe.

environments:
  production:
    targets:
      cache: {kind: redis, url: redis://cache.internal:6379/0, password: ${REDIS_PASSWORD}}
cache:
  target: cache
  min_hit_ratio: 80
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, SecretStr, field_validator

from slo.config.fields import Duration, Fraction, StrictModel

__all__ = ["CacheProbe", "RedisTarget", "RedisUrl"]


def _check_redis_url(url: str) -> str:
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - urllib checks the port only when it is read
    except ValueError:
        raise ValueError("invalid port in Redis URL") from None
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ValueError("invalid Redis URL (expected redis://host[:port][/db] or rediss://...)")
    if parts.password:
        raise ValueError("Redis URL carries a password: write it as password: ${VAR} instead")
    return url


#: ``redis://host[:port][/db]`` or ``rediss://`` (TLS), without a password in it.
RedisUrl = Annotated[str, AfterValidator(_check_redis_url)]


class RedisTarget(StrictModel):
    """A Redis server, written under `targets:` with ``kind: redis``."""

    kind: Literal["redis"] = "redis"
    url: RedisUrl = Field(repr=False)
    #: ``requirepass`` (or the ACL user's password); write it as ``${VAR}``.
    password: SecretStr | None = None
    #: An ACL user; none for the default user.
    username: str | None = None
    timeout: Duration = 2.0
    #: A CA bundle for ``rediss://`` with a private CA.
    ca_file: Path | None = None

    @field_validator("password", "username", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value


class CacheProbe(StrictModel):
    """The seed's cache (34.3.8): API responses, token counters and model responses."""

    target: str = "cache"
    #: One PING round trip.
    ping_budget: Duration = Field(0.05, gt=0)
    #: `used_memory` under this share of `maxmemory` (not judged when maxmemory is 0).
    memory: Fraction = 0.9
    #: Keys evicted since the previous run.
    max_evictions: int = Field(0, ge=0)
    #: keyspace_hits / (hits + misses) since the previous run.
    min_hit_ratio: Fraction = 0.8
    #: Fewer lookups than this since the previous run say nothing about the ratio: not judged.
    min_lookups: int = Field(100, ge=1)
    #: The seed's per-user daily token counters; each must carry a TTL (one without leaks).
    token_keys: str = "tokens:*:*"
    #: At most this many keys are looked at per run (SCAN), so a huge keyspace costs bounded time.
    scan_limit: int = Field(10_000, ge=1)
    #: Redis targets that replicate this one: each must be linked and not lagging.
    replicas: list[str] = Field(default_factory=list)
    #: Each cache check in all (connecting, every reply, a SCAN that never ends), within the
    #: run deadline; the target's `timeout` bounds each reply.
    deadline: Duration = Field(20.0, gt=0)
    #: What one check may read from Redis in all (an INFO of gigabytes fails at this cap).
    max_read_bytes: int = Field(16 * 1024 * 1024, ge=64 * 1024)
    #: Seconds since the primary last heard from a replica (its ``lag``).
    max_replica_lag: Duration = Field(10.0, gt=0)
    #: No longer read: the previous run's counters are kept in the state file (``--slo-state``)
    #: with every other probe's readings. Accepted so that configs which set it still load.
    readings_file: Path | None = None
