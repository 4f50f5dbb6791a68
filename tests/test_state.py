"""The state file: cumulative counters, a lock for overlapping runs, corruption handled."""

from __future__ import annotations

import dataclasses
import fcntl
import gc
import json
import os
import stat
import threading
from pathlib import Path

import pytest

from slo.options import default_state_file
from slo.report.state import ProbeState, StateError, StateFile, StateLockTimeout, TargetState, target_key

GROUP = {"job": "synthetic-probes", "environment": "local", "instance": "a"}


def test_counters_survive_between_runs(tmp_path: Path) -> None:
    state = StateFile(tmp_path / "s.json")
    for _ in range(3):
        with state.locked(GROUP) as group:
            probes = group.probes
            probe = probes.setdefault("p", ProbeState(target="api", last_run=1e12))
            probe.runs += 1
    with state.locked(GROUP) as group:
        probes = group.probes
        assert probes["p"].runs == 3


def test_grouping_keys_do_not_mix(tmp_path: Path) -> None:
    state = StateFile(tmp_path / "s.json")
    with state.locked(GROUP) as group:
        probes = group.probes
        probes["p"] = ProbeState(runs=5, last_run=1e12)
    with state.locked({**GROUP, "environment": "staging"}) as group:
        probes = group.probes
        assert probes == {}


def test_probes_not_run_for_a_week_are_forgotten(tmp_path: Path) -> None:
    state = StateFile(tmp_path / "s.json")
    with state.locked(GROUP) as group:
        probes = group.probes
        probes["old"] = ProbeState(runs=1, last_run=0.0)
        probes["new"] = ProbeState(runs=1, last_run=1e12)
    with state.locked(GROUP) as group:
        probes = group.probes
        assert set(probes) == {"new"}


def test_histogram_restarts_when_buckets_change() -> None:
    probe = ProbeState()
    probe.observe([0.1, 3.0], [0.5, 2.0])
    assert (probe.bucket_counts, probe.latency_count) == ([1, 1], 2)
    probe.observe([1.0], [0.5, 1.0, 2.0])
    assert (probe.bucket_counts, probe.latency_count, probe.latency_sum) == ([0, 1, 1], 1, 1.0)


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        '{"version": 99, "groups": {}}',
        '{"version": 1, "groups": {"k": {"p": {"bogus": 1}}}}',
        '{"version": 1, "groups": {"k": []}}',
        '{"version": 1, "groups": {"k": {"p": {"runs": -1}}}}',
        '{"version": 1, "groups": {"k": {"p": {"bounds": [1.0], "bucket_counts": []}}}}',
        '{"version": 1, "groups": {}, "targets": {"k": {"api": {"target": "api", "runs": "many"}}}}',
    ],
)
def test_corrupt_file_is_kept_aside_and_replaced(tmp_path: Path, content: str) -> None:
    path = tmp_path / "s.json"
    path.write_text(content)
    state = StateFile(path)
    with state.locked(GROUP) as group:
        probes = group.probes
        assert probes == {}
        probes["p"] = ProbeState(runs=1, last_run=1e12)
    assert state.warning
    assert "was unreadable" in state.warning
    assert "\n" not in state.warning
    kept = list(tmp_path.glob("s.json.corrupt-*"))
    assert [p.read_text() for p in kept] == [content]
    assert json.loads(path.read_text())["version"] == 1


def test_lock_held_elsewhere_times_out_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    with open(tmp_path / "s.json.lock", "a+") as holder:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
        with (
            pytest.raises(StateLockTimeout, match=r"still locked by another run after 0 s"),
            StateFile(path, lock_timeout=0.2).locked(GROUP),
        ):
            pass
    assert not path.exists(), "nothing written without the lock"


def test_concurrent_updates_are_serialised(tmp_path: Path) -> None:
    path = tmp_path / "s.json"

    def bump() -> None:
        for _ in range(20):
            with StateFile(path).locked(GROUP) as group:
                probes = group.probes
                probes.setdefault("p", ProbeState(last_run=1e12)).runs += 1

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with StateFile(path).locked(GROUP) as group:
        probes = group.probes
        assert probes["p"].runs == 80


