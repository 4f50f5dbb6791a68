"""`slo report` and `slo load`'s page: what a run left in reports/, as one offline HTML page,
opened in a real headless Chromium (tests/browser.py) that must see the verdict, the failing
probe and drawn charts, and must ask the network for nothing.

The scenario the issue asks for runs once per module: probes against an API faulted to 503,
a short `slo load`, `slo gate`, then `slo report`. Screenshots are kept under reports/.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from browser import Seen, open_page
from eventually import wait_for
from hypothesis import given
from hypothesis import strategies as st
from probe_project import INI, PROBES_DIR, REPO_ROOT, probe_config

from devstack.daemons import Prometheus, Pushgateway
from devstack.refstack import ReferenceStack
from slo.html.markup import page
from slo.html.svg import Bar, Mark, bars, line_chart, percentile_curve, waterfall
from slo.htmlreport.cli import report_sections
from slo.htmlreport.inputs import Inputs
from slo.loadgate.histogram import LatencyHistogram
from slo.loadgate.page import curve_points
from slo.objectives.promql import PrometheusClient
from slo.report.runfile import git_revision

SCREENSHOTS = REPO_ROOT / "reports" / "screenshots"
#: Short and light, as in test_load_gate.py: the other xdist worker keeps its CPU.
QUICK_LOAD = {
    "users": 5,
    "spawn_rate": 50,
    "warmup": "500ms",
    "duration": "3s",
    "think_time_min": "20ms",
    "think_time_max": "40ms",
    # Streamed answers too, so the page draws first-token and tokens/s curves.
    "scenarios": {"api_health": 2, "chat_stream": 1, "sandbox_status": None, "chat_completion": None},
    "endpoints": {"POST /v1/chat/completions": {"ttft_p95": "2s", "tokens_per_second_p5": 1}},
}
#: The size the issue allows a page ("at most a few hundred KB").
MAX_PAGE_BYTES = 400 * 1024


def slo(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "slo", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def assert_offline_and_drawn(seen: Seen) -> None:
    assert seen.requests == [], "the page asked the network"
    assert seen.console_errors == []
    assert seen.charts, "no chart on the page"
    for chart in seen.charts:
        assert chart.width > 0, chart
        assert chart.height > 0, chart
        assert chart.drawn >= 1, f"chart {chart.title!r} drew nothing"


@dataclass
class Run:
    directory: Path
    report: subprocess.CompletedProcess[str]


def probe_run(project: Path, pushgateway: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "probes/", "--pushgateway", pushgateway],
        cwd=project,
        env={**os.environ, "SLO_STATE_FILE": str(project / "state.json")},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """A healthy probe run, then one against an API that answers 503 (both pushed to a real
    Pushgateway that a real Prometheus scrapes), a short load run, the gate, and the report
    with the SLOs from Prometheus: each as a user runs them, in the project directory."""
    project = tmp_path_factory.mktemp("report")
    shutil.copytree(PROBES_DIR, project / "probes", ignore=shutil.ignore_patterns("__pycache__"))
    (project / "tox.ini").write_text(INI)
    with (
        ReferenceStack("--seed", "7") as stack,
        Pushgateway() as gateway,
        Prometheus(scrape_targets={"pushgateway": gateway.url}) as prometheus,
        PrometheusClient(prometheus.url) as client,
    ):
        config = probe_config(stack, load=QUICK_LOAD)
        (project / "monitoring.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        healthy = probe_run(project, gateway.url)
        assert healthy.returncode == 0, healthy.stdout + healthy.stderr
        wait_for(lambda: client.query("synthetic_target_runs_total"), "the first scrape")
        stack.set_faults("api", error_rate=1, status=503)
        faulty = probe_run(project, gateway.url)
        assert faulty.returncode == 1, faulty.stdout + faulty.stderr
        wait_for(
            lambda: client.query("increase(synthetic_target_failed_runs_total[5m]) > 0"),
            "Prometheus to see the failed run",
        )
        stack.clear_faults("api")
        load = slo(project, "load", "--locustfile", str(REPO_ROOT / "load" / "locustfile.py"))
        assert "summary:" in load.stdout, load.stdout + load.stderr
        gate = slo(project, "gate", "--junit", "reports/junit.xml", "--load", "reports/load/summary.json")
        assert gate.returncode == 1, gate.stdout + gate.stderr
        return Run(project, slo(project, "report", "--prometheus", prometheus.url))


@pytest.mark.slow
def test_the_report_shows_the_failed_gate_the_503_and_drawn_charts(run: Run) -> None:
    assert run.report.returncode == 0, run.report.stderr
    page = run.directory / "reports" / "index.html"
    assert page.stat().st_size < MAX_PAGE_BYTES
    seen = open_page(page, SCREENSHOTS / "report-index.png")
    assert seen.verdict.startswith("FAIL")
    assert "test_api_health" in seen.text
    assert "503" in seen.text
    assert_offline_and_drawn(seen)


@pytest.mark.slow
def test_the_probe_run_left_its_evidence_in_probes_json(run: Run) -> None:
    document = json.loads((run.directory / "reports" / "probes.json").read_text())
    health = next(p for p in document["probes"] if p["probe"].endswith("test_api_health"))
    assert health["outcome"] == "failed"
    assert health["target"] == "api"
    assert "503" in health["message"]
    assert set(health["phases"]) >= {"connect", "ttfb", "transfer"}
    assert document["environment"] == "local"
    assert document["counts"]["failed"] >= 1
    # Failures first, so a reader (and the page) meets them before the passing probes.
    outcomes = [p["outcome"] for p in document["probes"]]
    assert outcomes.index("passed") > outcomes.index("failed")


@pytest.mark.slow
def test_the_load_page_shows_p95_and_a_drawn_curve(run: Run) -> None:
    page = run.directory / "reports" / "load" / "index.html"
    assert page.stat().st_size < MAX_PAGE_BYTES
    seen = open_page(page, SCREENSHOTS / "load-index.png")
    assert "P95" in seen.text
    assert "PASS" in seen.text
    titles = [chart.title for chart in seen.charts]
    assert any("total: latency by percentile" in title for title in titles)
    assert any("time to first token by percentile" in title for title in titles)
    assert any("output tokens per second by percentile" in title for title in titles)
    assert_offline_and_drawn(seen)


@pytest.mark.slow
def test_the_report_carries_the_load_section_with_its_threshold_marked(run: Run) -> None:
    html = (run.directory / "reports" / "index.html").read_text()
    assert 'id="load"' in html
    assert "p95 limit 2000 ms" in html  # the threshold line on the total's curve
    assert 'class="bound"' in html  # its confidence interval


@pytest.mark.slow
def test_the_report_shows_each_slo_budget_from_prometheus(run: Run) -> None:
    html = (run.directory / "reports" / "index.html").read_text()
    slos = html[html.index('id="slos"') :]
    assert "api-availability" in slos
    # One bad run of two spends a 99.9 % budget many times over: the burn bars show it.
    assert "burn rate by alert window" in slos
    # The page alert's windows (scaled to the 30-day window) with their factor, both burning over it.
    assert "14.4x" in slos
    assert "BOTH OVER" in slos
    assert "Prometheus:" not in slos  # no query failed


# --- hostile input, unknown fields, usage --------------------------------------------------------

HOSTILE = '<script>fetch("http://127.0.0.1:9/x")</script><img src="http://127.0.0.1:9/y.png">'


def write_run(reports: Path, **extra: Any) -> None:
    probe = {
        "probe": "probes/test_health.py::test_api_health",
        "outcome": "failed",
        "target": "api",
        "reason": "http_status",
        "message": f"api GET /health returned 500: {HOSTILE} token=TOPSECRET-VALUE-42",
        "duration": 0.012,
        "phases": {"dns": 0.001, "connect": 0.002, "tls": 0.0, "ttfb": 0.006, "transfer": 0.003},
        "added_by_a_newer_version": {"why": "unknown fields are shown, not dropped"},
    }
    document = {"schema": 1, "environment": "local", "probes": [probe], **extra}
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "probes.json").write_text(json.dumps(document))


def write_config(directory: Path) -> Path:
    config = {
        "environments": {
            "local": {"targets": {"api": {"url": "http://127.0.0.1:9", "token": "${REPORT_TEST_TOKEN}"}}}
        }
    }
    path = directory / "monitoring.yaml"
    path.write_text(json.dumps(config))
    return path


@pytest.mark.slow
def test_a_hostile_message_is_text_the_secret_is_masked_and_nothing_is_fetched(tmp_path: Path) -> None:
    write_run(tmp_path / "reports", baseline={"verdict": "regression"})
    write_config(tmp_path)
    done = slo(tmp_path, "report", env={"REPORT_TEST_TOKEN": "TOPSECRET-VALUE-42"})
    assert done.returncode == 0, done.stderr
    html = (tmp_path / "reports" / "index.html").read_text()
    assert "TOPSECRET" not in html
    assert "<script" not in html
    assert "<img" not in html
    seen = open_page(tmp_path / "reports" / "index.html", tmp_path / "hostile.png")
    assert HOSTILE in seen.text  # shown as the text it is
    assert "more probe fields: added_by_a_newer_version" in seen.text
    assert "more run fields: baseline" in seen.text
    assert seen.verdict.startswith("NO GATE VERDICT")
    assert_offline_and_drawn(seen)


def test_unknown_load_summary_fields_are_shown_not_fatal(tmp_path: Path) -> None:
    summary = {
        "verdict": "fail",
        "reason": "total p95: over",
        "thresholds": [
            {"name": "total p95", "endpoint": "total", "metric": "p95", "verdict": "fail", "baseline_ms": 812}
        ],
        "endpoints": {"total": {"requests": 3, "new_figure": 1}},
        "baseline": {"compared_to": "v1.2", "regressions": ["total p95"]},
    }
    (tmp_path / "reports" / "load").mkdir(parents=True)
    (tmp_path / "reports" / "load" / "summary.json").write_text(json.dumps(summary))
    done = slo(tmp_path, "report")
    assert done.returncode == 0, done.stderr
    html = (tmp_path / "reports" / "index.html").read_text()
    assert "more load summary fields: baseline" in html
    assert "v1.2" in html
    assert "more total p95 threshold fields: baseline_ms" in html
    assert "more total endpoint fields: new_figure" in html
    assert "no histogram of this endpoint" in html


def test_a_thousand_probes_make_a_page_of_a_few_hundred_kb() -> None:
    phases = {"dns": 0.001, "connect": 0.002, "tls": 0.003, "ttfb": 0.2, "transfer": 0.01}
    probes = [
        {
            "probe": f"probes/test_checks.py::test_check[endpoint-{index}]",
            "outcome": "failed" if index % 10 == 0 else "passed",
            "target": f"service-{index % 7}",
            "reason": "http_status" if index % 10 == 0 else None,
            "message": "x" * 300 if index % 10 == 0 else "",
            "duration": 0.2,
            "phases": phases,
        }
        for index in range(1000)
    ]
    html = page("report", report_sections(Inputs(probes={"probes": probes}), Path("reports")))
    assert len(html.encode()) < MAX_PAGE_BYTES
    assert "test_check[endpoint-999]" in html  # every probe is listed, if not drawn


def test_nothing_to_report_is_one_line_and_exit_4(tmp_path: Path) -> None:
    done = slo(tmp_path, "report")
    assert done.returncode == 4
    assert done.stderr.count("\n") == 1
    assert "nothing to report in reports" in done.stderr
    assert not (tmp_path / "reports" / "index.html").exists()


def test_a_broken_config_is_one_line_and_exit_4(tmp_path: Path) -> None:
    write_run(tmp_path / "reports")
    (tmp_path / "monitoring.yaml").write_text("environments: [\n")
    done = slo(tmp_path, "report")
    assert done.returncode == 4
    assert done.stderr.count("\n") == 1
    assert "monitoring.yaml" in done.stderr


def test_the_page_goes_into_the_reports_directory_unless_told(tmp_path: Path) -> None:
    write_run(tmp_path / "nightly")
    assert slo(tmp_path, "report", "--reports", "nightly").returncode == 0
    assert "test_api_health" in (tmp_path / "nightly" / "index.html").read_text()
    assert slo(tmp_path, "report", "--reports", "nightly", "-o", "site/run.html").returncode == 0
    assert (tmp_path / "site" / "run.html").is_file()


def test_a_config_asked_for_must_exist(tmp_path: Path) -> None:
    write_run(tmp_path / "reports")
    done = slo(tmp_path, "report", "--config", "elsewhere.yaml")
    assert done.returncode == 4
    assert done.stderr.count("\n") == 1
    assert "elsewhere.yaml" in done.stderr


def test_the_curve_follows_the_samples_to_the_largest() -> None:
    histogram = LatencyHistogram()
    for milliseconds in range(1, 1001):  # 1 ms .. 1000 ms, one each
        histogram.record(float(milliseconds))
    points = curve_points(histogram)
    values = [value for _, value in points]
    assert values == sorted(values)
    # The first point is the smallest sample and the last the largest (three significant digits).
    assert values[0] == pytest.approx(1.0, rel=1e-3)
    assert values[-1] == pytest.approx(1000.0, rel=1e-3)
    # Nearest rank: P95 of 1..1000 is the 950th sample, whichever point lands there.
    at_p95 = min(points, key=lambda point: abs(point[0] - 0.95))
    assert at_p95[0] == pytest.approx(0.95, abs=0.01)
    assert at_p95[1] == pytest.approx(1000 * at_p95[0], rel=0.02)


@pytest.mark.slow
def test_the_browser_check_catches_a_page_that_fetches(tmp_path: Path) -> None:
    """The guard the page tests rely on can fail: a page that loads an image is caught."""
    page = tmp_path / "fetching.html"
    page.write_text('<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/x.png"></body></html>')
    seen = open_page(page, tmp_path / "fetching.png")
    assert seen.requests == ["http://127.0.0.1:9/x.png"]


@pytest.mark.slow
def test_every_kind_of_chart_draws_in_the_browser(tmp_path: Path) -> None:
    """Each chart the page can hold, also those the scenario's data cannot reach (a budget
    over a window with history, a limit within the curve, a negative budget)."""
    charts = [
        waterfall({"dns": 0.001, "connect": 0.002, "tls": 0.004, "ttfb": 0.2, "transfer": 0.01}, "phases"),
        bars([Bar("claude", 0.4, "400 ms"), Bar("gpt", 1.2, "1200 ms")], "first token", 1.0, "limit"),
        percentile_curve(
            [(0.0, 100.0), (0.9, 900.0), (0.99, 1900.0), (0.999, 2500.0)],
            "latency",
            "ms",
            [Mark("p95", 0.95, 2000.0, 1500.0, 1400.0, 1600.0, "pass")],
        ),
        line_chart([(30 * 86400.0, 1.0), (15 * 86400.0, 0.4), (0.0, -0.2)], "budget left"),
    ]
    document = tmp_path / "charts.html"
    document.write_text(page("charts", charts))
    seen = open_page(document, tmp_path / "charts.png")
    assert [chart.title for chart in seen.charts] == ["phases", "first token", "latency", "budget left"]
    assert_offline_and_drawn(seen)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


def documents(*keys: str) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with some of the keys a writer uses, holding anything at all."""
    return st.fixed_dictionaries({}, optional=dict.fromkeys(keys, JSON))


