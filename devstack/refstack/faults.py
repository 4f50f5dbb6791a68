"""Injected faults: what a service should do wrong, validated, shared between request threads.

Each service of the reference stack owns one :class:`FaultState`. Request threads read a
snapshot (:class:`Faults` is immutable, so a thread never sees half an update) and the control
route ``/_faults`` replaces it under a lock. Hung requests and injected sleeps wait on the
state's condition so that clearing the fault, or stopping the server, releases them at once.
"""

from __future__ import annotations

import dataclasses
import math
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

#: An injected delay longer than this is a typo (1e308 ms would make every request fail).
MAX_LATENCY_MS = 3_600_000.0
MAX_NAMES = 100
MAX_NAME_LENGTH = 200

COMMON_FIELDS = frozenset({"latency_ms", "latency_jitter_ms", "error_rate", "status", "hang", "malformed"})
"""Fault fields every service accepts; each service adds its own (see ``FaultState``)."""


class FaultError(ValueError):
    """A fault update that cannot be applied; the message is one line naming the field."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Faults:
    """One service's injected faults. The default value is a healthy service.

    ``latency_ms`` is added to every faultable request; ``latency_jitter_ms`` spreads it
    uniformly by plus or minus that much (never below zero). ``error_rate`` (0..1) is the
    probability that a request is answered with ``status`` instead of its real response.
    ``hang`` holds requests without an answer until the fault is cleared or the server stops.
    ``malformed`` answers 200 with a body that is not valid JSON. ``sandbox_violations`` (API
    only) is reported by ``/sandbox/status``; ``unhealthy_endpoints`` (gateway only) names
    models its ``/health`` reports as unhealthy. Gateway only, as LiteLLM shows them:
    ``fallback_models`` are answered by another model with LiteLLM's fallback headers,
    ``stream_error`` sends an error event after the first chunk of a stream, and
    ``stream_cut`` ends the stream there without ``[DONE]``.
    """

    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    error_rate: float = 0.0
    status: int = 503
    hang: bool = False
    malformed: bool = False
    sandbox_violations: int = 0
    unhealthy_endpoints: tuple[str, ...] = ()
    fallback_models: tuple[str, ...] = ()
    stream_error: bool = False
    stream_cut: bool = False


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "..."


def _number(field: str, value: object, low: float, high: float) -> float:
    # bool is an int subclass: `{"latency_ms": true}` is a mistake, not 1 ms.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FaultError(f"fault field {field!r} must be a number, got {_shown(value)}", field)
    if not low <= value <= high:
        raise FaultError(
            f"fault field {field!r} must be between {low:g} and {high:g}, got {_shown(value)}", field
        )
    return float(value)


def _integer(field: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FaultError(f"fault field {field!r} must be an integer, got {_shown(value)}", field)
    if not low <= value <= high:
        raise FaultError(
            f"fault field {field!r} must be between {low} and {high}, got {_shown(value)}", field
        )
    return value


def _flag(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise FaultError(f"fault field {field!r} must be true or false, got {_shown(value)}", field)
    return value


def _names(field: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise FaultError(f"fault field {field!r} must be a list of model names, got {_shown(value)}", field)
    if len(value) > MAX_NAMES or any(not 0 < len(item) <= MAX_NAME_LENGTH for item in value):
        raise FaultError(
            f"fault field {field!r} takes at most {MAX_NAMES} names of 1 to {MAX_NAME_LENGTH} characters",
            field,
        )
    return tuple(value)


_VALIDATORS: dict[str, Callable[[str, object], Any]] = {
    "latency_ms": lambda f, v: _number(f, v, 0.0, MAX_LATENCY_MS),
    "latency_jitter_ms": lambda f, v: _number(f, v, 0.0, MAX_LATENCY_MS),
    "error_rate": lambda f, v: _number(f, v, 0.0, 1.0),
    # Injected errors are failures: informational or success codes would hide the fault.
    "status": lambda f, v: _integer(f, v, 400, 599),
    "hang": _flag,
    "malformed": _flag,
    "sandbox_violations": lambda f, v: _integer(f, v, 0, 1_000_000_000),
    "unhealthy_endpoints": _names,
    "fallback_models": _names,
    "stream_error": _flag,
    "stream_cut": _flag,
}


def validate_update(body: object, fields: frozenset[str]) -> dict[str, Any]:
    """Check a ``PUT /_faults`` body against the fields a service accepts.

    Returns the typed values to apply. Raises :class:`FaultError` for anything else: a body
    that is not an object, an unknown field, a wrong type or an out-of-range value.
    """
    if not isinstance(body, Mapping):
        raise FaultError("fault update must be a JSON object")
    update: dict[str, Any] = {}
    for field, value in body.items():
        if field not in fields:
            accepted = ", ".join(sorted(fields))
            raise FaultError(f"unknown fault field {_shown(field)}; accepted: {accepted}", field)
        update[field] = _VALIDATORS[field](field, value)
    return update


class FaultState:
    """The current faults of one service, safe to read and change from any thread.

    ``on_violations`` is called with the count each time sandbox violations are injected, so
    the metrics can count them as events.
    """

    def __init__(
        self,
        fields: frozenset[str],
        initial: Faults | None = None,
        *,
        rng: random.Random | None = None,
        on_violations: Callable[[int], None] | None = None,
    ) -> None:
        self.fields = fields
        self._faults = initial or Faults()
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self._on_violations = on_violations
        self._changed = threading.Condition()
        # An Event, not the condition, for sleeps: fault updates must not wake every sleeper.
        self._stopping = threading.Event()
        if self._faults.sandbox_violations:
            self._report_violations(self._faults.sandbox_violations)

    def current(self) -> Faults:
        """A consistent snapshot of the faults."""
        with self._changed:
            return self._faults

    def as_json(self) -> dict[str, Any]:
        """The current faults restricted to this service's fields, as ``GET /_faults`` shows."""
        values = dataclasses.asdict(self.current())
        return {
            field: list(value) if isinstance(value, tuple) else value
            for field, value in values.items()
            if field in self.fields
        }

    def update(self, body: object) -> Faults:
        """Apply a partial update (fields left out keep their value); see ``validate_update``."""
        update = validate_update(body, self.fields)
        with self._changed:
            self._faults = dataclasses.replace(self._faults, **update)
            self._changed.notify_all()
            faults = self._faults
        if update.get("sandbox_violations"):
            self._report_violations(update["sandbox_violations"])
        return faults

    def reset(self) -> Faults:
        """Back to a healthy service; releases hung requests."""
        with self._changed:
            self._faults = Faults()
            self._changed.notify_all()
            return self._faults

    def stop(self) -> None:
        """Release every waiting request for good: the server is shutting down."""
        self._stopping.set()
        with self._changed:
            self._changed.notify_all()

    def wait_while_hung(self) -> bool:
        """Block while ``hang`` is set. False means the server is stopping: drop the request."""
        with self._changed:
            self._changed.wait_for(lambda: self._stopping.is_set() or not self._faults.hang)
            return not self._stopping.is_set()

    def sleep(self, seconds: float) -> bool:
        """Sleep without holding up shutdown. False means the server is stopping."""
        return not self._stopping.wait(seconds)

    def delay_seconds(self, faults: Faults) -> float:
        """The injected latency for one request, jitter included."""
        jitter = faults.latency_jitter_ms
        with self._rng_lock:
            spread = self._rng.uniform(-jitter, jitter) if jitter else 0.0
        return max(0.0, faults.latency_ms + spread) / 1000.0

    def roll_error(self, faults: Faults) -> bool:
        """Whether this request (or check) fails, with probability ``error_rate``."""
        if faults.error_rate <= 0.0:
            return False
        with self._rng_lock:
            return self._rng.random() < faults.error_rate

    def _report_violations(self, count: int) -> None:
        if self._on_violations is not None:
            self._on_violations(count)
