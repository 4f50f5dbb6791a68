"""Maintenance windows: configured and ad-hoc runs are no SLI events, and say so.

The schema and the occurrences of a recurring window are pure logic; the runs go to a real
Pushgateway, as a timer's would, and `slo maintenance` opens and closes ad-hoc windows there.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from eventually import wait_for
from test_reporting import series

from devstack.daemons import Prometheus, Pushgateway
from slo.config import ConfigError, load_config
from slo.config.maintenance import MaintenanceWindow
from slo.htmlreport.probes import probes_section
from slo.htmlreport.slos import slo_section
from slo.maintenance import main as maintenance
from slo.objectives.budget import BudgetRow, render_windows
from slo.objectives.budget import main as budget
from slo.objectives.dashboard import build_dashboard
from slo.objectives.gate import budget_conditions, junit_conditions
from slo.objectives.maintenance import ad_hoc_windows, window_names, windows_of
from slo.objectives.promql import PrometheusClient

pytest_plugins = ["pytester"]

CONFIG = """
environments:
  local:
    targets:
      api: {{url: "http://127.0.0.1:9", timeout: 1s}}
      gateway: {{url: "http://127.0.0.1:9", timeout: 1s}}
pushgateway: {{deadline: 3s, timeout: 1s}}
slos:
  - {{name: api-availability, objective: 99.9, sli: {{kind: probes, target: api}}}}
maintenance:
{windows}
"""

PROBES = """
import pytest

@pytest.mark.probe(target="api", slo="api-availability")
def test_api():
    assert False, "api down"

@pytest.mark.probe(target="gateway")
def test_gateway():
    assert False, "gateway down"
