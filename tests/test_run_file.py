"""``probes.json`` is written one probe at a time (slo.report.runfile): the same document,
scrubbed, failures first, whatever the number of probes."""

from __future__ import annotations

import json
from pathlib import Path

from slo import redact
from slo.evidence import RecordedValue
from slo.report.results import ProbeResult
from slo.report.runfile import write_run_file


def test_the_streamed_run_file_is_one_json_document_failures_first_and_scrubbed(tmp_path: Path) -> None:
    secret = "sk-runfile-7c2e41"
    redact.register(secret)
    results = [
        ProbeResult(
            "probes/test_a.py::test_ok", latencies=[0.01], phases={"ttfb": 0.005}, reading={"n": 1.0}
        ),
        ProbeResult(
            "probes/test_a.py::test_down", outcome="failed", reason="http_status", message=f"key={secret}"
        ),
    ]
    values = {"probes/test_a.py::test_ok": [RecordedValue("depth", 3.0, "gauge", (("queue", secret),))]}
    path = tmp_path / "reports" / "probes.json"

    write_run_file(path, results, values, {"environment": "local", "versions": {"pytest": "9"}})

    text = path.read_text(encoding="utf-8")
    assert secret not in text
    document = json.loads(text)
    assert document["schema"] == 1
    assert document["environment"] == "local"
    assert document["versions"] == {"pytest": "9"}
    down, ok = document["probes"]
    assert (down["probe"], down["outcome"], down["message"]) == (
        "probes/test_a.py::test_down",
        "failed",
        "key=***",
    )
    assert ok["latencies"] == [0.01]
    assert ok["phases"] == {"ttfb": 0.005}
    assert ok["values"] == [{"name": "depth", "kind": "gauge", "value": 3.0, "labels": {"queue": "***"}}]
    assert "reading" not in ok  # the next run's counters, not evidence
    assert not list(path.parent.glob(".*partial"))


def test_a_run_file_without_probes_is_still_a_document(tmp_path: Path) -> None:
    path = tmp_path / "probes.json"
    write_run_file(path, [], {}, {"environment": "local"})
    assert json.loads(path.read_text(encoding="utf-8"))["probes"] == []