@given(
    probes=st.none() | documents("probes", "counts", "versions", "environment", "duration_s"),
    gate=st.none() | documents("verdict", "conditions", "generated_at"),
    load=st.none()
    | documents("verdict", "thresholds", "endpoints", "errors", "warnings", "confidence", "reports"),
)
def test_any_json_in_the_files_makes_a_page_never_a_traceback(
    probes: dict[str, Any] | None, gate: dict[str, Any] | None, load: dict[str, Any] | None
) -> None:
    sections = report_sections(Inputs(probes=probes, gate=gate, load=load), Path("reports"))
    assert page("report", sections).startswith("<!DOCTYPE html>")


# --- the git revision in the run's metadata ------------------------------------------------------


def git(directory: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-C", str(directory), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=True).stdout.strip()


@pytest.fixture
def repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    if shutil.which("git") is None:
        pytest.skip("no git on this machine to make a repository with")
    for name in ("GITHUB_SHA", "CI_COMMIT_SHA", "GIT_COMMIT", "BUILD_SOURCEVERSION"):
        monkeypatch.delenv(name, raising=False)
    repo = tmp_path / "repo"
    (repo / "probes").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "commit", "-q", "--allow-empty", "-m", "one")
    return repo


def test_the_revision_is_read_from_loose_and_packed_refs(repository: Path) -> None:
    head = git(repository, "rev-parse", "HEAD")
    assert git_revision(repository / "probes") == head[:12]
    git(repository, "pack-refs", "--all")
    assert not (repository / ".git" / "refs" / "heads" / "main").exists()
    assert git_revision(repository / "probes") == head[:12]


