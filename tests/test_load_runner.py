"""Waiting for the Locust master: its exit status, or None at the deadline (never a hang)."""

from __future__ import annotations

import subprocess
import sys

from slo import processes
from slo.loadgate.runner import _wait


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
