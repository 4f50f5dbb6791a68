"""What makes a backup good, as the seed's `backup.sh` writes it: pure checks on files.

    backups = list_backups(Path("/backup/claude-code"))
    problems = unreadable_files(backups[0])    # [] when every archive reads to its end

Each check returns the problems it found as short phrases for the probe's one failure line;
an empty list means the check passed; :class:`BackupChecks` turns them into the probes'
failure lines. The restore itself is in :mod:`slo.probe.restore`.
"""

from __future__ import annotations

import gzip
import os
import re
import tarfile
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from slo.config.backups import BackupsSettings
from slo.exchange.deadline import probe_deadline
from slo.exchange.failures import ProbeFailure
from slo.files import NotRegular, open_regular
from slo.probe.restore import RestoreError, restore_problems
from slo.units import format_duration

__all__ = [
    "DUMP_TRAILER",
    "Backup",
    "BackupChecks",
    "format_age",
    "list_backups",
    "manifest_problems",
    "missing_or_empty",
    "retention_problems",
    "unreadable_files",
]

#: The last line `pg_dump` writes in plain format: a dump without it was cut short.
DUMP_TRAILER = b"-- PostgreSQL database dump complete"
#: Archives are read through in pieces of this size, so a large one costs bounded memory.
_CHUNK = 1 << 20
#: A manifest names a handful of files: more than this is not a manifest.
_MANIFEST_CAP = 1 << 20
#: A file name with one of the suffixes backups use: what a manifest is searched for.
_LISTED_NAME = re.compile(r"[\w.-]+\.(?:tar\.gz|tgz|tar|sql|gz|dump|zip)\b")


@dataclass(frozen=True)
class Backup:
    """One dated directory of a backup run; its age is its modification time's, as the
    seed's cleanup (``find -mtime``) sees it."""

    path: Path
    mtime: float

    @property
    def name(self) -> str:
        return self.path.name


def list_backups(directory: Path) -> list[Backup]:
    """The backup directories under `directory`, newest first. Raises OSError if unreadable."""
    backups = [Backup(entry, entry.stat().st_mtime) for entry in directory.iterdir() if entry.is_dir()]
    return sorted(backups, key=lambda backup: backup.mtime, reverse=True)


def format_age(seconds: float) -> str:
    """An age as the person on call reads it: ``3.2 days``, ``5.0 hours``, ``12 minutes``."""
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} hours"
    return f"{max(seconds, 0) / 60:.0f} minutes"


def missing_or_empty(backup: Backup, expected: Sequence[str]) -> list[str]:
    problems = []
    for name in expected:
        path = backup.path / name
        if not path.is_file():
            problems.append(f"{name} missing")
        elif path.stat().st_size == 0:
            problems.append(f"{name} empty")
    return problems


@dataclass(frozen=True)
class ReadLimits:
    """How long one check may read a backup's archives, and how much they may hold.

    unreadable_files(backup, limits=ReadLimits.of(settings))
    """

    deadline: float
    max_members: int
    max_inflated_bytes: int
    #: The settings behind the deadline, for the failure line.
    deadline_source: str = "the deadline"

    @classmethod
    def of(cls, settings: BackupsSettings) -> ReadLimits:
        return cls(
            probe_deadline(settings.deadline),
            settings.max_members,
            settings.max_inflated_bytes,
            f"backups.deadline {format_duration(settings.deadline)} or the run deadline",
        )


class _Beyond(Exception):
    """An archive past a limit; the message is the problem."""


class _Reading:
    """One archive read against the limits: time left, bytes inflated, members seen."""

    def __init__(self, limits: ReadLimits) -> None:
        self.limits, self.inflated, self.members = limits, 0, 0

    def inflate(self, size: int) -> None:
        self.inflated += size
        if self.inflated > self.limits.max_inflated_bytes:
            raise _Beyond(
                f"inflates past {self.limits.max_inflated_bytes} bytes (backups.max_inflated_bytes)"
            )
        if time.monotonic() >= self.limits.deadline:
            raise _Beyond(f"not read to its end by the deadline ({self.limits.deadline_source})")

    def member(self) -> None:
        self.members += 1
        if self.members > self.limits.max_members:
            raise _Beyond(f"holds over {self.limits.max_members} entries (backups.max_members)")
        self.inflate(0)


def unreadable_files(
    backup: Backup, dump: str = "database.sql", limits: ReadLimits | None = None
) -> list[str]:
    """Every archive read to its end (a truncated or corrupt one fails), and the SQL dump
    ends with pg_dump's trailer. Files that are missing are `missing_or_empty`'s business.

    Reading stops at `limits` (default: a minute, a million entries, 16 GiB per archive)."""
    limits = limits or ReadLimits(probe_deadline(60), 1_000_000, 16 << 30)
    problems = []
    for path in sorted(backup.path.iterdir()):
        if not path.is_file() or path.stat().st_size == 0:
            continue
        problem = None
        try:
            if path.name == dump:
                problem = _dump_problem(path)
            elif path.name.endswith((".tar.gz", ".tgz")):
                # tarfile stops at the tar end marker, before gzip's checksum: check that first.
                problem = _gzip_problem(path, limits) or _tar_problem(path, limits)
            elif path.name.endswith(".tar"):
                problem = _tar_problem(path, limits)
            elif path.name.endswith(".gz"):
                problem = _gzip_problem(path, limits)
        except _Beyond as exc:
            problem = str(exc)
        except NotRegular:
            problem = "is not a regular file"
        if problem:
            problems.append(f"{path.name} {problem}")
    return problems


