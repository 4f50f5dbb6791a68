"""The cache probes against Debian's redis-server, started here on loopback ports: with and
without a password, with maxmemory and evictions forced, a leaking token counter, a replica."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import yaml
from hostile_redis import HostileRedis
from probe_project import junit_cases, make_probe_project, run_probes
from servers import Redis, free_port, redis_server

from devstack.daemons import Pushgateway
from slo.config import Config, ConfigError, load_config
from slo.probe.cache import CacheReading, changes_since

PING = "test_cache::test_cache_ping"
MEMORY = "test_cache::test_cache_memory"
EVICTIONS = "test_cache::test_cache_evictions_and_hit_ratio"
TOKENS = "test_cache::test_token_counters_expire"
REPLICAS = "test_cache::test_cache_replicas"
ALL = (PING, MEMORY, EVICTIONS, TOKENS, REPLICAS)


def client(server: Redis) -> redis.Redis:
    return redis.Redis(port=server.port, password=server.password, decode_responses=True)


def configure(
    pytester: pytest.Pytester,
    server: Redis,
    *,
    password: str | None = None,
    replicas: dict[str, int] | None = None,
    **cache: object,
) -> None:
    targets: dict[str, object] = {"cache": {"kind": "redis", "url": server.url, "password": password or ""}}
    for name, port in (replicas or {}).items():
        targets[name] = {"kind": "redis", "url": f"redis://127.0.0.1:{port}", "password": password or ""}
    make_probe_project(
        pytester,
        None,
        environments={"local": {"targets": targets}},
        cache={
            "min_lookups": 10,
            "ping_budget": "1s",  # a loaded CI runner: the budget's logic is tested, not the machine
            "replicas": list(replicas or {}),
            **cache,
        },
    )


def outcomes(pytester: pytest.Pytester, *push: str) -> dict[str, tuple[str, str]]:
    """The cache probes' outcomes and messages; `push` (a pushed run's options) or ``--no-push``."""
    if push:
        pytester.runpytest("probes/test_cache.py", *push)
    else:
        run_probes(pytester, "probes/test_cache.py")
    cases = junit_cases(pytester)
    return {name: (cases[name].outcome, cases[name].message) for name in ALL}


def seed(server: Redis, hits: int = 20, misses: int = 0) -> None:
    """The seed's cache_token_count and cache_api_response traffic, with TTLs."""
    c = client(server)
    for user in range(5):
        c.incrby(f"tokens:{user}:2026-01-31", 100)
        c.expire(f"tokens:{user}:2026-01-31", 86400)
    c.set("api:user:1:profile", '{"name": "John"}', ex=3600)
    for _ in range(hits):
        c.get("api:user:1:profile")
    for index in range(misses):
        c.get(f"api:user:missing:{index}")


@pytest.fixture
def plain(tmp_path: Path) -> Iterator[Redis]:
    with redis_server(tmp_path) as server:
        yield server


def test_healthy_cache_passes(pytester: pytest.Pytester, plain: Redis) -> None:
    seed(plain)
    configure(pytester, plain)
    results = outcomes(pytester)
    assert results[PING][0] == results[EVICTIONS][0] == results[TOKENS][0] == "passed"
    assert results[MEMORY] == ("skipped", "cache sets no maxmemory: no limit to compare its memory with")
    assert results[REPLICAS] == ("skipped", "cache.replicas is empty: no replica to check")


