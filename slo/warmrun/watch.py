"""Which files the warm runner's code and config are, and whether any of them changed.

A forked run uses the modules the runner imported at its start: after a deploy, a `pip
install` or an edited `monitoring.yaml` the runner must re-exec itself, or it would keep
running yesterday's probes. Watched: every imported module of the `slo` package and of the
project (outside the interpreter's own directories), the config file, and the directories the
probes came from (a new probe file changes them). Checked with one ``stat`` each before a run.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from collections.abc import Iterable
from pathlib import Path

__all__ = ["Watch", "imported_files", "package_dir"]

Stamp = tuple[int, int] | None


def _stamp(path: Path) -> Stamp:
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size


def imported_files(package_dir: Path, project: Path | None) -> set[Path]:
    """The source files of the imported modules of `package_dir` and of `project` (the rootdir)."""
    outside = {Path(p).resolve() for p in {sys.prefix, sys.base_prefix, *sysconfig.get_paths().values()}}
    files = set()
    for module in list(sys.modules.values()):
        name = getattr(module, "__file__", None)
        if not name:
            continue
        path = Path(name).resolve()
        if path.is_relative_to(package_dir) or (
            project is not None
            and path.is_relative_to(project)
            and not any(path.is_relative_to(other) for other in outside)
        ):
            files.add(path)
    return files


class Watch:
    def __init__(self, paths: Iterable[Path]) -> None:
        self.stamps = {path: _stamp(path) for path in paths}

    def __len__(self) -> int:
        return len(self.stamps)

    def changed(self) -> Path | None:
        """The first watched file that changed, appeared or went away since the start; or None."""
        for path, stamp in self.stamps.items():
            if _stamp(path) != stamp:
                return path
        return None


def package_dir() -> Path:
    import slo

    return Path(os.path.dirname(slo.__file__)).resolve()
