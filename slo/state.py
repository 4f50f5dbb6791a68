"""The state file: cumulative counters that make every push carry every event so far.

The Pushgateway keeps only the last push. Because each push carries cumulative counters, a
push that failed loses nothing: the next one includes its events. The counters live here.

One file holds several grouping keys (job/environment/instance), so pointing two
environments at one file is safe. Updates are read-modify-write under an exclusive `flock`
held only while one run adds its results and pushes: overlapping timer runs wait a moment
for each other instead of losing or double-counting events, and pushes leave in counter order.
A corrupt file is kept aside (``*.corrupt-<time>``) and replaced with fresh counters.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ProbeState", "StateError", "StateFile", "StateLockTimeout"]

STATE_VERSION = 1
#: Probes that have not run for this long are forgotten (a deleted probe must not live forever).
FORGET_AFTER_SECONDS = 7 * 86400


class StateError(Exception):
    """The state file cannot be used; the message is one line for the user."""


class StateLockTimeout(StateError):
    pass


@dataclass
class ProbeState:
    """Everything pushed for one probe: cumulative counters and its last run."""

    target: str = ""
    slo: str = ""
    runs: int = 0
    failures: int = 0
    retries: int = 0
    #: Cumulative histogram: counts per upper bound in `bounds` (without +Inf), sum, count.
    bounds: list[float] = field(default_factory=list)
    bucket_counts: list[int] = field(default_factory=list)
    latency_sum: float = 0.0
    latency_count: int = 0
    last_success: float | None = None
    last_duration: float | None = None
    last_run: float = 0.0
    last_phases: dict[str, float] = field(default_factory=dict)
    last_failure_reason: str | None = None
    last_failure_time: float | None = None

    def observe(self, latencies: list[float], bounds: list[float]) -> None:
        if self.bounds != bounds:
            # The bucket layout changed (a new SLO threshold): old counts cannot be re-binned,
            # so the histogram restarts, which Prometheus reads as an ordinary counter reset.
            self.bounds = list(bounds)
            self.bucket_counts = [0] * len(bounds)
            self.latency_sum, self.latency_count = 0.0, 0
        for latency in latencies:
            for index, bound in enumerate(bounds):
                if latency <= bound:
                    self.bucket_counts[index] += 1
            self.latency_sum += latency
            self.latency_count += 1


def _group_key(grouping: dict[str, str]) -> str:
    return "/".join(f"{name}={value}" for name, value in sorted(grouping.items()))


class StateFile:
    """A JSON file of :class:`ProbeState` per grouping key, updated under a lock."""

    def __init__(self, path: Path, lock_timeout: float = 30.0) -> None:
        self.path = path
        self.lock_timeout = lock_timeout
        #: Set when a corrupt file was replaced: one line for the terminal summary.
        self.warning: str | None = None

    @contextlib.contextmanager
    def locked(self, grouping: dict[str, str]) -> Iterator[dict[str, ProbeState]]:
        """Yield the probes of one grouping key; they are written back when the block ends."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock = open(self.path.with_name(self.path.name + ".lock"), "a+")  # noqa: SIM115
        except OSError as exc:
            raise StateError(f"state file {self.path}: cannot open: {exc.strerror}") from None
        with lock:
            self._acquire(lock)
            document = self._read()
            key = _group_key(grouping)
            raw_probes = document.setdefault("groups", {}).get(key, {})
            probes = {name: ProbeState(**fields) for name, fields in raw_probes.items()}
            yield probes
            cutoff = time.time() - FORGET_AFTER_SECONDS
            document["groups"][key] = {
                name: asdict(state) for name, state in probes.items() if state.last_run >= cutoff
            }
            self._write(document)

    def _acquire(self, lock: Any) -> None:
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StateLockTimeout(
                        f"state file {self.path}: still locked by another run after "
                        f"{self.lock_timeout:.0f} s; this run's results were not recorded"
                    ) from None
                time.sleep(0.05)

    def _read(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {"version": STATE_VERSION, "groups": {}}
        except OSError as exc:
            raise StateError(f"state file {self.path}: cannot read: {exc.strerror}") from None
        try:
            document = json.loads(text)
            if not isinstance(document, dict) or document.get("version") != STATE_VERSION:
                raise ValueError("not a state file of this version")
            for probes in document["groups"].values():
                for fields in probes.values():
                    ProbeState(**fields)
            return document
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            kept = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            with contextlib.suppress(OSError):
                os.replace(self.path, kept)
            self.warning = (
                f"state file {self.path} was unreadable ({type(exc).__name__}: "
                f"{str(exc)[:80]}); kept as {kept.name}, counters restart from zero"
            )
            return {"version": STATE_VERSION, "groups": {}}

    def _write(self, document: dict[str, Any]) -> None:
        # Write-then-rename: a crash leaves the old file or the new one, never half of each.
        fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(document, handle, separators=(",", ":"))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise StateError(f"state file {self.path}: cannot write: {exc.strerror}") from None