"""


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


def write_config(directory: Path, windows: str = "  []") -> Path:
    path = directory / "monitoring.yaml"
    path.write_text(CONFIG.format(windows=windows), encoding="utf-8")
    return path


# --- the schema --------------------------------------------------------------------------


def window(**fields: object) -> MaintenanceWindow:
    return MaintenanceWindow.model_validate({"name": "w", "start": "2026-01-10T02:00:00Z", **fields})


def test_a_recurring_window_opens_at_each_occurrence_for_its_duration() -> None:
    weekly = window(duration="30m", every="7d")
    start = datetime(2026, 1, 10, 2, tzinfo=UTC).timestamp()
    week = 7 * 86400
    # Three weeks later, ten minutes into the occurrence: that one, and only that one.
    now = start + 3 * week + 600
    (found,) = [w for w in weekly.occurrences(now, now + 1) if w.open_at(now)]
    assert (found.start, found.end) == (start + 3 * week, start + 3 * week + 1800)
    # Thirty-one minutes in, it is closed; before the first start there is none.
    assert not [w for w in weekly.occurrences(now + 1260, now + 1261) if w.open_at(now + 1260)]
    assert weekly.occurrences(start - 3600, start - 1) == []
    # A month lists every occurrence in it.
    assert len(weekly.occurrences(start, start + 28 * 86400)) == 4


def test_a_one_off_window_has_one_occurrence() -> None:
    once = window(duration="1h")
    start = datetime(2026, 1, 10, 2, tzinfo=UTC).timestamp()
    assert [(w.start, w.end) for w in once.occurrences(0, 4e9)] == [(start, start + 3600)]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"duration": "30m", "every": "30m"}, "every (1800 s) must be longer than duration (1800 s)"),
        ({"duration": "30m", "start": "2026-01-10T02:00:00"}, "timezone"),
        ({"duration": "0s"}, "greater than 0"),
        ({"duration": "3x"}, "invalid duration"),
    ],
)
def test_a_window_that_cannot_be_meant_is_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        window(**fields)


def test_config_errors_are_one_line_naming_the_key(tmp_path: Path) -> None:
    path = write_config(tmp_path, "  - {name: w, targets: [apl], start: 2026-01-10T02:00:00Z, duration: 30m}")
    with pytest.raises(ConfigError) as error:
        load_config(path, "local")
    assert str(error.value) == (f"{path}: maintenance[0].targets: unknown target 'apl' (known: api, gateway)")
    path = write_config(tmp_path, "  - {name: w, start: 2026-01-10T02:00:00Z, duration: 30m, every: 10m}")
    message = (
        "maintenance[0]: every (600 s) must be longer than duration (1800 s), or the window never closes"
    )
    with pytest.raises(ConfigError, match=re.escape(f": {message}") + "$"):
        load_config(path, "local")


# --- runs ----------------------------------------------------------------------------------


@pytest.fixture
def pushgateway() -> Iterator[Pushgateway]:
    with Pushgateway() as gateway:
        yield gateway


@pytest.fixture
def project(pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    write_config(pytester.path)
    pytester.makeini("[pytest]\nslo_probe_paths = .\n")
    pytester.makepyfile(test_probes=PROBES)
    monkeypatch.setenv("SLO_STATE_FILE", str(tmp_path / "state.json"))
    monkeypatch.setenv("SLO_INSTANCE", "runner-1")
    monkeypatch.delenv("PUSHGATEWAY_URL", raising=False)
    return pytester


def run(project: pytest.Pytester, pushgateway: str) -> pytest.RunResult:
    result = project.runpytest_subprocess(
        "-p", "no:locust", "-p", "no:cacheprovider", "--pushgateway", pushgateway, timeout=120
    )
    result.assert_outcomes(failed=2)
    return result


def pushed(gateway: Pushgateway) -> dict[str, dict[str, float]]:
    """Run counters and maintenance flags of the probe job by target."""
    found = series(gateway.url)
    wanted = ("synthetic_target_runs_total", "synthetic_target_failed_runs_total", "synthetic_maintenance")
    return {name: {labels["target"]: value for labels, value in found.get(name, [])} for name in wanted}


@pytest.mark.slow
def test_runs_inside_a_configured_window_advance_no_run_counter(
    project: pytest.Pytester, pushgateway: Pushgateway
) -> None:
    run(project, pushgateway.url)
    before = pushed(pushgateway)
    assert before["synthetic_target_runs_total"] == {"api": 1.0, "gateway": 1.0}
    assert before["synthetic_maintenance"] == {"api": 0.0, "gateway": 0.0}

    now = time.time()
    write_config(
        project.path, f"  - {{name: db-upgrade, targets: [api], start: '{iso(now - 60)}', duration: 1h}}"
    )
    result = run(project, pushgateway.url)
    result.stdout.fnmatch_lines(["MAINTENANCE [[]api] config window db-upgrade until *: no SLI event"])
    inside = pushed(pushgateway)
    # The api's probes ran and failed, and its counters stood still; the gateway's went on.
    assert inside["synthetic_target_runs_total"] == {"api": 1.0, "gateway": 2.0}
    assert inside["synthetic_target_failed_runs_total"] == {"api": 1.0, "gateway": 2.0}
    assert inside["synthetic_maintenance"] == {"api": 1.0, "gateway": 0.0}
    ends = series(pushgateway.url)["synthetic_maintenance_end_timestamp_seconds"]
    assert {labels["target"]: value for labels, value in ends} == {"api": pytest.approx(now - 60 + 3600)}
    run_file = json.loads((project.path / "reports" / "probes.json").read_text(encoding="utf-8"))
    assert [w["name"] for w in run_file["maintenance"]] == ["db-upgrade"]

    # The window over (it ended a second ago): the outage counts again from this run.
    write_config(
        project.path, f"  - {{name: db-upgrade, targets: [api], start: '{iso(now - 3601)}', duration: 1h}}"
    )
    run(project, pushgateway.url)
    after = pushed(pushgateway)
    assert after["synthetic_target_failed_runs_total"] == {"api": 2.0, "gateway": 3.0}
    assert after["synthetic_maintenance"] == {"api": 0.0, "gateway": 0.0}


@pytest.mark.slow
def test_an_ad_hoc_window_reaches_the_runs_until_it_is_ended(
    project: pytest.Pytester, pushgateway: Pushgateway, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(project.path / "monitoring.yaml")
    common = ["--config", config, "--pushgateway", pushgateway.url]
    assert maintenance(["start", "--target", "api", "--for", "30m", "--reason", "deploy 1.2", *common]) == 0
    assert "api (local): window open until" in capsys.readouterr().out
    assert maintenance(["list", *common]) == 0
    listed = capsys.readouterr().out
    assert "ad-hoc" in listed
    assert "deploy 1.2" in listed

    run(project, pushgateway.url).stdout.fnmatch_lines(["MAINTENANCE [[]api] ad-hoc window ad-hoc until *"])
    inside = pushed(pushgateway)
    assert "api" not in inside["synthetic_target_runs_total"]
    assert inside["synthetic_target_runs_total"] == {"gateway": 1.0}
    assert inside["synthetic_maintenance"] == {"api": 1.0, "gateway": 0.0}

    assert maintenance(["end", "--target", "api", *common]) == 0
    run(project, pushgateway.url)
    after = pushed(pushgateway)
    assert after["synthetic_target_failed_runs_total"] == {"api": 1.0, "gateway": 2.0}
    assert after["synthetic_maintenance"] == {"api": 0.0, "gateway": 0.0}


@pytest.mark.slow
def test_windows_that_cannot_be_read_leave_the_run_counting_as_usual(
    project: pytest.Pytester, tmp_path: Path
) -> None:
    # Nothing listens on port 9: neither the read nor the push gets through.
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "--pushgateway", "http://127.0.0.1:9")
    result.stdout.fnmatch_lines(
        ["WARNING: cannot read ad-hoc maintenance windows: http://127.0.0.1:9/api/v1/metrics: *; "
         "this run counts as usual"]
    )  # fmt: skip
    state = json.loads((tmp_path / "state.json").read_text(encoding="utf-8"))
    (targets,) = state["targets"].values()
    assert {name: t["runs"] for name, t in targets.items()} == {"api": 1, "gateway": 1}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["start", "--target", "apl", "--for", "30m"],
            "--target: unknown target 'apl' (known: api, gateway)",
        ),
        (["start", "--target", "api", "--for", "soon"], "invalid duration 'soon'"),
        (["start", "--target", "api", "--for", "0s"], "--for: give a duration over zero"),
        (["end", "--target", "api"], "give --pushgateway URL"),
        (["start", "--for", "30m"], "the following arguments are required: --target"),
    ],
)
def test_usage_errors_are_one_line_and_exit_4(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    config = write_config(tmp_path)
    code: object
    try:
        code = maintenance([*argv[:1], "--config", str(config), *argv[1:]])
    except SystemExit as exit:  # argparse's own errors
        code = exit.code
    assert code == 4
    error = capsys.readouterr().err.strip()
    assert message in error
    assert "\n" not in error


# --- what the budget, the gate, the dashboard and the report show ----------------------------

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="1" failures="0" errors="0" skipped="0">
<testcase classname="probes.test_health" name="test_api_health" time="0.1"/>
</testsuite></testsuites>
"""


