"""The warm runner's loop: a forked run per tick, skipped ticks counted, stopped cleanly.

One thread, one selector: the tick timer, the running child (its pidfd), the signals (a
wakeup socket) and the optional ``/healthz`` connections are all events of one loop, so no
thread exists when a run is forked.

- A tick while the previous run is still going is skipped, counted, and pushed with the next
  run (``synthetic_runner_skipped_ticks_total``).
- A run that outlives ``--run-timeout`` is sent SIGTERM (it records and pushes what it saw),
  and SIGKILL after :data:`KILL_GRACE` more seconds.
- SIGTERM stops the runner: the running child gets SIGTERM too and is waited for (it saves
  and pushes), then the runner exits with :data:`slo.stopping.STOPPED_EXIT`. Ctrl-C (SIGINT,
  which a terminal sends the child too) waits for the child and exits 130.
- Before each run the watched files are checked; when one changed, the runner re-execs itself
  (between runs, never during one), so the next run uses the new code and config.
- A run that ends in a usage error (exit 4: a broken config) ends the runner with 4.
"""

from __future__ import annotations

import gc
import os
import selectors
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from slo.conventions import USAGE_ERROR
from slo.report.exposition import RunnerBeat
from slo.stopping import STOPPED_EXIT
from slo.warmrun.child import run_child
from slo.warmrun.healthz import Healthz
from slo.warmrun.plan import INTERRUPTED_EXIT, Plan
from slo.warmrun.ticks import Ticks
from slo.warmrun.watch import Watch

__all__ = ["KILL_GRACE", "Runner", "say"]

#: The signals that stop the runner (and that it passes on to a run: SIGTERM).
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})
#: After SIGTERM, how long a run that outlived its timeout has to save and push.
KILL_GRACE = 30.0


@dataclass
class _Child:
    number: int
    pid: int
    pidfd: int
    started: float
    terminated_at: float | None = None
    killed: bool = False


def say(message: str) -> None:
    print(f"slo run: {message}", file=sys.stderr, flush=True)


