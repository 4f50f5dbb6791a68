"""The log probes on real files (JSON lines, a regex format, rotation with gzip) and against a
loopback server standing in for Elasticsearch: it checks the exact `_count` bodies and answers
in Elasticsearch 8's documented format (`{"count": N, "_shards": {...}}`). Elasticsearch itself
is not installable from the package registries this project's machines reach."""

from __future__ import annotations

import gzip
import json
import os
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from loopback import loopback_server, url_of
from probe_project import junit_cases, make_probe_project, run_probes

from slo.config import ConfigError, load_config
from slo.config.logs import LogsProbe
from slo.probe.logs import LogCounts, anomaly, count_files, elasticsearch_queries, iso

ERRORS = "test_logs::test_error_count[{}]"
SLOW = "test_logs::test_slow_requests[{}]"
ANOMALY = "test_logs::test_request_rate_anomaly[{}]"
HOUR = 3600


def entry(age: float, level: str = "INFO", latency: float = 0.1) -> str:
    return json.dumps(
        {"@timestamp": iso(time.time() - age), "level": level, "latency": latency, "user_id": "u1"}
    )


def write_log(path: Path, lines: list[str], mtime_age: float = 0) -> None:
    text = "".join(line + "\n" for line in lines).encode()
    path.write_bytes(gzip.compress(text) if path.suffix == ".gz" else text)
    when = time.time() - mtime_age
    os.utime(path, (when, when))


def outcomes(pytester: pytest.Pytester) -> dict[str, tuple[str, str]]:
    run_probes(pytester, "probes/test_logs.py")
    return {name: (case.outcome, case.message) for name, case in junit_cases(pytester).items()}


def test_files_with_rotation(pytester: pytest.Pytester) -> None:
    logs = pytester.path / "log"
    logs.mkdir()
    # Today's file, yesterday's rotated one, and a compressed older one (still inside 24 h).
    write_log(logs / "api.log", [entry(60), entry(120, "ERROR"), entry(300, latency=2.5)] + [entry(30)] * 5)
    write_log(logs / "api.log.1", [entry(5 * HOUR, "ERROR"), entry(2 * HOUR - 60)] * 3, mtime_age=2 * HOUR)
    write_log(logs / "api.log.2.gz", [entry(20 * HOUR, "error", latency=3.0)], mtime_age=20 * HOUR)
    # Older than the window, by its mtime too: never opened.
    write_log(logs / "api.log.3.gz", [entry(3 * 86400, "ERROR")] * 50, mtime_age=3 * 86400)
    make_probe_project(
        pytester,
        None,
        logs={
            "files": [str(logs / "*.log"), str(logs / "*.log.*")],
            "max_errors": 2,
            "max_slow_requests": 1,
            "anomaly_min_requests": 5,
        },
    )
    results = outcomes(pytester)
    assert results[ERRORS.format("files")] == (
        "failed",
        "logs (files): 5 errors in the last 1d, over 2 (logs.max_errors)",
    )
    assert results[SLOW.format("files")] == (
        "failed",
        "logs (files): 2 requests slower than 2s in the last 1d, over 1 (logs.max_slow_requests)",
    )
    assert results[ANOMALY.format("files")] == (
        "failed",
        "logs (files): request-rate anomaly: 8 requests in the last 1h, over 2 x the 3 of the 1h before",
    )


def test_regex_format_and_unmatched_files(pytester: pytest.Pytester) -> None:
    logs = pytester.path / "log"
    logs.mkdir()
    stamp = iso(time.time() - 60)
    write_log(logs / "api.log", [f"{stamp} INFO GET /health 0.004", f"{stamp} ERROR POST /v1/chat 2.4"])
    pattern = r"^(?P<timestamp>\S+) (?P<level>\w+) \S+ \S+ (?P<latency>[0-9.]+)$"
    make_probe_project(pytester, None, logs={"files": [str(logs / "*.log")], "format": {"pattern": pattern}})
    results = outcomes(pytester)
    assert (
        results[ERRORS.format("files")][1]
        == "logs (files): 1 errors in the last 1d, over 0 (logs.max_errors)"
    )
    assert results[ANOMALY.format("files")][0] == "passed"  # 2 requests: under anomaly_min_requests

    make_probe_project(pytester, None, logs={"files": [str(logs / "*.json")]})
    assert outcomes(pytester)[ERRORS.format("files")] == (
        "failed",
        f"logs: no file matches {logs / '*.json'} (logs.files)",
    )


