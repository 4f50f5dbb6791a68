"""What `slo run` was asked to do, parsed and checked (:mod:`slo.warmrun.cli`)."""

from __future__ import annotations

import signal
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["INTERRUPTED_EXIT", "Plan"]

#: The exit code of a runner stopped by Ctrl-C (SIGINT), as a shell says.
INTERRUPTED_EXIT = 128 + signal.SIGINT


@dataclass(frozen=True)
class Plan:
    """What `slo run` was asked to do."""

    every: float
    jitter: float
    #: Runs to make before exiting; None runs until stopped.
    runs: int | None
    run_timeout: float
    healthz: tuple[str, int] | None
    pytest_args: Sequence[str]
    #: The arguments of `slo run` itself, to re-exec with.
    argv: Sequence[str]

    def restart_argv(self, runs_done: int) -> list[str]:
        """The arguments to re-exec with: the same, less the runs already made."""
        argv = list(self.argv)
        if self.runs is None:
            return argv
        end = argv.index("--") if "--" in argv else len(argv)
        # argparse keeps the last --runs given.
        return [*argv[:end], "--runs", str(max(1, self.runs - runs_done)), *argv[end:]]
