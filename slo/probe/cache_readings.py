"""The previous run's readings of probes that judge a change (Redis' eviction counter).

A small JSON file apart from the state file (whose job is the pushed counters): one reading
per key, replaced under an exclusive `flock` (with a deadline) so overlapping runs do not lose each
other's.

    previous = Readings(path).exchange("local/cache", current.as_dict())   # None the first time
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from slo import conventions
from slo.locks import lock_exclusive
from slo.options import default_state_file

__all__ = ["LOCK_TIMEOUT", "Readings", "ReadingsLocked", "default_readings_file"]


def default_readings_file(env_name: str) -> Path:
    """Beside the probes' state file, which is kept outside the repo for the same reason."""
    return default_state_file(conventions.JOB, env_name).with_name(f"readings-{env_name}.json")


#: Overlapping runs hold the lock for milliseconds; longer, and another run is stuck holding it.
LOCK_TIMEOUT = 10.0


class ReadingsLocked(RuntimeError):
    """Another run holds the readings file's lock past :data:`LOCK_TIMEOUT`."""


class Readings:
    def __init__(self, path: Path) -> None:
        self.path = path

    def exchange(self, key: str, current: dict[str, Any]) -> dict[str, Any] | None:
        """Store `current` under `key` and give the reading it replaces (None for the first).

        A file that is not valid JSON is replaced: a lost reading only widens one comparison.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a") as lock:
            if not lock_exclusive(lock, LOCK_TIMEOUT):
                raise ReadingsLocked(
                    f"readings file {self.path}: still locked by another run after {LOCK_TIMEOUT:.0f} s"
                )
            readings = self._load()
            previous = readings.get(key)
            readings[key] = current
            self._save(readings)
        return previous if isinstance(previous, dict) else None

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _save(self, readings: dict[str, Any]) -> None:
        descriptor, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            json.dump(readings, out, sort_keys=True)
        os.replace(temporary, self.path)
