"""A probe's evidence is one record: built in the worker, serialized once, decoded once.

The record carries the failure reason and message taken from the exception (never read back
out of the report's text, which plugins and ``--tb`` styles rewrite), the values, the note
and the readings the `probe` fixture gathered; it reaches the controller under xdist too.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from slo import redact
from slo.evidence import EVIDENCE_PROPERTY, Evidence, RecordedValue, of_report
from slo.outcomes import OUTCOMES, WORKED

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]

CONFIG = """
version: 1
environments:
  local:
    targets:
      api: {url: "http://127.0.0.1:9", timeout: 1s}
"""

PROBES = """
import pytest

@pytest.mark.probe(target="api")
def test_fails(probe):
    probe.value("queue_depth", 7, queue="jobs")
    probe.keep_reading({"requests": 10, "server": "a1b2"})
    assert 1 == 2, "queue too deep for the person on call"

@pytest.mark.probe(target="api")
def test_errors(probe):
    raise ValueError("broken helper")

@pytest.mark.probe(target="api")
def test_passes(probe):
    probe.note("3 sessions")
    probe.value("sessions", 3)

@pytest.mark.probe(target="api")
def test_unreachable(probe):
    probe.http().get("/health")
"""

#: A plugin that rewrites every report's text: the evidence must not depend on it.
REWRITING_CONFTEST = """
import pytest

@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        report.longrepr = "E   rewritten by another plugin"
    return report
"""


def test_the_record_survives_its_one_encoding() -> None:
    record = Evidence(target="api", slo="s", kind="budget", latencies=[0.1], phases={"dns": 0.01})
    assert record.add_value("cost_usd", 0.5, "counter", {"model": "m"}) is None
    record.reading = {"requests": 10.0, "run_id": "abc"}
    record.reason, record.message, record.note = "http_status", "api GET / returned 500", "n"
    report = SimpleNamespace(user_properties=[("other", "x"), (EVIDENCE_PROPERTY, record.encode())])
    assert of_report(report) == record
    assert of_report(SimpleNamespace(user_properties=[("other", "x")])) is None
    assert record.values == [RecordedValue("cost_usd", 0.5, "counter", (("model", "m"),))]


def test_a_bad_value_is_refused_and_not_recorded() -> None:
    record = Evidence()
    assert "would shadow" in str(record.add_value("probe_success", 1, "gauge", {}))
    assert record.values == []


def test_the_outcomes_and_which_of_them_worked() -> None:
    assert OUTCOMES == ("passed", "degraded", "failed", "error", "skipped")
    worked = sorted(WORKED)
    assert worked == ["degraded", "passed"], "slow is not down: a degraded run is a good availability event"


def test_the_vocabulary_modules_are_leaves() -> None:
    """`slo.outcomes` imports nothing of slo; `slo.evidence` only the vocabulary."""
    for module, allowed in (("outcomes", set()), ("evidence", {"slo.outcomes"})):
        tree = ast.parse((ROOT / "slo" / f"{module}.py").read_text())
        imported = {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("slo")
        }
        # A TYPE_CHECKING import of a type is not a dependency at run time.
        imported.discard("slo.probe.client")
        assert imported <= allowed, module


@pytest.mark.slow
@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_message_reason_values_note_and_reading_reach_the_run_file(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: list[str]
) -> None:
    pytester.makefile(".yaml", monitoring=CONFIG)
    pytester.makeini("[pytest]\nslo_probe_paths = .\naddopts = -p no:locust -p no:cacheprovider\n")
    pytester.makepyfile(test_run=PROBES)
    pytester.makeconftest(REWRITING_CONFTEST)
    monkeypatch.setenv("SLO_STATE_FILE", str(tmp_path / "state.json"))
    result = pytester.runpytest_subprocess("--no-push", *workers, timeout=120)
    result.assert_outcomes(passed=1, failed=3)
    document = json.loads((pytester.path / "reports" / "probes.json").read_text())
    probes = {entry["probe"].split("::")[-1]: entry for entry in document["probes"]}
    fails, errors = probes["test_fails"], probes["test_errors"]
    assert (fails["reason"], fails["message"]) == ("assertion", "queue too deep for the person on call")
    assert fails["values"] == [
        {"name": "queue_depth", "kind": "gauge", "value": 7.0, "labels": {"queue": "jobs"}}
    ]
    assert (errors["reason"], errors["message"]) == ("error", "ValueError: broken helper")
    assert (probes["test_passes"]["outcome"], probes["test_passes"]["note"]) == ("passed", "3 sessions")
    unreachable = probes["test_unreachable"]
    assert (unreachable["reason"], unreachable["target"]) == ("connect", "api")
    assert "127.0.0.1:9" in unreachable["message"]
    assert "rewritten" not in json.dumps(document)
    assert not (tmp_path / "state.json").exists(), "a run that does not push keeps nothing"


OWN_PROBE_FIXTURE = """
import pytest

@pytest.fixture
def probe():
    return "the project's own"

@pytest.mark.probe(target="api")
def test_own_fixture_and_http(probe, http, probe_value):
    assert probe == "the project's own"
    probe_value("sessions", 2)
    http().get("/health")
"""


@pytest.mark.slow
def test_a_project_fixture_named_probe_leaves_http_and_probe_value_working(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makefile(".yaml", monitoring=CONFIG)
    pytester.makeini("[pytest]\nslo_probe_paths = .\naddopts = -p no:locust -p no:cacheprovider\n")
    pytester.makepyfile(test_run=OWN_PROBE_FIXTURE)
    monkeypatch.setenv("SLO_STATE_FILE", str(tmp_path / "state.json"))
    pytester.runpytest_subprocess("--no-push", timeout=120).assert_outcomes(failed=1)
    (entry,) = json.loads((pytester.path / "reports" / "probes.json").read_text())["probes"]
    assert (entry["reason"], entry["target"]) == ("connect", "api")
    assert [value["name"] for value in entry["values"]] == ["sessions"]


def test_evidence_is_encoded_with_its_secrets_masked_in_one_pass() -> None:
    # The plugin encodes a probe's evidence through slo.redact.scrub_values: the JSON is made
    # once, already scrubbed, and nothing parses it again to scrub it.
    secret = "sk-evidence-4b1d9e"
    redact.register(secret)
    record = Evidence(target="api", message=f"GET /x?key={secret} failed", reading={"k": secret, "n": 1.0})
    encoded = record.encode(redact.scrub_values)
    assert secret not in encoded
    decoded = Evidence.decode(encoded)
    assert decoded.message == "GET /x?key=*** failed"
    assert decoded.reading == {"k": "***", "n": 1.0}


def test_decoded_phase_names_are_one_string_each_for_the_whole_run() -> None:
    # The collector keeps every probe's phases to the end of the run: thousands of checks
    # must not each keep their own copies of "connect", "ttfb", ... (json makes new keys per
    # document).
    first, second = (
        Evidence.decode(Evidence(phases={"connect": 0.001, "ttfb": 0.002}).encode()) for _ in range(2)
    )
    assert first.phases == {"connect": 0.001, "ttfb": 0.002}
    for name_a, name_b in zip(first.phases, second.phases, strict=True):
        assert name_a is name_b
