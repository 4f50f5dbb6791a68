"""Redis as the seed's cache (34.3.8): answers fast, has memory to spare, keeps its hit ratio
without evicting, its token counters expire, and its replicas keep up.

Configured by `cache:` and a target with ``kind: redis``; skipped while either is missing.
"""

import pytest

from slo import CacheChecks


@pytest.fixture
def cache(slo_config):
    settings = slo_config.cache
    if settings is None:
        pytest.skip("monitoring.yaml has no cache: section")
    if settings.target not in slo_config.environment.redis:
        pytest.skip(
            f"environment {slo_config.env_name!r} defines no target {settings.target!r} with kind: redis"
        )
    with CacheChecks(slo_config) as checks:
        yield checks


def test_cache_ping(cache):
    problem = cache.slow_ping()
    assert not problem, problem


def test_cache_memory(cache):
    problem = cache.memory_pressure()
    assert not problem, problem


@pytest.mark.probe(alert="CacheHitRatioLow")
def test_cache_evictions_and_hit_ratio(cache, probe):
    problem = cache.evictions_and_misses(probe)
    assert not problem, problem


def test_token_counters_expire(cache):
    problem = cache.leaking_token_counters()
    assert not problem, problem


def test_cache_replicas(cache):
    if not cache.settings.replicas:
        pytest.skip("cache.replicas is empty: no replica to check")
    problem = cache.lagging_replicas()
    assert not problem, problem
