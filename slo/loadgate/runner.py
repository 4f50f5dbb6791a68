"""Start Locust headless in subprocesses, master and workers, and collect what they measured.

Locust never runs in the calling process: importing it monkey-patches the interpreter with
gevent (and would add its `--host` option to any pytest run). Each process reads the config
itself (``SLO_CONFIG``, ``SLO_ENV``); run parameters travel as Locust options, which the
master forwards to its workers. Only the master's results count: workers see no totals.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from slo import processes, redact
from slo.loadgate.samples import (
    CONFIG_ERROR_PREFIX,
    CONFIG_ERROR_STATUS,
    ResultsError,
    RunResults,
)

__all__ = ["LoadRun", "LocustFailure", "run_locust"]

# The directory holding the `slo` package, so Locust imports it from a checkout too.
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
#: Startup, a master's wait for workers to stop (1 s steps) and the final reports.
_SLACK_SECONDS = 60.0
_WORKER_EXIT_SECONDS = 10.0
_LOG_TAIL_LINES = 15


class LocustFailure(Exception):
    """Locust did not produce results: one line, the end of its log, and whether the reason
    is a mistake in the config or the locustfile (a usage error) rather than in the run."""

    def __init__(self, message: str, config_error: bool = False, log_tail: list[str] | None = None) -> None:
        super().__init__(message)
        self.config_error = config_error
        self.log_tail = log_tail or []


@dataclass(frozen=True)
class LoadRun:
    """One headless run, everything resolved (flags over config)."""

    locustfile: Path
    config_path: Path
    env_name: str
    report_dir: Path
    users: int
    spawn_rate: float
    warmup: float
    duration: float
    #: How long requests in flight at the end may take to finish (the slowest target timeout).
    stop_timeout: float
    #: Worker processes started here; 0 runs one process.
    workers: int = 0
    #: Workers started elsewhere (other machines, Kubernetes) that the master waits for.
    remote_workers: int = 0
    master_bind_host: str = "127.0.0.1"
    master_bind_port: int = 0
    #: How long the master waits for all workers to connect.
    worker_wait: float = 60.0
    #: Show Locust's output on stderr instead of only in the log file.
    verbose: bool = False

    @property
    def distributed(self) -> bool:
        return self.workers + self.remote_workers > 0

    @property
    def forks_workers(self) -> bool:
        """Local workers only: the master forks them (Locust's --processes) once it has loaded
        the locustfile and the config, so a worker costs no start-up of its own. Workers
        started elsewhere need a master that waits for a given number of them: then the local
        ones start as their own processes, as remote ones do."""
        return self.workers > 0 and self.remote_workers == 0

    @property
    def results_path(self) -> Path:
        return self.report_dir / "results.json"

    @property
    def log_path(self) -> Path:
        return self.report_dir / "locust.log"

    @property
    def deadline_seconds(self) -> float:
        """When a run that has not ended is stuck, not slow."""
        waiting = self.worker_wait if self.distributed else 0.0
        return waiting + self.warmup + self.duration + 2 * self.stop_timeout + _SLACK_SECONDS


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _locust(run: LoadRun, *options: str) -> list[str]:
    return [sys.executable, "-m", "locust", "-f", str(run.locustfile), *options]


def master_command(run: LoadRun, port: int) -> list[str]:
    command = _locust(
        run,
        "--headless",
        "--users", str(run.users),
        "--spawn-rate", f"{run.spawn_rate:g}",
        "--stop-timeout", f"{run.stop_timeout:g}",
        "--slo-warmup", f"{run.warmup:g}",
        "--slo-duration", f"{run.duration:g}",
        "--slo-results", str(run.results_path),
        "--csv", str(run.report_dir / "locust"),
        "--html", str(run.report_dir / "report.html"),
        "--exit-code-on-error", "0",
    )  # fmt: skip
    if run.forks_workers:
        command += [
            "--processes", str(run.workers),
            "--master-bind-host", run.master_bind_host,
            "--master-bind-port", str(port),
            # What the forked workers connect to (they take the master's options).
            "--master-host", _master_host(run),
            "--master-port", str(port),
            "--expect-workers-max-wait", f"{run.worker_wait:g}",
        ]  # fmt: skip
    elif run.distributed:
        command += [
            "--master",
            "--master-bind-host", run.master_bind_host,
            "--master-bind-port", str(port),
            "--expect-workers", str(run.workers + run.remote_workers),
            "--expect-workers-max-wait", f"{run.worker_wait:g}",
        ]  # fmt: skip
    return command


def _master_host(run: LoadRun) -> str:
    return "127.0.0.1" if run.master_bind_host in ("0.0.0.0", "*") else run.master_bind_host


def worker_command(run: LoadRun, port: int) -> list[str]:
    return _locust(run, "--worker", "--master-host", _master_host(run), "--master-port", str(port))


def _environment(run: LoadRun) -> dict[str, str]:
    env = dict(os.environ)
    env["SLO_CONFIG"] = str(run.config_path.resolve())
    env["SLO_ENV"] = run.env_name
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


@contextmanager
def _processes(run: LoadRun) -> Iterator[subprocess.Popen[bytes]]:
    """The master, and the local workers; whatever happens, none outlives the block."""
    bind_host = "0.0.0.0" if run.master_bind_host == "*" else run.master_bind_host
    port = run.master_bind_port or _free_port(bind_host)
    env = _environment(run)
    with ExitStack() as stack:

        def output(name: str) -> IO[bytes] | None:
            # Logs go to files, never pipes: nobody drains a pipe while Locust runs.
            return None if run.verbose else stack.enter_context((run.report_dir / name).open("wb"))

        def start(command: list[str], log_name: str) -> subprocess.Popen[bytes]:
            log = output(log_name)
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log if log else subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
                # A master that forks its workers leads their process group: see below.
                start_new_session=run.forks_workers,
            )
            if run.forks_workers:
                # Stopping the master stops the workers it forked; should it be killed
                # instead, they would be left running: so, last, the whole group goes.
                stack.callback(_kill_group, process.pid)
            if log is None:
                # --verbose: Locust's own lines may carry the host URL or an echoed token, so
                # they are relayed scrubbed, by a thread that drains the pipe until it closes.
                relay = threading.Thread(target=_relay, args=(process.stdout,), daemon=True)
                relay.start()
                stack.callback(relay.join, _WORKER_EXIT_SECONDS)
            stack.callback(processes.stop, process, _WORKER_EXIT_SECONDS)
            return process

        master = start(master_command(run, port), run.log_path.name)
        for index in range(1, 0 if run.forks_workers else run.workers + 1):
            start(worker_command(run, port), f"worker-{index}.log")
        yield master


def _kill_group(group: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group has ended already
        os.killpg(group, signal.SIGKILL)


#: A longer line is relayed in pieces: a child that never ends a line cannot grow a buffer.
_RELAY_LINE_BYTES = 64 * 1024


def _relay(pipe: IO[bytes]) -> None:
    """Every line from `pipe` to stderr, without the secrets the config carries."""
    with pipe:
        for line in iter(lambda: pipe.readline(_RELAY_LINE_BYTES), b""):
            sys.stderr.write(redact.scrub(line.decode("utf-8", errors="replace")))
            sys.stderr.flush()


def _tail(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    return lines[-_LOG_TAIL_LINES:]


def _failure(run: LoadRun, status: int | None, reason: str) -> LocustFailure:
    tail = [] if run.verbose else _tail(run.log_path)
    if status == CONFIG_ERROR_STATUS:
        config_lines = [line for line in tail if line.startswith(CONFIG_ERROR_PREFIX)]
        message = "the locustfile found a config mistake (shown above)"
        return LocustFailure(
            config_lines[-1].removeprefix(CONFIG_ERROR_PREFIX) if config_lines else message, True
        )
    if any("unrecognized arguments: --slo-" in line for line in tail):
        return LocustFailure(
            f"{run.locustfile}: the locustfile does not install the exact recorder "
            "(call slo.loadgate.recorder.install(events) in it, as load/locustfile.py does)",
            True,
        )
    return LocustFailure(reason, log_tail=tail)


def _wait(process: subprocess.Popen[bytes], timeout: float) -> int | None:
    """The process's exit status, or None if it is still running after `timeout` seconds.

    A thread blocks in waitpid while this one sleeps on the join: nothing wakes until the
    process ends (``Popen.wait(timeout)`` instead polls, up to 20 times a second, for the
    whole run). The thread ends with the process, which never outlives :func:`_processes`.
    """
    waiter = threading.Thread(target=process.wait, name="locust-master-wait", daemon=True)
    waiter.start()
    waiter.join(timeout)
    return process.returncode


def run_locust(run: LoadRun) -> RunResults:
    """Run Locust to the end and return the master's results; raises :class:`LocustFailure`."""
    run.report_dir.mkdir(parents=True, exist_ok=True)
    run.results_path.unlink(missing_ok=True)
    deadline = time.monotonic() + run.deadline_seconds
    with _processes(run) as master:
        status = _wait(master, max(1.0, deadline - time.monotonic()))
        if status is None:
            raise _failure(run, None, f"Locust did not finish within {run.deadline_seconds:.0f} s")
        # The master ends only after every worker's last report, so the local workers have
        # nothing more to give: leaving the block stops them rather than waiting for them to
        # notice (a stopped Locust worker sleeps out --stop-timeout before it reads "quit").
    try:
        return RunResults.read(run.results_path)
    except ResultsError as exc:
        raise _failure(run, status, f"Locust exited with status {status}: {exc}") from None