def _tar_problem(path: Path, limits: ReadLimits) -> str | None:
    reading = _Reading(limits)
    try:
        with open_regular(path) as raw, tarfile.open(fileobj=raw, mode="r:*") as archive:
            while (member := archive.next()) is not None:
                # Kept by tarfile for lookups this walk never makes: a tar of millions of
                # entries would hold them all (about 500 bytes each).
                archive.members.clear()  # type: ignore[attr-defined]
                reading.member()
                if member.isfile():
                    extracted = archive.extractfile(member)
                    if extracted is not None:
                        while chunk := extracted.read(_CHUNK):
                            reading.inflate(len(chunk))
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        return f"unreadable ({_archive_error(exc)})"
    return None


def _gzip_problem(path: Path, limits: ReadLimits) -> str | None:
    reading = _Reading(limits)
    try:
        with open_regular(path) as raw, gzip.open(raw, "rb") as stream:
            while chunk := stream.read(_CHUNK):
                reading.inflate(len(chunk))
    except (EOFError, zlib.error, OSError) as exc:
        return f"unreadable ({_archive_error(exc)})"
    return None


def _archive_error(exc: BaseException) -> str:
    if isinstance(exc, EOFError):
        return "cut short"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:120]


def _dump_problem(path: Path) -> str | None:
    with open_regular(path) as stream:
        stream.seek(max(0, os.fstat(stream.fileno()).st_size - 4096))
        tail = stream.read()
    if DUMP_TRAILER not in tail:
        return "cut short (no '-- PostgreSQL database dump complete' at its end)"
    return None


def manifest_problems(backup: Backup, manifest: str) -> list[str]:
    """The manifest names every other file of the backup, and each file it names exists."""
    path = backup.path / manifest
    try:
        with open_regular(path) as stream:
            raw = stream.read(_MANIFEST_CAP + 1)
    except FileNotFoundError:
        return [f"{manifest} missing"]
    except NotRegular:
        return [f"{manifest} is not a regular file"]
    if len(raw) > _MANIFEST_CAP:
        return [f"{manifest} is over {_MANIFEST_CAP} bytes: not a manifest"]
    text = raw.decode("utf-8", "replace")
    listed = set(_LISTED_NAME.findall(text))
    present = {entry.name for entry in backup.path.iterdir() if entry.is_file() and entry.name != manifest}
    problems = [f"{name} not in {manifest}" for name in sorted(present - listed)]
    problems += [f"{manifest} lists {name}, which is not there" for name in sorted(listed - present)]
    return problems


def retention_problems(backups: Sequence[Backup], now: float, retention: float, min_count: int) -> list[str]:
    problems = []
    if len(backups) < min_count:
        problems.append(f"{len(backups)} backups, fewer than min_count {min_count}")
    expired = [backup for backup in backups if now - backup.mtime > retention]
    if expired:
        oldest = min(expired, key=lambda backup: backup.mtime)
        problems.append(
            f"{len(expired)} older than the retention of {format_duration(retention)} "
            f"(oldest {oldest.name}, {format_age(now - oldest.mtime)}): the cleanup did not run"
        )
    return problems


class BackupChecks:
    """The backup probes' checks on one `backups:` section: each gives its failure line, or
    None when the check passed.

        checks = BackupChecks(config.backups)
        assert not (problem := checks.stale()), problem
    """

    def __init__(self, settings: BackupsSettings, now: float | None = None) -> None:
        self.settings = settings
        self.now = time.time() if now is None else now

    def backups(self) -> list[Backup]:
        try:
            return list_backups(self.settings.directory)
        except OSError as exc:
            raise ProbeFailure(
                f"backups {self.settings.directory}: cannot list: {exc.strerror or exc}"
            ) from None

    def newest(self) -> Backup:
        found = self.backups()
        if not found:
            raise ProbeFailure(f"backups {self.settings.directory}: no backup at all")
        return found[0]

    def stale(self) -> str | None:
        newest = self.newest()
        age = self.now - newest.mtime
        if age <= self.settings.max_age:
            return None
        return (
            f"backups {self.settings.directory}: newest backup {newest.name} is {format_age(age)} old, "
            f"over {format_duration(self.settings.max_age)} (backups.max_age): the backup job has not run"
        )

    def incomplete(self) -> str | None:
        newest = self.newest()
        return _line(f"backup {newest.path}", missing_or_empty(newest, self.settings.expected))

    def unreadable(self) -> str | None:
        newest = self.newest()
        limits = ReadLimits.of(self.settings)
        return _line(f"backup {newest.path}", unreadable_files(newest, self.settings.dump, limits))

    def unlisted(self) -> str | None:
        """None as well when no manifest is configured."""
        if not self.settings.manifest:
            return None
        newest = self.newest()
        return _line(f"backup {newest.path}", manifest_problems(newest, self.settings.manifest))

    def retention(self) -> str | None:
        settings = self.settings
        problems = retention_problems(self.backups(), self.now, settings.retention, settings.min_count)
        return _line(f"backups {settings.directory}", problems)

    def unrestorable(self) -> str | None:
        """Restore the newest dump into a scratch database (`verify: restore` only)."""
        settings, restore = self.settings, self.settings.restore
        assert restore is not None, "only with verify: restore"
        newest = self.newest()
        dump = newest.path / settings.dump
        if not dump.is_file():
            return f"backup {newest.path}: {settings.dump} missing, nothing to restore"
        where = f"restore check on {restore.host}:{restore.port}"
        try:
            problems = restore_problems(dump, restore)
        except RestoreError as exc:
            return f"backup {newest.path}: {where}: {exc}"
        return _line(f"backup {newest.path}: {where}", problems)


def _line(head: str, problems: list[str]) -> str | None:
    """`head: problem; problem`, the probe's one failure line, or None without problems."""
    return f"{head}: " + "; ".join(problems) if problems else None