def test_unwritable_location_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with (
        pytest.raises(Exception, match=r"^state file .*: cannot open: "),
        StateFile(blocker / "s.json").locked(GROUP),
    ):
        pass


def test_saved_before_the_end_of_the_block(tmp_path: Path) -> None:
    """The reporter saves, then pushes: the file must hold the counters the push will carry."""
    path = tmp_path / "s.json"
    with StateFile(path).locked(GROUP) as group:
        group.probes["p"] = ProbeState(runs=4, last_run=1e12)
        group.save()
        on_disk = json.loads(path.read_text())["groups"]
        assert next(iter(on_disk.values()))["p"]["runs"] == 4


def test_target_run_counters_and_readings_survive_between_runs(tmp_path: Path) -> None:
    state = StateFile(tmp_path / "s.json")
    for _ in range(3):
        with state.locked(GROUP) as group:
            run = group.targets.setdefault(target_key("api"), TargetState(target="api"))
            run.runs, run.last_run = run.runs + 1, 1e12
            narrowed = group.targets.setdefault(
                target_key("api", "sandbox"), TargetState(target="api", slo="sandbox")
            )
            narrowed.runs, narrowed.failed_runs, narrowed.last_run = 1, 1, 1e12
            group.probes["ratio"] = ProbeState(last_run=1e12, reading={"requests": 7.0}, reading_time=5.0)
    with state.locked(GROUP) as group:
        assert group.targets[target_key("api")].runs == 3
        assert group.targets[target_key("api", "sandbox")] == TargetState("api", "sandbox", 1, 1, 1e12)
    # Probes read their previous reading without the lock (a whole file, renamed into place).
    assert state.peek(GROUP)["ratio"].reading == {"requests": 7.0}
    assert state.peek({**GROUP, "instance": "other"}) == {}
    assert StateFile(tmp_path / "missing.json").peek(GROUP) == {}


def test_the_file_holds_every_field_of_every_probe_and_target(tmp_path: Path) -> None:
    """The file format is what every later version reads: all fields, by name, as JSON."""
    probe = ProbeState(target="api", slo="s", runs=4, last_run=1e12, last_phases={"dns": 0.1})
    probe.observe([0.1, 3.0], [0.5, 2.0])
    probe.reading = {"requests": 7.0}
    runs = TargetState(target="api", runs=2, failed_runs=1, last_run=1e12)
    state = StateFile(tmp_path / "s.json")
    with state.locked(GROUP) as group:
        group.probes["p"], group.targets["api"] = probe, runs
    document = json.loads((tmp_path / "s.json").read_text())
    [key] = document["groups"]
    assert document["groups"][key] == {"p": dataclasses.asdict(probe)}
    assert document["targets"][key] == {"api": dataclasses.asdict(runs)}
    with state.locked(GROUP) as group:
        assert (group.probes, group.targets) == ({"p": probe}, {"api": runs})


def test_the_garbage_collector_is_paused_only_while_the_lock_is_held(tmp_path: Path) -> None:
    state = StateFile(tmp_path / "s.json")
    seen: list[bool] = []

    def push_that_fails() -> None:
        with state.locked(GROUP):
            seen.append(gc.isenabled())
            raise RuntimeError("mid-push")

    with pytest.raises(RuntimeError, match="mid-push"):
        push_that_fails()
    assert seen == [False]
    assert gc.isenabled()


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_state_path_that_is_not_a_regular_file_is_refused_never_renamed(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "s.json"
    if kind == "fifo":
        os.mkfifo(path)  # read, it would hang the run with the lock held
    else:
        path.symlink_to(os.devnull)  # renamed aside, it would move /dev/null
    with (
        pytest.raises(
            StateError,
            match=r"^state file .*s\.json is not a regular file: refused; "
            r"this run was neither recorded nor pushed$",
        ),
        StateFile(path).locked(GROUP),
    ):
        pass
    assert stat.S_ISFIFO(path.lstat().st_mode) if kind == "fifo" else path.is_symlink()
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)
    assert [entry.name for entry in tmp_path.iterdir() if "corrupt" in entry.name] == []


def test_a_job_name_is_never_a_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    path = default_state_file("../../escaped/x", "local")
    assert path.parent == tmp_path / "slo-probes"
    assert path.name == "_.._escaped_x-local.json"