def test_the_revision_of_a_worktree_and_of_a_detached_head(repository: Path, tmp_path: Path) -> None:
    first = git(repository, "rev-parse", "HEAD")
    git(repository, "commit", "-q", "--allow-empty", "-m", "two")
    git(repository, "worktree", "add", "-q", str(tmp_path / "other"), "-b", "other", first)
    assert git_revision(tmp_path / "other") == first[:12]
    git(repository, "checkout", "-q", "--detach", first)
    assert git_revision(repository) == first[:12]


def test_a_ci_variable_names_the_revision(repository: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567")
    assert git_revision(repository) == "0123456789abcdef0123456789abcdef01234567"


# --- probes.json from a probe run -----------------------------------------------------------------

RUN_CONFIG = """
environments:
  local:
    targets:
      gateway: {url: "http://127.0.0.1:9", timeout: 1s}
"""
RUN_PROBES = """
import pytest

@pytest.mark.probe(target="gateway")
def test_unreachable(http):
    http().get("/health")

@pytest.mark.probe(target="gateway")
def test_passes():
    pass
"""


@pytest.mark.slow
def test_a_run_without_a_push_writes_its_evidence_beside_its_junit(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makefile(".yaml", monitoring=RUN_CONFIG)
    pytester.makeini("[pytest]\nslo_probe_paths = .\naddopts = -p no:locust -p no:cacheprovider\n")
    pytester.makepyfile(test_run=RUN_PROBES)
    monkeypatch.setenv("SLO_STATE_FILE", str(tmp_path / "state.json"))
    result = pytester.runpytest_subprocess("--no-push", "--junit-xml", "out/run.xml", timeout=120)
    result.assert_outcomes(passed=1, failed=1)
    document = json.loads((pytester.path / "out" / "probes.json").read_text())
    failed, passed = document["probes"]  # failures first
    assert (failed["probe"], failed["outcome"], failed["reason"]) == (
        "test_run.py::test_unreachable",
        "failed",
        "connect",
    )
    assert "127.0.0.1:9" in failed["message"]
    assert (passed["probe"], passed["outcome"]) == ("test_run.py::test_passes", "passed")
    assert document["counts"] == {"passed": 1, "degraded": 0, "failed": 1, "skipped": 0, "error": 0}
    assert document["environment"] == "local"


@pytest.mark.slow
def test_a_degraded_probe_and_a_maintenance_window_are_seen_in_the_browser(tmp_path: Path) -> None:
    slow = "api GET /health took 301 ms, over degraded_after 100 ms"
    probe: dict[str, Any] = {"probe": "probes/test_health.py::test_api_health", "outcome": "degraded"}
    probe["target"] = "api"
    probe["phases"] = {"dns": 0.0, "connect": 0.001, "tls": 0.0, "ttfb": 0.298, "transfer": 0.002}
    window = {"name": "db-upgrade", "targets": ["api"], "start": 0, "end": 1800, "source": "ad-hoc"}
    document = {
        "schema": 1,
        "environment": "local",
        "probes": [{**probe, "message": slow}],
        "maintenance": [window],
    }
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "probes.json").write_text(json.dumps(document))
    write_config(tmp_path)
    done = slo(tmp_path, "report", env={"REPORT_TEST_TOKEN": "unused"})
    assert done.returncode == 0, done.stderr
    seen = open_page(reports / "index.html", tmp_path / "degraded.png")
    assert slow in seen.text
    assert "api 1 degraded; in a maintenance window: no SLI event" in seen.text
    assert "Maintenance windows open at the run's start" in seen.text
    assert "db-upgrade" in seen.text
    assert "1970-01-01 00:30:00Z" in seen.text
    assert "more probe fields" not in seen.text
    assert_offline_and_drawn(seen)
