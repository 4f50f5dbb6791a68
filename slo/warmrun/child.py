"""One run, in a child forked from the warm runner: the probe session as `pytest probes/` runs it.

The child starts from the runner's memory (pytest, the plugin, the probe modules and the HTTP
stack already imported) and runs ``pytest.main`` with the user's arguments: the same config,
push, state file and lock, JUnit, run file and exit code as a cold run. Its signals are a cold
run's (SIGTERM stops it cleanly through :mod:`slo.stopping`, Ctrl-C interrupts it), and it
never returns into the runner's loop: it leaves with ``os._exit`` and pytest's exit code.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterable
from typing import NoReturn

import pytest

from slo.report.exposition import RunnerBeat
from slo.report.reporter import RUNNER_BEAT

__all__ = ["INTERNAL_ERROR", "run_child"]

#: A run that could not even start pytest: pytest's own code for an internal error.
INTERNAL_ERROR = int(pytest.ExitCode.INTERNAL_ERROR)


class _Beat:
    """The runner's liveness, put where the run's reporter pushes it from."""

    def __init__(self, beat: RunnerBeat) -> None:
        self.beat = beat

    def pytest_configure(self, config: pytest.Config) -> None:
        config.stash[RUNNER_BEAT] = self.beat


def run_child(pytest_args: list[str], beat: RunnerBeat, close: Iterable[int]) -> NoReturn:
    """Run the session and exit with its code; `close` are the runner's own descriptors."""
    code = INTERNAL_ERROR
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        # The runner blocked them around the fork; one that came meanwhile is delivered now.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
        for fd in close:
            os.close(fd)
        code = int(pytest.main(list(pytest_args), plugins=[_Beat(beat)]))
    except BaseException as exc:  # never back into the runner's loop
        print(f"slo run: the run failed to start: {type(exc).__name__}: {exc}", file=sys.stderr)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
