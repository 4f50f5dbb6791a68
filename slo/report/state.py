"""The state file: cumulative counters that make every push carry every event so far.

The Pushgateway keeps only the last push. Because each push carries cumulative counters, a
push that failed loses nothing: the next one includes its events. The counters live here.

One file holds several grouping keys (job/environment/instance), so pointing two
environments at one file is safe. Updates are read-modify-write under an exclusive `flock`
held only while one run adds its results and pushes: overlapping timer runs wait a moment
for each other instead of losing or double-counting events, and pushes leave in counter order.
A file of any other content (not UTF-8, not JSON, nested too deep, over 64 MiB, a counter
that is negative or beyond 2**53, a value that is not finite) is kept aside once
(``*.corrupt-<time>``) and replaced with fresh counters: the run goes on and is recorded.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict, TypeAdapter

from slo.files import NotRegular, is_replaceable, open_regular
from slo.locks import lock_exclusive

if TYPE_CHECKING:
    from slo.options import RunOptions

__all__ = [
    "LockedGroup",
    "ProbeState",
    "StateError",
    "StateFile",
    "StateLockTimeout",
    "TargetState",
    "count_in_buckets",
    "runner_key",
    "target_key",
]

STATE_VERSION = 1
#: Probes, and the values they recorded, are forgotten after this long without a run (a
#: deleted probe or a removed model must not live forever): the one retention rule.
FORGET_AFTER_SECONDS = 7 * 86400


def count_in_buckets(bounds: list[float], counts: list[int], value: float) -> None:
    """Add `value` to cumulative histogram `counts` (one per upper bound, without +Inf)."""
    for index, bound in enumerate(bounds):
        if value <= bound:
            counts[index] += 1


#: Thousands of probes take a few megabytes; more is not a state file this suite wrote.
MAX_STATE_BYTES = 64 * 1024 * 1024
#: What a state file that cannot be read or written costs: said with every such error.
NOT_RECORDED = "this run was neither recorded nor pushed"
#: Counters stay exact in a float64 sample (what Prometheus stores) up to here.
MAX_COUNT = 2**53


class StateError(Exception):
    """The state file cannot be used; the message is one line for the user."""


class StateLockTimeout(StateError):
    pass


@dataclass
class ProbeState:
    """Everything pushed for one probe: cumulative counters and its last run."""

    # An unknown field means a file this version did not write: treat it as corrupt.
    __pydantic_config__ = ConfigDict(extra="forbid")

    target: str = ""
    slo: str = ""
    kind: str = "availability"
    #: The alert its marker feeds (``alert=``), pushed as the `alert` label.
    alert: str = ""
    runs: int = 0
    failures: int = 0
    retries: int = 0
    #: Cumulative histogram: counts per upper bound in `bounds` (without +Inf), sum, count.
    bounds: list[float] = field(default_factory=list)
    bucket_counts: list[int] = field(default_factory=list)
    latency_sum: float = 0.0
    latency_count: int = 0
    last_success: float | None = None
    #: 1 if the last run was degraded (it worked, slowly or with a soft assertion), else 0.
    last_degraded: float | None = None
    last_duration: float | None = None
    last_run: float = 0.0
    last_phases: dict[str, float] = field(default_factory=dict)
    last_failure_reason: str | None = None
    last_failure_time: float | None = None
    last_failure_message: str = ""
    #: What the probe kept at its last run for the next to compare with (a budget probe's
    #: counters, Redis' counters and the server's run id).
    reading: dict[str, float | str] = field(default_factory=dict)
    reading_time: float | None = None

    @property
    def has_last_result(self) -> bool:
        return self.last_success is not None or self.last_failure_time is not None

    def drop_last_result(self) -> None:
        """Forget the last run's result (the probe left the suite): its success, duration,
        phases and last failure are no longer pushed, so no query or alert reports it as
        failing; the cumulative counters stay for the SLI."""
        self.last_success = self.last_degraded = self.last_duration = None
        self.last_phases = {}
        self.last_failure_reason = self.last_failure_time = None
        self.last_failure_message = ""

    def observe(self, latencies: list[float], bounds: list[float]) -> None:
        if self.bounds != bounds:
            # The bucket layout changed (a new SLO threshold): old counts cannot be re-binned,
            # so the histogram restarts, which Prometheus reads as an ordinary counter reset.
            self.bounds = list(bounds)
            self.bucket_counts = [0] * len(bounds)
            self.latency_sum, self.latency_count = 0.0, 0
        for latency in latencies:
            count_in_buckets(bounds, self.bucket_counts, latency)
            self.latency_sum += latency
            self.latency_count += 1


@dataclass
class TargetState:
    """Runs of one target: one event per run, bad when any of its availability probes failed;
    degraded when none failed and any was degraded.

    `slo` is empty for every availability probe of the target, or names a `probes` SLO whose
    `probe` patterns narrow it (that SLO's events are runs of the probes it selects).
    """

    __pydantic_config__ = ConfigDict(extra="forbid")

    target: str
    slo: str = ""
    runs: int = 0
    failed_runs: int = 0
    last_run: float = 0.0
    #: Runs none of whose availability probes failed and any was degraded.
    degraded_runs: int = 0


# One validation call per group, not per probe: pydantic's own loop is several times faster.
_PROBE_GROUP = TypeAdapter(dict[str, ProbeState])
_TARGET_GROUP = TypeAdapter(dict[str, TargetState])
_FIELD_NAMES = {kind: tuple(f.name for f in fields(kind)) for kind in (ProbeState, TargetState)}


def _load_probes(raw: Any) -> dict[str, ProbeState]:
    """Validated ProbeStates by name, or ValueError: a wrong type here would crash every later
    run instead of being reported once."""
    probes = _PROBE_GROUP.validate_python(raw)
    for state in probes.values():
        _check(state)
    return probes


def _check(state: ProbeState) -> None:
    if len(state.bucket_counts) != len(state.bounds):
        raise ValueError("bucket_counts and bounds differ in length")
    counts = [state.runs, state.failures, state.retries, state.latency_count, *state.bucket_counts]
    if not all(0 <= count <= MAX_COUNT for count in counts):
        raise ValueError("a counter is negative or beyond 2**53")
    optional = [state.last_success, state.last_degraded, state.last_duration, state.last_failure_time]
    numbers = [state.latency_sum, state.last_run, *state.bounds, *state.last_phases.values()]
    if not all(math.isfinite(number) for number in [*numbers, *(n for n in optional if n is not None)]):
        raise ValueError("a value is not a finite number")


def _fields(state: ProbeState | TargetState) -> dict[str, Any]:
    """The fields to write, as they are: `json.dumps` copies them (`asdict` deep-copied first)."""
    return {name: getattr(state, name) for name in _FIELD_NAMES[type(state)]}


@dataclass
class LockedGroup:
    """The probes of one grouping key, read under the state file's lock."""

    state_file: StateFile
    document: dict[str, Any]
    key: str
    probes: dict[str, ProbeState]
    #: Run counters by :func:`target_key`.
    targets: dict[str, TargetState] = field(default_factory=dict)
    saved: bool = False

    def save(self) -> None:
        cutoff = time.time() - FORGET_AFTER_SECONDS
        self.document["groups"][self.key] = {
            name: _fields(state) for name, state in self.probes.items() if state.last_run >= cutoff
        }
        self.document.setdefault("targets", {})[self.key] = {
            name: _fields(state) for name, state in self.targets.items() if state.last_run >= cutoff
        }
        self.state_file.write(self.document)
        self.saved = True


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off for the block, then as it was. The end of a run makes
    hundreds of thousands of acyclic objects (the document, the families, the body), which
    reference counting frees, while each full collection they trigger walks the whole heap:
    a third of the CPU of reading, saving and pushing 10,000 probes (bench/bench_push.py)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def target_key(target: str, slo: str = "") -> str:
    """The key of a target's run counters in the state file (and :attr:`LockedGroup.targets`)."""
    return f"{target}\n{slo}" if slo else target


def runner_key(options: RunOptions) -> dict[str, str]:
    """A runner's key in the state file: the job, environment and instance it pushes as. The
    location is not part of it, so a runner that moves keeps its counters."""
    return {"job": options.push.job, "environment": options.env_name, "instance": options.push.instance or ""}


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
    def locked(self, grouping: dict[str, str]) -> Iterator[LockedGroup]:
        """Hold the lock for one grouping key's probes; unsaved changes are saved at the end.

        Save before pushing (:meth:`LockedGroup.save`): a pushed counter the file does not
        remember would go down at the next push, which Prometheus reads as a reset. The cyclic
        garbage collector is paused meanwhile (:func:`_gc_paused`).
        """
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock = open(self.path.with_name(self.path.name + ".lock"), "a+")  # noqa: SIM115
        except OSError as exc:
            raise StateError(f"state file {self.path}: cannot open: {exc.strerror}") from None
        with lock, _gc_paused():
            self._acquire(lock)
            key = _group_key(grouping)
            document, probes, targets = self._read(key)
            group = LockedGroup(self, document, key, probes, targets)
            yield group
            if not group.saved:
                group.save()

    def peek(self, grouping: dict[str, str]) -> dict[str, ProbeState]:
        """The probes of one grouping key as last saved, read without the lock (writes are
        atomic renames, so a reader sees a whole file); empty when there is none yet."""
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
            return _load_probes(document["groups"].get(_group_key(grouping), {}))
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return {}

    def previous_reading(
        self, grouping: dict[str, str], probe: str
    ) -> tuple[dict[str, float | str], float] | None:
        """The readings probe `probe` kept at its last saved run, and when that was."""
        state = self.peek(grouping).get(probe)
        if state is None or not state.reading or state.reading_time is None:
            return None
        return dict(state.reading), state.reading_time

    def peek_section(self, section: str, grouping: dict[str, str]) -> dict[str, Any]:
        """One grouping key's part of a section beside the probes (the probe values), read
        like :meth:`peek`; empty when there is none."""
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
            found = document[section].get(_group_key(grouping), {})
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return {}
        return found if isinstance(found, dict) else {}

    def _acquire(self, lock: Any) -> None:
        if not lock_exclusive(lock, self.lock_timeout):
            raise StateLockTimeout(
                f"state file {self.path}: still locked by another run after "
                f"{self.lock_timeout:.0f} s; this run's results were not recorded"
            )

    def _read(self, key: str) -> tuple[dict[str, Any], dict[str, ProbeState], dict[str, TargetState]]:
        """The whole document, every group of it validated, and group `key`'s probes and targets."""
        fresh: dict[str, Any] = {"version": STATE_VERSION, "groups": {}, "targets": {}}
        try:
            with open_regular(self.path) as handle:
                data = handle.read(MAX_STATE_BYTES + 1)
        except FileNotFoundError:
            return fresh, {}, {}
        except NotRegular:
            # Never read (a FIFO would hang the run), never renamed aside (/dev/null!).
            raise StateError(
                f"state file {self.path} is not a regular file: refused; {NOT_RECORDED}"
            ) from None
        except OSError as exc:
            raise StateError(f"state file {self.path}: cannot read: {exc.strerror}") from None
        try:
            if len(data) > MAX_STATE_BYTES:
                raise ValueError(f"over {MAX_STATE_BYTES // 1048576} MiB")
            document = json.loads(data.decode("utf-8"))
            if not isinstance(document, dict) or document.get("version") != STATE_VERSION:
                raise ValueError("not a state file of this version")
            # Every group is validated, not only this run's: a bad one is reported now, once.
            probes = {name: _load_probes(raw) for name, raw in document["groups"].items()}
            targets = {
                name: _TARGET_GROUP.validate_python(raw)
                for name, raw in document.setdefault("targets", {}).items()
            }
            return document, probes.get(key, {}), targets.get(key, {})
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
            kept = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            with contextlib.suppress(OSError):
                os.replace(self.path, kept)
            self.warning = (
                f"state file {self.path} was unreadable ({type(exc).__name__}: "
                f"{(str(exc).splitlines() or [''])[0][:80]}); kept as {kept.name}, counters restart from zero"
            )
            return fresh, {}, {}

    def write(self, document: dict[str, Any]) -> None:
        # Write-then-rename: a crash leaves the old file or the new one, never half of each.
        # json.dumps, not json.dump: dump streams through the pure-Python encoder, 20x slower.
        data = json.dumps(document, separators=(",", ":")).encode("utf-8")
        if not is_replaceable(self.path):
            raise StateError(f"state file {self.path} is not a regular file: refused; {NOT_RECORDED}")
        fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
            # The rename is durable only once the directory entry is on disk too.
            directory = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise StateError(
                f"state file {self.path}: cannot write: {exc.strerror}; {NOT_RECORDED}"
            ) from None
