"""Redis as the seed's cache (34.3.8): answers fast, has memory to spare, keeps its hit ratio
without evicting, its token counters expire, and its replicas keep up.

Configured by `cache:` and a target with ``kind: redis``; skipped while either is missing.
"""

import pytest

from slo.probe.cache import (
    CacheReading,
    cache_errors,
    changes_since,
    keys_without_ttl,
    ping,
    redis_client,
    replica_problems,
    where,
)
from slo.probe.failures import ProbeFailure
from slo.probe.readings import Readings, default_readings_file


@pytest.fixture
def settings(slo_config):
    if slo_config.cache is None:
        pytest.skip("monitoring.yaml has no cache: section")
    return slo_config.cache


@pytest.fixture
def cache(settings, slo_config):
    name = settings.target
    if name not in slo_config.environment.redis:
        pytest.skip(f"environment {slo_config.env_name!r} defines no target {name!r} with kind: redis")
    target = slo_config.redis_target(name)
    with redis_client(target) as client:
        yield name, target, client


def test_cache_ping(settings, cache):
    name, target, client = cache
    with cache_errors(name, target):
        seconds = ping(client)
    assert seconds <= settings.ping_budget, (
        f"{name} {where(target)}: PING took {seconds * 1000:.1f} ms, over "
        f"{settings.ping_budget * 1000:g} ms (cache.ping_budget)"
    )


def test_cache_memory(settings, cache):
    name, target, client = cache
    with cache_errors(name, target):
        memory = client.info("memory")
    limit = int(memory["maxmemory"])
    if limit == 0:
        pytest.skip(f"{name} sets no maxmemory: no limit to compare its memory with")
    used = int(memory["used_memory"]) / limit
    assert used < settings.memory, (
        f"{name} {where(target)}: memory {used:.0%} of maxmemory ({memory['maxmemory_human']}) used, "
        f"over {settings.memory:.0%} (cache.memory); policy {memory['maxmemory_policy']}"
    )


def test_cache_evictions_and_hit_ratio(settings, cache, slo_config):
    # One probe for both: they share the one reading this run stores for the next.
    name, target, client = cache
    with cache_errors(name, target):
        current = CacheReading.of(client)
    path = settings.readings_file or default_readings_file(slo_config.env_name)
    stored = Readings(path).exchange(f"{slo_config.env_name}/{name}", current.as_dict())
    changes = changes_since(CacheReading.from_dict(stored) if stored else None, current)
    problems = []
    if changes.evictions > settings.max_evictions:
        problems.append(
            f"{changes.evictions} keys evicted, over {settings.max_evictions} (cache.max_evictions)"
        )
    if changes.lookups >= settings.min_lookups:
        ratio = changes.hits / changes.lookups
        if ratio < settings.min_hit_ratio:
            problems.append(
                f"hit ratio {ratio:.1%} of {changes.lookups} lookups, under "
                f"{settings.min_hit_ratio:.0%} (cache.min_hit_ratio)"
            )
    # Under `min_lookups` the ratio says nothing: only the evictions are judged.
    assert not problems, f"{name} {where(target)} {changes.span}: " + "; ".join(problems)


def test_token_counters_expire(settings, cache):
    name, target, client = cache
    with cache_errors(name, target):
        seen, leaking = keys_without_ttl(client, settings.token_keys, settings.scan_limit)
    assert not leaking, (
        f"{name} {where(target)}: {len(leaking)} of {seen} {settings.token_keys} keys have no TTL "
        f"(they never expire), e.g. {', '.join(leaking[:3])}"
    )


def test_cache_replicas(settings, cache, slo_config):
    name, target, client = cache
    if not settings.replicas:
        pytest.skip("cache.replicas is empty: no replica to check")
    problems = []
    for replica_name in settings.replicas:
        replica = slo_config.redis_target(replica_name)
        with redis_client(replica) as replica_client, cache_errors(replica_name, replica):
            found = replica_problems(
                client, replica_client, int(where(replica).rsplit(":", 1)[1]), settings.max_replica_lag
            )
        problems += [f"replica {replica_name} {where(replica)} {problem}" for problem in found]
    if problems:
        raise ProbeFailure(f"{name} {where(target)}: " + "; ".join(problems))