def test_password(pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with redis_server(tmp_path, password="cache-secret-1") as server:
        seed(server)
        monkeypatch.setenv("TEST_REDIS_PASSWORD", "cache-secret-1")
        configure(pytester, server, password="${TEST_REDIS_PASSWORD}")
        assert outcomes(pytester)[PING][0] == "passed"
        monkeypatch.setenv("TEST_REDIS_PASSWORD", "not-the-password")
        results = outcomes(pytester)
        assert results[PING] == (
            "failed",
            f"cache 127.0.0.1:{server.port}: authentication failed (check the target's password)",
        )
        configure(pytester, server)  # no password at all
        assert "authentication failed" in outcomes(pytester)[TOKENS][1]
    assert "not-the-password" not in (pytester.path / "reports" / "junit.xml").read_text()


def test_maxmemory_and_evictions_forced(pytester: pytest.Pytester, tmp_path: Path) -> None:
    with redis_server(tmp_path, "maxmemory 2mb", "maxmemory-policy allkeys-lru") as server:
        c = client(server)
        for index in range(400):
            c.set(f"model:claude:{index}", "x" * 20_000, ex=7200)
        assert int(c.info("stats")["evicted_keys"]) > 0
        configure(pytester, server, memory=50)
        results = outcomes(pytester)
    assert results[MEMORY][0] == "failed"
    assert "of maxmemory (2.00M) used, over 50% (cache.memory); policy allkeys-lru" in results[MEMORY][1]
    assert results[EVICTIONS][0] == "failed"
    assert f"cache 127.0.0.1:{server.port} since the server started: " in results[EVICTIONS][1]
    assert "keys evicted, over 0 (cache.max_evictions)" in results[EVICTIONS][1]


def test_hit_ratio_since_the_previous_run(pytester: pytest.Pytester, plain: Redis, tmp_path: Path) -> None:
    """The previous reading is the probe's, kept in the state file named by --slo-state."""
    seed(plain, hits=5, misses=95)
    configure(pytester, plain)
    state = tmp_path / "elsewhere" / "state.json"
    with Pushgateway() as gateway:
        pushed = ("--pushgateway", gateway.url, "--slo-state", str(state))
        first = outcomes(pytester, *pushed)[EVICTIONS]
        assert first[0] == "failed"
        assert "hit ratio 5.0% of 100 lookups, under 80% (cache.min_hit_ratio)" in first[1]
        assert '"run_id"' in state.read_text(), "the reading is in the state file"
        # Since that run: only hits. The earlier misses no longer count.
        seed(plain, hits=30, misses=0)
        assert outcomes(pytester, *pushed)[EVICTIONS][0] == "passed"
        # A run that does not push keeps nothing: the next compares with the last pushed run.
        seed(plain, hits=0, misses=200)
        assert (
            "since the previous run"
            in outcomes(pytester, "--no-push", "--slo-state", str(state))[EVICTIONS][1]
        )
        seed(plain, hits=400, misses=0)
        # Had it kept its reading, this run would see 400 hits alone and pass.
        last = outcomes(pytester, *pushed)[EVICTIONS]
        assert last[0] == "failed"
        # The seed's own calls (INCRBY, EXPIRE, SET) add a few lookups to the 600 reads.
        found = re.search(r"hit ratio [\d.]+% of (\d+) lookups, under 80%", last[1])
        assert found, last[1]
        assert 600 <= int(found[1]) < 700, last[1]


def test_token_counter_without_ttl(pytester: pytest.Pytester, plain: Redis) -> None:
    seed(plain)
    client(plain).incrby("tokens:42:2026-01-31", 7)  # the seed's incrby with its expire forgotten
    configure(pytester, plain)
    assert outcomes(pytester)[TOKENS] == (
        "failed",
        f"cache 127.0.0.1:{plain.port}: 1 of 6 tokens:*:* keys have no TTL (they never expire), "
        "e.g. tokens:42:2026-01-31",
    )


@pytest.mark.slow
def test_replica_linked_and_unlinked(pytester: pytest.Pytester, plain: Redis, tmp_path: Path) -> None:
    seed(plain)
    with redis_server(tmp_path, f"replicaof 127.0.0.1 {plain.port}") as replica:
        deadline = time.monotonic() + 30
        while client(replica).info("replication")["master_link_status"] != "up":
            assert time.monotonic() < deadline, "replica never linked"
            time.sleep(0.1)
        deadline = time.monotonic() + 30
        while not any(k.startswith("slave") for k in client(plain).info("replication")):
            assert time.monotonic() < deadline, "primary never listed the replica"
            time.sleep(0.1)
        configure(pytester, plain, replicas={"cache-replica": replica.port})
        assert outcomes(pytester)[REPLICAS][0] == "passed"
        client(replica).replicaof("127.0.0.1", str(free_port()))  # its primary is gone now
        results = outcomes(pytester)
    assert results[REPLICAS][0] == "failed"
    assert f"replica cache-replica 127.0.0.1:{replica.port} link to its primary is " in results[REPLICAS][1]


def test_cache_down(pytester: pytest.Pytester, tmp_path: Path) -> None:
    with redis_server(tmp_path) as server:
        pass
    configure(pytester, server)
    outcome, message = outcomes(pytester)[PING]
    assert (outcome, message) == (
        "failed",
        f"cache 127.0.0.1:{server.port}: cannot connect: connection refused",
    )


def test_not_configured_skips(pytester: pytest.Pytester, plain: Redis) -> None:
    make_probe_project(pytester, None)
    assert outcomes(pytester)[PING] == ("skipped", "monitoring.yaml has no cache: section")
    make_probe_project(pytester, None, cache={"target": "cache"})
    assert outcomes(pytester)[PING] == (
        "skipped",
        "environment 'local' defines no target 'cache' with kind: redis",
    )


def test_restart_counts_since_the_server_started() -> None:
    before = CacheReading("a", evicted_keys=50, keyspace_hits=900, keyspace_misses=100, time=100.0)
    after = CacheReading("b", evicted_keys=2, keyspace_hits=10, keyspace_misses=0, time=160.0)
    changes = changes_since(before, after)
    assert (changes.evictions, changes.lookups, changes.span) == (2, 10, "since the server started")
    same = CacheReading("a", evicted_keys=53, keyspace_hits=950, keyspace_misses=110, time=400.0)
    changes = changes_since(before, same)
    assert (changes.evictions, changes.hits, changes.misses) == (3, 50, 10)
    assert changes.span == "since the previous run (5 minutes ago)"


def test_redis_targets_are_a_kind_of_their_own(tmp_path: Path) -> None:
    def load(targets: dict[str, object]) -> Config:
        path = tmp_path / "monitoring.yaml"
        path.write_text(yaml.safe_dump({"environments": {"local": {"targets": targets}}}), encoding="utf-8")
        return load_config(path, "local", environ={"REDIS_PASSWORD": "pw-from-env"})

    config = load(
        {
            "api": {"url": "http://127.0.0.1:8080"},
            "cache": {"kind": "redis", "url": "redis://127.0.0.1:6379/0", "password": "${REDIS_PASSWORD}"},
        }
    )
    assert list(config.environment.targets) == ["api"]  # HTTP code never meets the cache
    password = config.redis_target("cache").password
    assert password is not None
    assert password.get_secret_value() == "pw-from-env"
    assert "pw-from-env" not in repr(config)
    with pytest.raises(
        ConfigError, match=r"targets\.cache\.kind: unknown target kind 'redi' \(known: http, redis\)"
    ):
        load({"cache": {"kind": "redi", "url": "redis://127.0.0.1"}})
    with pytest.raises(
        ConfigError, match=r"redis\.cache\.url: Redis URL carries a password: write it as password"
    ):
        load({"cache": {"kind": "redis", "url": "redis://:hunter2@127.0.0.1"}})
    with pytest.raises(ConfigError, match=r"redis\.cache\.url: invalid Redis URL"):
        load({"cache": {"kind": "redis", "url": "http://127.0.0.1:6379"}})


# --- a hostile Redis: every check ends by its deadline and within its read cap -----------------


@pytest.mark.slow
def test_a_scan_that_never_ends_stops_at_the_check_deadline(pytester: pytest.Pytester) -> None:
    with HostileRedis("endless-scan") as server:
        configure(pytester, server, deadline="2s")  # type: ignore[arg-type]
        results = outcomes(pytester)
    # Its INFO is no INFO: one line, never a traceback.
    assert results[MEMORY] == (
        "failed",
        f"cache 127.0.0.1:{server.port}: unexpected answer (KeyError: 'maxmemory')",
    )
    outcome, message = results[TOKENS]
    assert (outcome, message) == (
        "failed",
        f"cache 127.0.0.1:{server.port}: no answer before the check's deadline "
        "(cache.deadline 2s or the run deadline)",
    )


@pytest.mark.slow
def test_a_trickled_reply_stops_at_the_run_deadline(pytester: pytest.Pytester) -> None:
    with HostileRedis("trickle") as server:
        configure(pytester, server)  # type: ignore[arg-type]
        run_probes(pytester, "probes/test_cache.py", "--slo-run-deadline", "3s")
        cases = junit_cases(pytester)
    assert cases[PING].outcome == "failed"
    assert cases[PING].message == (
        f"cache 127.0.0.1:{server.port}: no answer before the check's deadline "
        "(cache.deadline 20s or the run deadline)"
    )


@pytest.mark.slow
def test_an_info_of_a_gigabyte_stops_at_the_read_cap(pytester: pytest.Pytester) -> None:
    with HostileRedis("huge-info") as server:
        configure(pytester, server, max_read_bytes=1 << 20)  # type: ignore[arg-type]
        outcome, message = outcomes(pytester)[MEMORY]
    assert (outcome, message) == (
        "failed",
        f"cache 127.0.0.1:{server.port}: sent over 1048576 bytes (cache.max_read_bytes)",
    )
