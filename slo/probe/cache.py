"""Redis as the seed's cache (34.3.8): connection, and the readings the cache probe judges.

    with redis_client(config.redis_target("cache")) as client:
        round_trip = ping(client)
        reading = CacheReading.of(client)

Errors of the client become :class:`ProbeFailure` lines (`cache_failure`); the counters
behind evictions and the hit ratio are compared with the previous run's reading (kept by
:mod:`slo.probe.readings`), because Redis counts them since it started.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from slo.config.cache import RedisTarget
from slo.probe.failures import ProbeFailure

__all__ = [
    "CacheReading",
    "cache_errors",
    "cache_failure",
    "changes_since",
    "keys_without_ttl",
    "ping",
    "redis_client",
    "replica_problems",
    "where",
]


def where(target: RedisTarget) -> str:
    """``host:port`` of the target (its URL without the database number)."""
    parts = urlsplit(target.url)
    return f"{parts.hostname}:{parts.port or 6379}"


@contextmanager
def redis_client(target: RedisTarget) -> Iterator[redis.Redis]:
    """A client that tries once (no retries: a probe reports what it saw) within the timeout."""
    password = target.password.get_secret_value() if target.password is not None else None
    # TLS options are accepted only for rediss:// URLs.
    tls = {"ssl_ca_certs": str(target.ca_file)} if target.url.startswith("rediss:") and target.ca_file else {}
    client = redis.Redis.from_url(
        target.url,
        password=password,
        username=target.username,
        socket_timeout=target.timeout,
        socket_connect_timeout=target.timeout,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
        **tls,
    )
    try:
        yield client
    finally:
        client.close()


def cache_failure(name: str, target: RedisTarget, exc: redis.RedisError) -> ProbeFailure:
    """One line for a client error; never the password (the client's messages do not carry it)."""
    at = f"{name} {where(target)}"
    if isinstance(exc, redis.AuthenticationError) or "NOAUTH" in str(exc) or "WRONGPASS" in str(exc):
        return ProbeFailure(f"{at}: authentication failed (check the target's password)", "error")
    if isinstance(exc, redis.TimeoutError):
        return ProbeFailure(f"{at}: no answer within {target.timeout:g}s", "timeout")
    if isinstance(exc, redis.ConnectionError):
        text = str(exc).strip()
        detail = (
            "connection refused" if "refused" in text.lower() else (text.splitlines() or ["failed"])[0][:160]
        )
        return ProbeFailure(f"{at}: cannot connect: {detail}", "connect")
    return ProbeFailure(f"{at}: {type(exc).__name__}: {str(exc)[:160]}", "error")


@contextmanager
def cache_errors(name: str, target: RedisTarget) -> Iterator[None]:
    """Any client error inside becomes the probe's one failure line."""
    try:
        yield
    except redis.RedisError as exc:
        raise cache_failure(name, target, exc) from None


def ping(client: redis.Redis) -> float:
    """Seconds of one PING round trip on an open, authenticated connection."""
    client.ping()  # connects and authenticates: not part of the round trip
    start = time.perf_counter()
    client.ping()
    return time.perf_counter() - start


@dataclass(frozen=True)
class CacheReading:
    """Redis' cumulative counters at one moment; `run_id` changes when the server restarts."""

    run_id: str
    evicted_keys: int
    keyspace_hits: int
    keyspace_misses: int
    time: float

    @classmethod
    def of(cls, client: redis.Redis) -> CacheReading:
        server: dict[str, Any] = client.info("server")
        stats: dict[str, Any] = client.info("stats")
        return cls(
            run_id=str(server["run_id"]),
            evicted_keys=int(stats["evicted_keys"]),
            keyspace_hits=int(stats["keyspace_hits"]),
            keyspace_misses=int(stats["keyspace_misses"]),
            time=time.time(),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CacheReading | None:
        try:
            return cls(**{name: data[name] for name in cls.__dataclass_fields__})
        except (KeyError, TypeError):
            return None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Changes:
    evictions: int
    hits: int
    misses: int
    #: "since the previous run (5 minutes ago)" or "since the server started".
    span: str

    @property
    def lookups(self) -> int:
        return self.hits + self.misses


def changes_since(previous: CacheReading | None, current: CacheReading) -> Changes:
    """Counter increases since `previous`, or since the server started when it restarted."""
    if previous is None or previous.run_id != current.run_id or previous.time > current.time:
        return Changes(
            current.evicted_keys, current.keyspace_hits, current.keyspace_misses, "since the server started"
        )
    minutes = (current.time - previous.time) / 60
    return Changes(
        current.evicted_keys - previous.evicted_keys,
        current.keyspace_hits - previous.keyspace_hits,
        current.keyspace_misses - previous.keyspace_misses,
        f"since the previous run ({minutes:.0f} minutes ago)",
    )


def keys_without_ttl(client: redis.Redis, pattern: str, limit: int) -> tuple[int, list[str]]:
    """How many keys matching `pattern` were looked at (at most `limit`), and those without a TTL."""
    seen: list[str] = []
    for key in client.scan_iter(match=pattern, count=1000):
        seen.append(key)
        if len(seen) >= limit:
            break
    leaking: list[str] = []
    for start in range(0, len(seen), 500):
        leaking += _without_ttl(client, seen[start : start + 500])
    return len(seen), leaking


def _without_ttl(client: redis.Redis, keys: list[str]) -> list[str]:
    pipeline = client.pipeline(transaction=False)
    for key in keys:
        pipeline.ttl(key)
    # -1: the key exists and has no expiry; -2: it expired between SCAN and TTL.
    return [key for key, ttl in zip(keys, pipeline.execute(), strict=True) if ttl == -1]


def replica_problems(
    primary: redis.Redis, replica: redis.Redis, replica_port: int, max_lag: float
) -> list[str]:
    """The replica follows a primary over a live link, and the primary hears from it in time."""
    mine: dict[str, Any] = replica.info("replication")
    if mine.get("role") != "slave":
        return [f"is not a replica (role {mine.get('role')})"]
    if mine.get("master_link_status") != "up":
        return [f"link to its primary is {mine.get('master_link_status')}"]
    theirs: dict[str, Any] = primary.info("replication")
    entries = [value for key, value in theirs.items() if key.startswith("slave") and isinstance(value, dict)]
    entry = next((e for e in entries if int(e.get("port", -1)) == replica_port), None)
    if entry is None:
        return ["not among the primary's connected replicas"]
    problems = []
    if entry.get("state") != "online":
        problems.append(f"state {entry.get('state')} on the primary")
    lag = float(entry.get("lag", 0))
    if lag > max_lag:
        problems.append(f"lagging {lag:g}s behind, over {max_lag:g}s (cache.max_replica_lag)")
    return problems
