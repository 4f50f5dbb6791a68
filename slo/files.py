"""Files whose path or name the runner does not control: opened only when they are regular
files, never blocking on a FIFO; names (a job, an environment) made safe as one component.

    with open_regular(Path("/backup/2026-01-31/manifest.txt")) as stream: ...
    default = state_dir / f"{path_component(job)}.json"
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import BinaryIO

__all__ = ["NotRegular", "is_replaceable", "open_regular", "path_component"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class NotRegular(OSError):
    """A path that is no regular file (a FIFO, a device, a directory): never read or replaced."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path} is not a regular file")
        self.strerror = "not a regular file"


def open_regular(path: Path) -> BinaryIO:
    """`path` opened for reading if it is a regular file; NotRegular otherwise.

    Opened without blocking and checked on the open file, so a FIFO put in its place after a
    listing cannot hang the run, and a device is never read."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise NotRegular(path)
    return os.fdopen(descriptor, "rb")


def is_replaceable(path: Path) -> bool:
    """Whether a file may be renamed over `path`: nothing is there, or a regular file."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        return True


def path_component(name: str) -> str:
    """`name` as one file name: no separator, no ``..``, nothing but letters, digits, ``._-``."""
    safe = _UNSAFE.sub("_", name).lstrip(".")
    return safe or "_"
