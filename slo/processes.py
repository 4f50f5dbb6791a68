"""Stopping a child process, the one way: SIGTERM, a grace period, then SIGKILL.

Every process the package starts (Locust master and workers, the reference stack, the local
Prometheus, Pushgateway and Alertmanager, a probe's psql) is stopped with :func:`stop`, so none
outlives its owner and none is waited for without a deadline. A probe's short-lived child runs
through :func:`run_bounded`: its own process group (so whatever it started dies with it), one
deadline for the whole run, and a cap on what it may say.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import IO, Any

__all__ = ["Bounded", "OutputTooLarge", "RunTimeout", "kill_group", "run_bounded", "stop"]

_READ = 64 * 1024


def stop(process: subprocess.Popen[Any], grace: float) -> int:
    """Terminate `process`, wait up to `grace` seconds, then kill it; its exit status.

    Safe on a process that has already exited (its status is returned as it is).
    """
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def kill_group(process: subprocess.Popen[Any]) -> None:
    """SIGKILL the process group `process` leads (started with ``start_new_session=True``),
    so a grandchild it started (a shell of ``\\!``) dies with it; then reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


class RunTimeout(Exception):
    """The child ran past its deadline and was killed with its process group."""


class OutputTooLarge(Exception):
    """The child wrote more to stdout than its cap; it was killed with its process group."""

    def __init__(self, cap: int) -> None:
        super().__init__(f"over {cap} bytes of output")
        self.cap = cap


@dataclass(frozen=True)
class Bounded:
    """What a bounded child did: its status, stdout (whole), and the start of its stderr."""

    returncode: int
    stdout: bytes
    stderr: bytes


def run_bounded(
    command: list[str],
    *,
    env: Mapping[str, str],
    deadline: float,
    stdout_cap: int | None,
    stderr_keep: int,
    stdin: Iterable[bytes] = (),
) -> Bounded:
    """Run `command` until `deadline` (``time.monotonic()``), feeding it `stdin` from a thread.

    `stdout_cap` None discards stdout; past the cap the child is killed (OutputTooLarge).
    Only the first `stderr_keep` bytes of stderr are kept; the rest is read and dropped so
    the child never blocks on a full pipe. Any exception (a timeout, a signal's) kills the
    whole process group before it propagates.
    """
    process = subprocess.Popen(
        command,
        env=dict(env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE if stdout_cap is not None else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert process.stdin is not None
        assert process.stderr is not None
        writer = threading.Thread(target=_feed, args=(process.stdin, stdin), daemon=True)
        writer.start()
        err_fd = process.stderr.fileno()
        out_fd = process.stdout.fileno() if process.stdout is not None else -1
        kept: dict[int, bytearray] = {out_fd: bytearray(), err_fd: bytearray()}
        with selectors.DefaultSelector() as selector:
            for stream, cap in ((process.stdout, stdout_cap), (process.stderr, stderr_keep)):
                if stream is not None:
                    selector.register(stream, selectors.EVENT_READ, cap)
            while selector.get_map():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RunTimeout
                for key, _ in selector.select(left):
                    chunk = os.read(key.fd, _READ)
                    if not chunk:
                        selector.unregister(key.fileobj)
                        continue
                    buffer, cap = kept[key.fd], key.data
                    if key.fd == out_fd and len(buffer) + len(chunk) > cap:
                        raise OutputTooLarge(cap)
                    buffer += chunk[: max(0, cap - len(buffer))]
        _exited(process, deadline)
    except BaseException:
        kill_group(process)
        raise
    finally:
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    # The child has exited but is not reaped yet, so its group id is still its own: whatever
    # it left running in the group dies now, and none outlives the run.
    kill_group(process)
    return Bounded(process.returncode, bytes(kept[out_fd]), bytes(kept[err_fd]))


def _exited(process: subprocess.Popen[Any], deadline: float) -> None:
    """Wait until the child exits, without reaping it; RunTimeout at the deadline."""
    while not os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
        if time.monotonic() >= deadline:
            raise RunTimeout
        time.sleep(0.01)


def _feed(pipe: IO[bytes], chunks: Iterable[bytes]) -> None:
    """Write `chunks` to the child's stdin; a child that exits early just ends the feed."""
    with contextlib.suppress(OSError, ValueError), pipe:
        for chunk in chunks:
            pipe.write(chunk)
