"""Starting and waiting for Locust: forked local workers, and the master's exit status or None
at the deadline (never a hang)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from slo import processes
from slo.loadgate.runner import LoadRun, _wait, master_command


def test_the_wait_returns_the_exit_status() -> None:
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    assert _wait(process, 60.0) == 3


def test_the_wait_gives_up_at_its_deadline_on_a_process_that_runs_on() -> None:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert _wait(process, 0.2) is None
        assert process.poll() is None
    finally:
        # Stopping it while the waiting thread still blocks in waitpid: both see its end.
        assert processes.stop(process, 10.0) != 0
    assert process.returncode is not None


def _run(tmp_path: Path, workers: int, remote: int = 0) -> LoadRun:
    return LoadRun(
        locustfile=tmp_path / "locustfile.py",
        config_path=tmp_path / "monitoring.yaml",
        env_name="local",
        report_dir=tmp_path,
        users=10,
        spawn_rate=10.0,
        warmup=0.0,
        duration=5.0,
        stop_timeout=6.0,
        workers=workers,
        remote_workers=remote,
    )


def test_local_workers_are_forked_by_the_master_that_loaded_the_config(tmp_path: Path) -> None:
    # A forked worker inherits the imported Locust, slo and the loaded config: no start-up
    # of its own (plain `locust --processes` does the same). It connects to the master's port.
    command = master_command(_run(tmp_path, workers=2), 41234)
    assert command[command.index("--processes") + 1] == "2"
    assert command[command.index("--master-port") + 1] == "41234"
    assert command[command.index("--master-bind-port") + 1] == "41234"
    assert "--master" not in command  # Locust refuses --master with --processes


def test_with_remote_workers_the_master_waits_for_all_of_them(tmp_path: Path) -> None:
    # Locust's --processes would expect only the forked ones: beside remote workers, the
    # local ones start as separate processes and the master expects both.
    command = master_command(_run(tmp_path, workers=1, remote=3), 5557)
    assert "--processes" not in command
    assert command[command.index("--expect-workers") + 1] == "4"
    assert "--master" in command