class FakeElasticsearch(BaseHTTPRequestHandler):
    """Answers `POST /claude-code-*/_count` as Elasticsearch 8 does; remembers each body."""

    counts: ClassVar[dict[str, int]] = {}
    bodies: ClassVar[list[tuple[str, dict[str, Any], str]]] = []
    lock = threading.Lock()
    failed_shards: ClassVar[int] = 0

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.lock:
            self.bodies.append((self.path, body, self.headers.get("Authorization", "")))
        text = json.dumps(body, sort_keys=True)
        kind = (
            "errors"
            if '"match"' in text
            else "slow"
            if '"latency"' in text
            else "previous"
            if '"lt"' in text
            else "current"
        )
        answer = {
            "count": self.counts[kind],
            "_shards": {
                "total": 3,
                "successful": 3 - self.failed_shards,
                "skipped": 0,
                "failed": self.failed_shards,
            },
        }
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_elasticsearch_queries_and_counts(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    FakeElasticsearch.counts = {"errors": 7, "slow": 0, "previous": 100, "current": 450}
    FakeElasticsearch.bodies = []
    monkeypatch.setenv("TEST_ES_API_KEY", "es-key-123")
    with loopback_server(FakeElasticsearch) as server:
        make_probe_project(
            pytester,
            None,
            logs={
                "elasticsearch": {"url": url_of(server), "api_key": "${TEST_ES_API_KEY}"},
                "max_errors": 10,
            },
        )
        before = time.time()
        results = outcomes(pytester)
        after = time.time()
    assert results[ERRORS.format("elasticsearch")][0] == results[SLOW.format("elasticsearch")][0] == "passed"
    assert results[ANOMALY.format("elasticsearch")] == (
        "failed",
        "logs (elasticsearch): request-rate anomaly: 450 requests in the last 1h, "
        "over 2 x the 100 of the 1h before",
    )
    # One reading per run, four queries, each the seed's, with the window in explicit UTC times.
    assert len(FakeElasticsearch.bodies) == 4
    assert {path for path, _, _ in FakeElasticsearch.bodies} == {"/claude-code-*/_count"}
    assert {auth for _, _, auth in FakeElasticsearch.bodies} == {"ApiKey es-key-123"}
    # The run's one `now`, read back from the current window's start (millisecond precision).
    current_start = FakeElasticsearch.bodies[3][1]["query"]["range"]["@timestamp"]["gte"]
    now = datetime.fromisoformat(current_start).timestamp() + HOUR
    assert before - 1 <= now <= after
    expected = elasticsearch_queries(LogsProbe(elasticsearch={"url": "http://x"}), now + 0.0005)
    assert [body for _, body, _ in FakeElasticsearch.bodies] == list(expected.values())
    assert "es-key-123" not in (pytester.path / "reports" / "junit.xml").read_text()


def test_elasticsearch_shard_failure(pytester: pytest.Pytester) -> None:
    FakeElasticsearch.counts = {"errors": 0, "slow": 0, "previous": 0, "current": 0}
    FakeElasticsearch.failed_shards = 1
    try:
        with loopback_server(FakeElasticsearch) as server:
            make_probe_project(pytester, None, logs={"elasticsearch": {"url": url_of(server)}})
            results = outcomes(pytester)
    finally:
        FakeElasticsearch.failed_shards = 0
    assert results[ERRORS.format("elasticsearch")] == (
        "failed",
        "elasticsearch POST /claude-code-*/_count: 1 of 3 shards failed, so the counts are incomplete",
    )


def test_seed_queries_exactly() -> None:
    settings = LogsProbe(elasticsearch={"url": "http://es:9200"})
    now = 1_769_824_800.0  # 2026-01-31T02:00:00Z
    assert elasticsearch_queries(settings, now) == {
        "errors": {
            "query": {
                "bool": {
                    "must": [
                        {"match": {"level": "ERROR"}},
                        {"range": {"@timestamp": {"gte": "2026-01-30T02:00:00.000Z"}}},
                    ]
                }
            }
        },
        "slow": {
            "query": {
                "bool": {
                    "must": [
                        {"range": {"latency": {"gte": 2.0}}},
                        {"range": {"@timestamp": {"gte": "2026-01-30T02:00:00.000Z"}}},
                    ]
                }
            }
        },
        "previous": {
            "query": {
                "range": {"@timestamp": {"gte": "2026-01-31T00:00:00.000Z", "lt": "2026-01-31T01:00:00.000Z"}}
            }
        },
        "current": {"query": {"range": {"@timestamp": {"gte": "2026-01-31T01:00:00.000Z"}}}},
    }


def test_anomaly_rule() -> None:
    settings = LogsProbe(files=["x"], anomaly_min_requests=10)
    assert anomaly(LogCounts(0, 0, current=21, previous=10), settings) is not None
    assert anomaly(LogCounts(0, 0, current=20, previous=10), settings) is None  # exactly twice: not over
    assert anomaly(LogCounts(0, 0, current=9, previous=0), settings) is None  # too few to call


def test_overlong_and_garbage_lines_are_counted_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "api.log"
    write_log(path, ["not json", "x" * 5000, entry(10, "ERROR"), '{"level": "ERROR"}'])
    counts = count_files(LogsProbe(files=[str(path)], max_line_bytes=1024), time.time())
    assert (counts.errors, counts.unreadable, counts.current) == (1, 3, 1)


def test_logs_config_mistakes_are_one_line(tmp_path: Path) -> None:
    def load(logs: dict[str, object]) -> object:
        path = tmp_path / "monitoring.yaml"
        path.write_text(
            yaml.safe_dump({"environments": {"local": {"targets": {}}}, "logs": logs}), encoding="utf-8"
        )
        return load_config(path, "local")

    with pytest.raises(ConfigError, match=r"monitoring.yaml: logs: needs files, elasticsearch or both$"):
        load({"window": "24h"})
    with pytest.raises(ConfigError, match=r"logs.format.pattern: pattern needs the named groups timestamp"):
        load({"files": ["/var/log/*.log"], "format": {"pattern": r"(?P<level>\w+)"}})


def test_a_line_no_number_holds_is_counted_unreadable_never_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "api.log"
    huge = "9" * 400
    write_log(
        path,
        [
            f'{{"@timestamp": {huge}, "level": "ERROR"}}',  # no float holds it
            f'{{"@timestamp": "{iso(time.time() - 10)}", "level": "INFO", "latency": {huge}}}',
            "[" * 100_000,  # nesting past the stack
            '{"@timestamp": ' + "1" * 5000 + "}",  # digits past Python's limit
            entry(10, "ERROR"),
        ],
    )
    counts = count_files(LogsProbe(files=[str(path)]), time.time())
    assert (counts.errors, counts.unreadable, counts.current) == (1, 3, 2)
    assert counts.first_unreadable == "api.log line 1"


@pytest.mark.slow
def test_a_gzip_bomb_stops_at_the_deadline(tmp_path: Path) -> None:
    path = tmp_path / "api.log.1.gz"
    # 256 MiB of empty lines in well under 1 MiB: more lines than a second reads.
    with gzip.open(path, "wb", compresslevel=9) as stream:
        newlines = b"\n" * (1 << 20)
        for _ in range(256):
            stream.write(newlines)
    assert path.stat().st_size < 1 << 20
    with pytest.raises(
        AssertionError,
        match=r"^logs .*api.log.1.gz: reading stopped at the deadline "
        r"\(logs.deadline 1s or the run deadline\) after \d+ lines$",
    ):
        count_files(LogsProbe(files=[str(path)], deadline=1), time.time())


def test_a_file_of_no_entries_names_its_first_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "api.log"
    write_log(path, ["", "not json", '{"@timestamp": ' + "9" * 400 + "}"])
    with pytest.raises(AssertionError) as caught:
        count_files(LogsProbe(files=[str(path)]), time.time())
    assert str(caught.value) == (
        f"logs {path}: none of 3 lines is an entry with a @timestamp field (logs.format), "
        "the first: api.log line 1"
    )
