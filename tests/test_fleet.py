"""A fleet of runners: where each one is, splitting a suite, probes that leave it, retiring a
runner. Probe runs go to a real Pushgateway and are read back through its API."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from test_reporting import CONFIG, PROBES, by_probe, run, series

from devstack.daemons import Pushgateway
from slo.config.schema import Config
from slo.objectives.budget import BudgetRow, LocationRow, render_table
from slo.objectives.gate import budget_conditions
from slo.objectives.rules.cli import explain
from slo.objectives.rules.quorum import nth_highest
from slo.report.retire import main as retire
from slo.report.retire import matching
from slo.shard import in_shard, parse_shard

pytest_plugins = ["test_reporting"]


@pytest.mark.slow
def test_a_runner_in_a_location_labels_every_push(
    project: pytest.Pytester, pushgateway: Pushgateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLO_LOCATION", "eu-west")
    result = run(project, "--pushgateway", pushgateway.url)
    result.stdout.fnmatch_lines(["slo: instance runner-1 (SLO_INSTANCE*), location eu-west (SLO_LOCATION*)"])
    result.stdout.fnmatch_lines(["*pushed 4 probe results to */instance/runner-1/location/eu-west in *"])
    found = series(pushgateway.url)
    [(labels, runs)] = [
        entry for entry in found["synthetic_target_runs_total"] if entry[0]["target"] == "api"
    ]
    assert (labels["location"], labels["instance"], runs) == ("eu-west", "runner-1", 1.0)
    assert {labels["location"] for labels, _ in found["synthetic_probe_success"]} == {"eu-west"}


@pytest.mark.slow
def test_the_location_flag_beats_the_environment_and_the_config(
    project: pytest.Pytester, pushgateway: Pushgateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.makefile(
        ".yaml", monitoring=CONFIG.replace("  deadline: 3s\n", "  deadline: 3s\n  location: from-file\n")
    )
    run(project, "--pushgateway", pushgateway.url)
    assert {labels["location"] for labels, _ in series(pushgateway.url)["synthetic_target_runs_total"]} == {
        "from-file"
    }
    monkeypatch.setenv("SLO_LOCATION", "from-env")
    run(project, "--pushgateway", pushgateway.url, "--slo-location", "from-flag")
    locations = {labels["location"] for labels, _ in series(pushgateway.url)["synthetic_target_runs_total"]}
    assert "from-flag" in locations
    assert "from-env" not in locations


@pytest.mark.slow
def test_a_probe_deleted_while_failing_is_no_longer_reported_from_the_next_run(
    project: pytest.Pytester, pushgateway: Pushgateway
) -> None:
    run(project, "--pushgateway", pushgateway.url, fail=True)
    found = series(pushgateway.url)
    assert by_probe(found, "synthetic_probe_success")["test_fails_when_asked"] == 0.0
    project.makepyfile(test_probes=PROBES.replace("def test_fails_when_asked", "def _deleted"))
    result = run(project, "--pushgateway", pushgateway.url)
    result.stdout.fnmatch_lines(
        ["no longer in the suite, last results dropped: test_probes.py::test_fails_when_asked"]
    )
    found = series(pushgateway.url)
    for gauge in ("synthetic_probe_success", "synthetic_probe_last_failure_timestamp_seconds"):
        assert "test_fails_when_asked" not in by_probe(found, gauge), gauge
    # Its counters stay: the events it counted are part of the SLI's history.
    assert by_probe(found, "synthetic_probe_runs_total")["test_fails_when_asked"] == 1.0
    # A run of another file alone says nothing about this one: test_passes keeps its result.
    project.makepyfile(
        test_other="import pytest\n\n@pytest.mark.probe(target='api')\ndef test_o():\n    pass\n"
    )
    run(project, "--pushgateway", pushgateway.url, "test_other.py")
    assert by_probe(series(pushgateway.url), "synthetic_probe_success")["test_passes"] == 1.0


@pytest.mark.slow
def test_with_xdist_the_workers_collection_tells_which_probes_left(
    project: pytest.Pytester, pushgateway: Pushgateway
) -> None:
    run(project, "-n", "2", "--pushgateway", pushgateway.url, fail=True)
    project.makepyfile(test_probes=PROBES.replace("def test_fails_when_asked", "def _deleted"))
    result = run(project, "-n", "2", "--pushgateway", pushgateway.url)
    result.stdout.fnmatch_lines(
        ["no longer in the suite, last results dropped: test_probes.py::test_fails_when_asked"]
    )
    found = series(pushgateway.url)
    assert "test_fails_when_asked" not in by_probe(found, "synthetic_probe_success")
    assert by_probe(found, "synthetic_probe_success")["test_passes"] == 1.0


@pytest.mark.slow
def test_shards_split_the_probes_between_runners(project: pytest.Pytester) -> None:
    many = "\n".join(f"@pytest.mark.probe(target='api')\ndef test_many_{i}():\n    pass\n" for i in range(20))
    project.makepyfile(test_many=f"import pytest\n{many}")
    ran = []
    for shard in ("1/2", "2/2"):
        result = run(project, "--no-push", "--slo-shard", shard, "test_many.py", "-v")
        ran.append(
            {line.split("::")[1].split()[0] for line in result.outlines if "PASSED" in line and "::" in line}
        )
    assert ran[0], "both shards got probes"
    assert ran[1], "both shards got probes"
    assert ran[0].isdisjoint(ran[1])
    assert ran[0] | ran[1] == {f"test_many_{i}" for i in range(20)}


def test_a_bad_shard_is_one_line_and_exit_4(project: pytest.Pytester) -> None:
    result = run(project, "--no-push", "--slo-shard", "3/2")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--slo-shard: expected I/N with 1 <= I <= N (e.g. 2/3), got '3/2'*"])
    assert "Traceback" not in result.stderr.str()


def test_shards_are_stable_and_cover_every_probe() -> None:
    ids = [f"probes/test_{i}.py::test_x" for i in range(200)]
    shards = [parse_shard(f"{i}/3", "flag") for i in (1, 2, 3)]
    owners = [[shard for shard in shards if in_shard(node_id, shard)] for node_id in ids]
    assert all(len(owner) == 1 for owner in owners)
    # zlib.crc32 is the same on every machine and run (unlike hash() of a str).
    assert in_shard("probes/test_health.py::test_api_health", (2, 3)) is in_shard(
        "probes/test_health.py::test_api_health", (2, 3)
    )
    with pytest.raises(ValueError, match="SLO_SHARD environment variable: expected I/N"):
        parse_shard("two/three", "SLO_SHARD environment variable")


@pytest.mark.slow
def test_retire_deletes_a_location_and_dry_run_deletes_nothing(
    project: pytest.Pytester,
    pushgateway: Pushgateway,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for instance, location in (("runner-1", "eu-west"), ("runner-2", "us-east")):
        monkeypatch.setenv("SLO_INSTANCE", instance)
        monkeypatch.setenv("SLO_LOCATION", location)
        run(project, "--pushgateway", pushgateway.url)
    config = str(project.path / "monitoring.yaml")

    def instances() -> set[str]:
        return {labels["instance"] for labels, _ in series(pushgateway.url)["push_time_seconds"]}

    assert instances() == {"runner-1", "runner-2"}
    capsys.readouterr()
    args = ["--config", config, "--pushgateway", pushgateway.url]
    assert retire([*args, "--location", "us-east", "--dry-run"]) == 0
    assert "runner-2  us-east   would delete" in capsys.readouterr().out
    assert instances() == {"runner-1", "runner-2"}
    assert retire([*args, "--location", "us-east"]) == 0
    assert "deleted" in capsys.readouterr().out
    assert instances() == {"runner-1"}
    assert retire([*args, "--instance", "gone"]) == 0
    assert "no group" in capsys.readouterr().out
    assert retire([*args, "--instance", "runner-1"]) == 0
    assert "push_time_seconds" not in series(pushgateway.url)


def test_retire_needs_something_to_retire(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert retire(["--pushgateway", "http://127.0.0.1:9"]) == 4
    assert capsys.readouterr().err == "slo retire: give --instance NAME or --location NAME (what to retire)\n"


def test_an_unreachable_pushgateway_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    root = Path(__file__).resolve().parent.parent
    code = retire(
        ["--config", str(root / "monitoring.yaml"), "--pushgateway", "http://127.0.0.1:9", "--instance", "x"]
    )
    assert code == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("slo retire: http://127.0.0.1:9/api/v1/metrics: ConnectError")


def test_the_quorum_is_the_nth_highest_location_ratio() -> None:
    # Two of three locations over 1 % with quorum 2: the second highest is what burns.
    assert nth_highest([0.5, 0.0, 0.02], 2) == 0.02
    # One location left reporting: the quorum falls to it, and a total outage still shows.
    assert nth_highest([1.0], 3) == 1.0
    assert nth_highest([], 2) is None


def _config(**extra: object) -> Config:
    return Config.model_validate({"environments": {"local": {"targets": {}}}, **extra})


def test_alerting_quorum_is_the_default_of_every_probes_slo() -> None:
    probes = {"kind": "probes", "target": "api"}
    config = _config(
        alerting={"quorum": 2},
        slos=[
            {"name": "a", "objective": 0.999, "sli": probes},
            {"name": "b", "objective": 0.999, "quorum": 3, "sli": probes},
            {"name": "c", "objective": 0.95, "sli": {"kind": "probe_latency", "target": "api"}},
        ],
    )
    assert [slo.locations_quorum for slo in config.slos] == [2, 3, 1]
    assert _config(slos=[{"name": "a", "objective": 0.999, "sli": probes}]).slos[0].locations_quorum == 1


def test_a_quorum_on_a_service_sli_is_a_config_error() -> None:
    with pytest.raises(ValidationError, match="only a `probes` SLI takes it"):
        _config(
            slos=[
                {
                    "name": "c",
                    "objective": 0.95,
                    "quorum": 2,
                    "sli": {"kind": "probe_latency", "target": "api"},
                }
            ]
        )


def test_budget_and_gate_show_each_location() -> None:
    locations = [LocationRow("eu-west", 1000, 1, 0.999), LocationRow("us-east", 1000, 0, 1.0)]
    row = BudgetRow(
        "api-availability", "local", 0.999, "30d", 2000, 1, 1.0, 1.0, {"1h": 0.0}, None,
        data_since=0.0, coverage=1.0, quorum=2, locations=locations,
    )  # fmt: skip
    table = render_table([row], now=30 * 86400.0)
    assert "  locations (quorum 2: the SLI is the 2nd worst location's):" in table
    assert "    eu-west: SLI 99.900%, 1000 runs, 1 failed" in table
    assert "    us-east: SLI 100.000%, 1000 runs, 0 failed" in table
    slo = Config.model_validate(
        {
            "environments": {"local": {"targets": {}}},
            "slos": [
                {"name": "api-availability", "objective": 0.999, "sli": {"kind": "probes", "target": "api"}}
            ],
        }
    ).slos
    [condition] = budget_conditions([row], slo, 0.25, "local", min_coverage=0.0, min_events=0)
    assert condition.passed
    assert condition.evidence.endswith("; SLI by location (quorum 2): eu-west 99.900%, us-east 100.000%")


def test_explain_states_the_quorum() -> None:
    probes = {"kind": "probes", "target": "api"}
    config = _config(alerting={"quorum": 2}, slos=[{"name": "a", "objective": 0.999, "sli": probes}])
    assert (
        "  quorum 2: burns only when that many locations (or every reporting one, if fewer) are over "
        "the threshold; a location alone: SLOLocationFailing"
    ) in explain(config.slos).splitlines()


def test_retire_matches_by_instance_or_location_and_finds_groups_from_before_locations() -> None:
    base = {"job": "synthetic-probes", "environment": "local"}
    old = {**base, "instance": "runner-1"}
    new = {**base, "instance": "runner-1", "location": "eu-west"}
    other = {**base, "instance": "runner-2", "location": "us-east"}
    staging = {**new, "environment": "staging"}
    groups = [old, new, other, staging]
    assert matching(groups, "synthetic-probes", "local", [], [""]) == [old]
    assert matching(groups, "synthetic-probes", "local", ["runner-1"], []) == [old, new]
    assert matching(groups, "synthetic-probes", "local", [], ["us-east"]) == [other]
    assert matching(groups, "load-test", "local", ["runner-1"], []) == []
