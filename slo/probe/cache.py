"""Redis as the seed's cache (34.3.8): connection, and the readings the cache probe judges.

    with redis_client(config.redis_target("cache")) as client:
        round_trip = ping(client)
        reading = CacheReading.of(client)

Errors of the client become :class:`ProbeFailure` lines (`cache_failure`); the counters
behind evictions and the hit ratio are compared with the previous run's reading (kept by
the probe's state, :meth:`slo.probe.run.ProbeRun.keep_reading`), because Redis counts them
since it started.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from slo.config.cache import RedisTarget
from slo.config.schema import Config
from slo.exchange.deadline import probe_deadline
from slo.exchange.failures import ProbeFailure
from slo.probe.redis_bounds import CheckDeadline, ReadCapReached, bounded

if TYPE_CHECKING:
    from slo.probe.run import ProbeRun

__all__ = [
    "CacheChecks",
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

#: What a client made without a check's settings may read in all.
_READ_CAP = 16 * 1024 * 1024


def where(target: RedisTarget) -> str:
    """``host:port`` of the target (its URL without the database number)."""
    parts = urlsplit(target.url)
    return f"{parts.hostname}:{parts.port or 6379}"


@contextmanager
def redis_client(
    target: RedisTarget, deadline: float | None = None, max_read_bytes: int = _READ_CAP, limits: str = ""
) -> Iterator[redis.Redis]:
    """A client that tries once (no retries: a probe reports what it saw), each reply within
    the target's timeout, the whole check by `deadline` (``time.monotonic()``; default the
    target's timeout and the run deadline), reading at most `max_read_bytes`."""
    if deadline is None:
        deadline, limits = probe_deadline(target.timeout), limits or f"{target.timeout:g}s"
    password = target.password.get_secret_value() if target.password is not None else None
    # TLS options are accepted only for rediss:// URLs.
    tls = {"ssl_ca_certs": str(target.ca_file)} if target.url.startswith("rediss:") and target.ca_file else {}
    client = redis.Redis.from_url(
        target.url,
        password=password,
        username=target.username,
        socket_timeout=target.timeout,
        socket_connect_timeout=max(0.001, min(target.timeout, deadline - time.monotonic())),
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
        **tls,
        **bounded(target.url, deadline, max_read_bytes, limits),
    )
    try:
        yield client
    finally:
        client.close()


def cache_failure(name: str, target: RedisTarget, exc: redis.RedisError) -> ProbeFailure:
    """One line for a client error; never the password (the client's messages do not carry it)."""
    at = f"{name} {where(target)}"
    if isinstance(exc, CheckDeadline):
        return ProbeFailure(f"{at}: {exc}", "timeout")
    if isinstance(exc, ReadCapReached):
        return ProbeFailure(f"{at}: {exc}", "error")
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
    except (KeyError, ValueError, TypeError) as exc:
        # An INFO without the field a check reads, or with a value that is no number.
        raise ProbeFailure(
            f"{name} {where(target)}: unexpected answer ({type(exc).__name__}: {str(exc)[:120]})", "error"
        ) from None


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
    def from_dict(cls, data: Mapping[str, Any]) -> CacheReading | None:
        """A reading kept by an earlier run (numbers come back as floats), or None."""
        try:
            return cls(
                run_id=str(data["run_id"]),
                evicted_keys=int(data["evicted_keys"]),
                keyspace_hits=int(data["keyspace_hits"]),
                keyspace_misses=int(data["keyspace_misses"]),
                time=float(data["time"]),
            )
        except (KeyError, TypeError, ValueError):
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


