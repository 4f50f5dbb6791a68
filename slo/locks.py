"""Exclusive file locks with a deadline: every wait has one, a lock held by a stuck run too.

with open(path.with_suffix(".lock"), "a") as handle:
    if not lock_exclusive(handle, timeout=30):
        raise ...  # the caller says what was not done
"""

from __future__ import annotations

import fcntl
import time
from typing import IO, Any

__all__ = ["lock_exclusive"]

#: How often a waiting run tries again: overlapping runs hold the lock for milliseconds.
_RETRY_SECONDS = 0.05


def lock_exclusive(handle: IO[Any], timeout: float) -> bool:
    """Take an exclusive `flock` on `handle` within `timeout` seconds; False if it stayed taken.

    The lock goes with the file: closing `handle` releases it.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(_RETRY_SECONDS)