class Runner:
    def __init__(self, plan: Plan, watch: Watch, clock: Callable[[], float] = time.monotonic) -> None:
        self.plan = plan
        self.watch = watch
        self.clock = clock
        self.started = clock()
        self.ticks = Ticks(plan.every, plan.jitter, self.started)
        self.selector = selectors.DefaultSelector()
        self.child: _Child | None = None
        self.runs = 0
        self.skipped = 0
        self.last_exit: int | None = None
        self.last_finished: float | None = None
        self.stop_signal: int | None = None
        self.exit_code: int | None = None
        self.healthz: Healthz | None = None
        self._wake_read, self._wake_write = socket.socketpair()

    # --- the loop -------------------------------------------------------------------------

    def serve(self) -> int:
        # What the warm-up left behind is freed once; what it keeps is frozen, so a run's
        # garbage collections (pytest forces several at its end) never walk or touch the
        # runner's objects: no time spent on them, and no copy-on-write of their pages.
        gc.collect()
        self._install_signals()
        if self.plan.healthz is not None:
            self.healthz = Healthz(self.plan.healthz, self.health, self.selector)
            say(f"/healthz on {self.plan.healthz[0]}:{self.healthz.port}")
        try:
            while self.exit_code is None:
                self._step()
        finally:
            self.close()
        return self.exit_code

    def close(self) -> None:
        """Release the runner's sockets and selector (the loop's end; tests)."""
        signal.set_wakeup_fd(-1)
        if self.healthz is not None:
            self.healthz.close()
            self.healthz = None
        self.selector.close()
        self._wake_read.close()
        self._wake_write.close()

    def _step(self) -> None:
        now = self.clock()
        if self.child is None:
            if self.stop_signal is not None:
                self.exit_code = STOPPED_EXIT if self.stop_signal == signal.SIGTERM else INTERRUPTED_EXIT
                return
            if self.last_exit == USAGE_ERROR or (self.plan.runs is not None and self.runs >= self.plan.runs):
                self.exit_code = 0 if self.last_exit is None else self.last_exit
                return
        due = self.ticks.advance(now) if self.stop_signal is None else 0
        if due:
            self._tick(now, due)
            return
        self._enforce_timeout(now)
        if self.healthz is not None:
            self.healthz.expire(now)
        for key, _ in self.selector.select(self._timeout(now)):
            key.data()

    def _timeout(self, now: float) -> float:
        deadlines = [] if self.stop_signal is not None else [self.ticks.next]
        if self.child is not None and (deadline := self._child_deadline(self.child)) is not None:
            deadlines.append(deadline)
        if self.healthz is not None and (soonest := self.healthz.next_deadline()) is not None:
            deadlines.append(soonest)
        return max(0.0, min(deadlines) - now) if deadlines else 60.0

    # --- ticks and runs -------------------------------------------------------------------

    def _tick(self, now: float, due: int) -> None:
        if self.plan.runs is not None and self.runs >= self.plan.runs:
            return
        if self.child is not None:
            self.skipped += due
            ticks = "tick skipped" if due == 1 else f"{due} ticks skipped"
            say(
                f"{ticks}: run {self.child.number} is still going "
                f"(started {now - self.child.started:.1f} s ago); {self.skipped} skipped so far"
            )
            return
        if due > 1:
            # Ticks that passed while the runner could not act (suspended) were skipped too.
            self.skipped += due - 1
            say(f"{due - 1} ticks passed while the runner could not act; {self.skipped} skipped so far")
        changed = self.watch.changed()
        if changed is not None:
            self._reexec(changed)
        self._fork(now)

    def _fork(self, now: float) -> None:
        self.runs += 1
        beat = RunnerBeat(heartbeat=time.time(), skipped_ticks=self.skipped)
        sys.stdout.flush()
        sys.stderr.flush()
        gc.freeze()
        # Held back until the child has its own handlers: a SIGTERM passed on in its first
        # instants would otherwise meet the runner's no-op handler and be lost.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        pid = os.fork()
        if pid == 0:
            run_child(list(self.plan.pytest_args), beat, self._descriptors())
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        pidfd = os.pidfd_open(pid)
        self.child = _Child(self.runs, pid, pidfd, now)
        self.selector.register(pidfd, selectors.EVENT_READ, self._reap)

    def _descriptors(self) -> list[int]:
        fds = [self._wake_read.fileno(), self._wake_write.fileno(), self.selector.fileno()]
        if self.healthz is not None:
            fds += self.healthz.fds()
        return fds

    def _reap(self) -> None:
        child = self.child
        assert child is not None
        _, status, usage = os.wait4(child.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        code = 128 - code if code < 0 else code  # killed by a signal, as a shell says
        self.selector.unregister(child.pidfd)
        os.close(child.pidfd)
        self.child = None
        self.last_exit = code
        self.last_finished = self.clock()
        took = self.last_finished - child.started
        cpu = usage.ru_utime + usage.ru_stime
        # The peak counts the pages the run shares with the runner, as a cold run counts its own.
        peak = usage.ru_maxrss / 1024
        say(f"run {child.number} exited {code} after {took:.1f} s, CPU {cpu:.3f} s, peak RSS {peak:.0f} MiB")

    def _child_deadline(self, child: _Child) -> float | None:
        """When the run is sent SIGTERM, then SIGKILL; None once killed (only its exit is left)."""
        if child.killed:
            return None
        if child.terminated_at is None:
            return child.started + self.plan.run_timeout
        return child.terminated_at + KILL_GRACE

    def _enforce_timeout(self, now: float) -> None:
        child = self.child
        deadline = None if child is None else self._child_deadline(child)
        if child is None or deadline is None or now < deadline:
            return
        if child.terminated_at is None:
            say(f"run {child.number} outlived --run-timeout {self.plan.run_timeout:g} s: stopping it")
            child.terminated_at = now
            os.kill(child.pid, signal.SIGTERM)
        else:
            say(f"run {child.number} did not stop within {KILL_GRACE:g} s of SIGTERM: killing it")
            os.kill(child.pid, signal.SIGKILL)
            child.killed = True

    # --- signals --------------------------------------------------------------------------

    def _install_signals(self) -> None:
        self._wake_read.setblocking(False)
        self._wake_write.setblocking(False)
        signal.set_wakeup_fd(self._wake_write.fileno(), warn_on_full_buffer=False)
        for signum in STOP_SIGNALS:
            # The handler only has to exist: the signal's number reaches the loop on the socket.
            signal.signal(signum, lambda signum, frame: None)
        self.selector.register(self._wake_read, selectors.EVENT_READ, self._on_signals)

    def _on_signals(self) -> None:
        try:
            received = self._wake_read.recv(64)
        except (BlockingIOError, InterruptedError):
            return
        for signum in received:
            if self.stop_signal is not None:
                continue  # once: the run is already finishing what it saw
            self.stop_signal = signum
            name = signal.Signals(signum).name
            if self.child is not None:
                say(f"{name}: stopping after run {self.child.number} records what it saw")
                if signum == signal.SIGTERM:
                    os.kill(self.child.pid, signal.SIGTERM)
            else:
                say(f"{name}: stopping")

    # --- liveness and re-exec -------------------------------------------------------------

    def health(self) -> tuple[bool, dict[str, object]]:
        """Healthy while runs keep finishing: the last one ended (or the runner started)
        within two periods and a run's timeout."""
        now = self.clock()
        since = now - (self.last_finished if self.last_finished is not None else self.started)
        healthy = since <= 2 * self.plan.every + self.plan.run_timeout
        return healthy, {
            "status": "ok" if healthy else "stale",
            "runs": self.runs,
            "skipped_ticks": self.skipped,
            "running": self.child is not None,
            "last_exit": self.last_exit,
            "seconds_since_last_run": round(since, 3),
        }

    def _reexec(self, changed: object) -> None:
        say(f"{changed} changed: restarting to run the new code and config")
        if self.healthz is not None:
            self.healthz.close()
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, [sys.executable, "-m", "slo", "run", *self.plan.restart_argv(self.runs)])