class CacheChecks:
    """The cache probes' checks on the `cache:` section's Redis target: each gives its failure
    line or None; a client error inside one becomes a ProbeFailure line.

        with CacheChecks(config) as checks:
            assert not (problem := checks.slow_ping()), problem
    """

    def __init__(self, config: Config) -> None:
        settings = config.cache
        assert settings is not None, "only with a cache: section"
        self.settings = settings
        self.config = config
        self.name = settings.target
        self.target = config.redis_target(self.name)
        self.at = f"{self.name} {where(self.target)}"
        self._clients = ExitStack()

    def __enter__(self) -> CacheChecks:
        settings = self.settings
        self.deadline = probe_deadline(settings.deadline)
        self.limits = f"cache.deadline {settings.deadline:g}s or the run deadline"
        self.client = self._clients.enter_context(self._client(self.target))
        return self

    def _client(self, target: RedisTarget) -> AbstractContextManager[redis.Redis]:
        return redis_client(target, self.deadline, self.settings.max_read_bytes, self.limits)

    def __exit__(self, *exc_info: object) -> None:
        self._clients.close()

    def slow_ping(self) -> str | None:
        with cache_errors(self.name, self.target):
            seconds = ping(self.client)
        budget = self.settings.ping_budget
        if seconds <= budget:
            return None
        return f"{self.at}: PING took {seconds * 1000:.1f} ms, over {budget * 1000:g} ms (cache.ping_budget)"

    def memory_pressure(self) -> str | None:
        """Skips the probe when the server sets no maxmemory: there is no limit to judge."""
        with cache_errors(self.name, self.target):
            memory: dict[str, Any] = self.client.info("memory")
            limit, used_bytes = int(memory["maxmemory"]), int(memory["used_memory"])
        if limit == 0:
            pytest.skip(f"{self.name} sets no maxmemory: no limit to compare its memory with")
        used = used_bytes / limit
        if used < self.settings.memory:
            return None
        return (
            f"{self.at}: memory {used:.0%} of maxmemory ({memory.get('maxmemory_human', '?')}) used, over "
            f"{self.settings.memory:.0%} (cache.memory); policy {memory.get('maxmemory_policy', '?')}"
        )

    def evictions_and_misses(self, probe: ProbeRun) -> str | None:
        """Evictions and the hit ratio since the reading the probe's previous run kept.

        One check for both: they share the one reading this run keeps for the next (in the
        state file, with the run's counters: :meth:`slo.probe.run.ProbeRun.keep_reading`).
        """
        settings = self.settings
        with cache_errors(self.name, self.target):
            current = CacheReading.of(self.client)
        previous = probe.previous_reading()
        probe.keep_reading(current.as_dict())
        changes = changes_since(CacheReading.from_dict(previous.values) if previous else None, current)
        problems = []
        if changes.evictions > settings.max_evictions:
            problems.append(
                f"{changes.evictions} keys evicted, over {settings.max_evictions} (cache.max_evictions)"
            )
        # Under `min_lookups` the ratio says nothing: only the evictions are judged.
        if (
            changes.lookups >= settings.min_lookups
            and changes.hits / changes.lookups < settings.min_hit_ratio
        ):
            problems.append(
                f"hit ratio {changes.hits / changes.lookups:.1%} of {changes.lookups} lookups, under "
                f"{settings.min_hit_ratio:.0%} (cache.min_hit_ratio)"
            )
        return f"{self.at} {changes.span}: " + "; ".join(problems) if problems else None

    def leaking_token_counters(self) -> str | None:
        pattern = self.settings.token_keys
        with cache_errors(self.name, self.target):
            seen, leaking = keys_without_ttl(self.client, pattern, self.settings.scan_limit)
        if not leaking:
            return None
        return (
            f"{self.at}: {len(leaking)} of {seen} {pattern} keys have no TTL (they never expire), "
            f"e.g. {', '.join(leaking[:3])}"
        )

    def lagging_replicas(self) -> str | None:
        problems = []
        for name in self.settings.replicas:
            replica = self.config.redis_target(name)
            port = urlsplit(replica.url).port or 6379
            with self._client(replica) as replica_client, cache_errors(name, replica):
                found = replica_problems(self.client, replica_client, port, self.settings.max_replica_lag)
            problems += [f"replica {name} {where(replica)} {problem}" for problem in found]
        return f"{self.at}: " + "; ".join(problems) if problems else None