def test_the_gate_says_when_its_probe_evidence_comes_from_a_window(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    junit.write_text(JUNIT, encoding="utf-8")
    [plain] = junit_conditions(junit)
    assert (plain.passed, plain.maintenance) == (True, ())
    window = {"name": "db-upgrade", "targets": ["api"], "start": 0, "end": 1, "source": "config"}
    (tmp_path / "probes.json").write_text(json.dumps({"maintenance": [window]}), encoding="utf-8")
    [inside] = junit_conditions(junit)
    assert inside.maintenance == ("db-upgrade (api)",)
    assert inside.evidence.endswith(
        "; ran inside maintenance window db-upgrade (api) (not counted in the SLOs)"
    )


def test_the_budget_lists_the_windows_in_each_slo_window_and_the_gate_says_so(tmp_path: Path) -> None:
    now = time.time()
    windows = (
        f"  - {{name: weekly, targets: [api], start: '{iso(now - 8 * 86400)}', duration: 1h, every: 7d}}"
    )
    config = load_config(write_config(tmp_path, windows), "local")
    found = windows_of(config, now - 30 * 86400, now)
    assert [(w.name, round(now - w.start)) for w in found] == [
        ("weekly", 8 * 86400),
        ("weekly", 86400),
    ]
    slo = config.slo("api-availability")
    assert window_names(found, slo) == ["weekly"]
    listing = render_windows(found)
    assert "maintenance windows in the SLO windows (their runs are no SLI events):" in listing
    assert listing.count("weekly  config  api") == 2

    row = BudgetRow(
        "api-availability", "local", 0.999, "30d", 43200, 0, 1.0, 1.0, coverage=1.0, maintenance=["weekly"]
    )
    [condition] = budget_conditions([row], [slo], 0.25, "local")
    assert condition.passed
    assert condition.maintenance == ("weekly",)
    assert condition.evidence.endswith("; the window holds maintenance weekly (runs not counted)")


def test_the_dashboard_shades_the_windows() -> None:
    [annotation] = build_dashboard([])["annotations"]["list"]
    assert annotation["name"] == "Maintenance windows"
    assert (
        annotation["expr"]
        == 'max by (environment, target) (synthetic_maintenance{environment=~"$environment"}) == 1'
    )
    assert annotation["titleFormat"] == "Maintenance: {{target}}"


def test_the_report_lists_the_windows_above_the_probes() -> None:
    window = {"name": "db-upgrade", "targets": ["api"], "start": 0, "end": 1800, "source": "ad-hoc"}
    probes = [{"probe": "probes/test_health.py::test_api_health", "target": "api", "outcome": "failed"}]
    page = probes_section({"maintenance": [window], "probes": probes})
    assert "Maintenance windows open at the run's start" in page
    assert (
        "<td>db-upgrade</td><td>ad-hoc</td><td>api</td>"
        "<td>1970-01-01 00:00:00Z</td><td>1970-01-01 00:30:00Z</td>" in page
    )
    assert "1 failed; in a maintenance window: no SLI event" in page


@pytest.mark.slow
def test_an_ad_hoc_window_reaches_budget_and_report_through_prometheus(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    with (
        Pushgateway() as gateway,
        Prometheus(scrape_targets={"pushgateway": gateway.url}) as prometheus,
        PrometheusClient(prometheus.url) as client,
    ):
        common = ["--config", str(config), "--pushgateway", gateway.url]
        assert (
            maintenance(["start", "--target", "api", "--for", "2h", "--reason", "db upgrade", *common]) == 0
        )
        wait_for(lambda: client.query("synthetic_maintenance_window_end_timestamp_seconds"), "the window")
        [window] = ad_hoc_windows(client, "local")
        assert (window.targets, window.reason, round(window.end - window.start)) == (
            ("api",),
            "db upgrade",
            7200,
        )

        capsys.readouterr()
        assert budget(["--config", str(config), "--prometheus", prometheus.url]) == 0
        out = capsys.readouterr().out
        assert "maintenance windows in the SLO windows (their runs are no SLI events):" in out
        assert re.search(r"^ad-hoc +ad-hoc +api +\S+ \S+ +\S+ \S+ +db upgrade$", out, flags=re.MULTILINE)

        slos = load_config(config, "local").slos
        page = slo_section(prometheus.url, slos, "local", load_config(config, "local"))
        assert "<h3>Maintenance windows</h3>" in page
        assert "<td>db upgrade</td>" in page


def test_list_shows_the_configured_windows_open_now_without_a_pushgateway(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    now = time.time()
    config = write_config(
        tmp_path,
        f"  - {{name: open-now, start: '{iso(now - 60)}', duration: 1h}}\n"
        f"  - {{name: over, targets: [api], start: '{iso(now - 7200)}', duration: 1h}}",
    )
    assert maintenance(["list", "--config", str(config)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["WINDOW", "SOURCE", "TARGETS", "FROM", "UNTIL", "REASON"]
    assert lines[1].split()[:3] == ["open-now", "config", "all"]
    assert lines[2:] == ["slo maintenance: no Pushgateway named (--pushgateway): ad-hoc windows not read"]
