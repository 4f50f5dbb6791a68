"""What the warm runner pays for once: pytest, its plugins, the probe modules and the HTTP stack.

:func:`warm_up` runs the probe session once in this process with ``--collect-only``: pytest
loads its plugins as a run would (the same ``-p``, ini and ``addopts``), the plugin loads and
checks the config (a broken one is exit 4 here, before any run), the probe modules are
imported (assert-rewritten, as in a run), and the modules a run imports later (the HTTP
client, the reporter, the push) are imported while pytest's import hook is still in place, so
every forked run finds them as a cold run would have made them. Nothing is run, written or
pushed. What it imported from the project and the package, and the config file, are the
files whose change makes the runner re-exec itself (:class:`slo.warmrun.watch.Watch`).
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import pytest

from slo.runconfig import CONFIG_KEY
from slo.stopping import STOPPED_EXIT

__all__ = ["RUNTIME_MODULES", "Warm", "warm_up"]

#: Imported by a run only once a probe runs or reports (the plugin keeps them lazy).
RUNTIME_MODULES = (
    "slo.probe.client",
    "slo.probe.run",
    "slo.probe.checks",
    "slo.probe.expect",
    "slo.probe.gateway_plan",
    "slo.report.reporter",
    "slo.report.runfile",
    "slo.report.push",
    "slo.scrubbing",
    "slo.stopping",
    "slo.redact",
    "slo.markers",
    "slo.shard",
)

#: Of the warm-up's output, only this much is kept: pytest's one-line usage error fits.
OUTPUT_KEPT = 4096


@dataclass
class Warm:
    """What the warm-up left: pytest's exit code, the end of its output, the files to watch."""

    exit_code: int
    output: str
    #: SIGTERM or Ctrl-C arrived while warming up: the runner stops instead of starting.
    stopped: bool = False
    config_file: Path | None = None
    rootpath: Path | None = None
    #: Directories the probe modules came from: a new probe file there changes them.
    probe_dirs: set[Path] = field(default_factory=set)


class _WarmUp:
    """The warm-up session's own plugin: no JUnit, the runtime imported, what was loaded."""

    def __init__(self, warm: Warm) -> None:
        self.warm = warm

    @pytest.hookimpl(tryfirst=True)
    def pytest_configure(self, config: pytest.Config) -> None:
        # After the slo plugin's (registered later, so called first), before junitxml reads it.
        config.option.xmlpath = None
        self.warm.rootpath = config.rootpath

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        for name in RUNTIME_MODULES:
            importlib.import_module(name)
        found = session.config.stash.get(CONFIG_KEY, None)
        if found is not None:
            self.warm.config_file = Path(found.source)
        self.warm.probe_dirs = {Path(item.path).parent for item in session.items}


def _note_interrupt(warm: Warm) -> Callable[[int, FrameType | None], None]:
    def interrupt(signum: int, frame: FrameType | None) -> None:
        warm.stopped = True
        raise KeyboardInterrupt

    return interrupt


def warm_up(pytest_args: list[str]) -> Warm:
    """Collect the probe session once in this process; its output is kept, not shown."""
    warm = Warm(exit_code=0, output="")
    with tempfile.TemporaryFile() as log:
        sys.stdout.flush()
        sys.stderr.flush()
        interrupted = signal.signal(signal.SIGINT, _note_interrupt(warm))
        saved = os.dup(1), os.dup(2)
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            warm.exit_code = int(pytest.main([*pytest_args, "--collect-only", "-q"], plugins=[_WarmUp(warm)]))
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            signal.signal(signal.SIGINT, interrupted)
        # The plugin turns SIGTERM into a stopped session (exit 143) during the warm-up as in a run.
        warm.stopped = warm.stopped or warm.exit_code == STOPPED_EXIT
        size = log.seek(0, os.SEEK_END)
        log.seek(max(0, size - OUTPUT_KEPT))
        warm.output = log.read().decode(errors="replace")
    return warm
