"""Restore a plain `pg_dump` into a scratch database with `psql`, check it, drop it.

`psql` is what the seed's `restore.sh` uses, and the only client that replays a plain dump
(its ``COPY ... FROM stdin`` blocks) as written. The scratch database has a unique name and
is dropped whatever happens, so a failed check never leaves it behind.

    problems = restore_problems(Path("/backup/claude-code/2026-01-31_02-00-00/database.sql"), settings)
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

from slo.config.backups import RestoreSettings

__all__ = ["SCRATCH_PREFIX", "RestoreError", "restore_problems"]

#: The scratch database's name: a prefix nobody uses for real data, and a random suffix.
SCRATCH_PREFIX = "slo_restore_check_"
#: Dropping the scratch database gets its own deadline, even after the restore ran out of time.
_DROP_TIMEOUT = 30.0
#: What psql may say on stderr before it is cut (a dump of errors must not fill memory).
_STDERR_CAP = 64 * 1024


class RestoreError(Exception):
    """The restore could not be tried or did not work; the message is the one line to show."""


class RestoreTimeout(RestoreError):
    """The whole check ran out of `backups.restore.timeout`."""


class _Psql:
    def __init__(self, settings: RestoreSettings, deadline: float) -> None:
        binary = shutil.which("psql")
        if binary is None:
            raise RestoreError("psql not found on this runner (install postgresql-client)")
        self.binary = binary
        self.settings = settings
        self.deadline = deadline
        self.env = {
            **os.environ,
            "PGCONNECT_TIMEOUT": "10",
            "PGAPPNAME": "slo-restore-check",
        }
        # Never on the command line (visible in `ps`): libpq reads it from the environment.
        self.env.pop("PGPASSWORD", None)
        if settings.password is not None:
            self.env["PGPASSWORD"] = settings.password.get_secret_value()

    @property
    def out_of_time(self) -> str:
        return f"restore check ran out of time ({self.settings.timeout:g}s, backups.restore.timeout)"

    def run(self, database: str, *args: str, timeout: float | None = None) -> str:
        """psql's output (unaligned, tuples only); RestoreError with its first error line."""
        remaining = self.deadline - time.monotonic() if timeout is None else timeout
        if remaining <= 0:
            raise RestoreTimeout(self.out_of_time)
        command = [
            self.binary, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
            "-h", self.settings.host, "-p", str(self.settings.port),
            "-U", self.settings.user, "-d", database, *args,
        ]  # fmt: skip
        try:
            done = subprocess.run(
                command,
                env=self.env,
                capture_output=True,
                timeout=remaining,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise RestoreTimeout(self.out_of_time) from None
        if done.returncode != 0:
            raise RestoreError(_first_error(done.stderr[:_STDERR_CAP].decode("utf-8", "replace")))
        return done.stdout.decode("utf-8", "replace")


def _first_error(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if "ERROR:" in line or "FATAL:" in line or "error:" in line:
            return line[:300]
    return (lines[0] if lines else "psql failed without a message")[:300]


def _quoted(table: str) -> str:
    schema, _, name = table.rpartition(".")
    return f'"{schema or "public"}"."{name}"'


def restore_problems(dump: Path, settings: RestoreSettings) -> list[str]:
    """Restore `dump` into a fresh database, check `tables` and `nonempty`, drop it.

    Returns the check's problems; raises RestoreError when the restore itself fails.
    """
    psql = _Psql(settings, time.monotonic() + settings.timeout)
    scratch = SCRATCH_PREFIX + secrets.token_hex(6)
    psql.run(settings.maintenance_db, "-c", f'CREATE DATABASE "{scratch}"')
    try:
        problems = _restore_and_check(psql, scratch, dump, settings)
    except RestoreError:
        _drop(psql, scratch, settings)
        raise
    _drop(psql, scratch, settings)
    return problems


def _restore_and_check(psql: _Psql, scratch: str, dump: Path, settings: RestoreSettings) -> list[str]:
    try:
        psql.run(scratch, "-f", str(dump))
    except RestoreTimeout:
        raise
    except RestoreError as exc:
        raise RestoreError(f"restoring {dump.name} failed: {exc}") from None
    listed = psql.run(
        scratch,
        "-c",
        "SELECT n.nspname || '.' || c.relname FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')",
    )
    present = set(listed.split())
    if not present:
        return [f"{dump.name} restored no tables"]
    problems = [f"table {t} missing after restore" for t in settings.tables if _qualified(t) not in present]
    for table in settings.nonempty:
        if _qualified(table) not in present:
            problems.append(f"table {table} missing after restore")
        elif psql.run(scratch, "-c", f"SELECT EXISTS (SELECT 1 FROM {_quoted(table)})").strip() != "t":
            problems.append(f"table {table} restored empty")
    return problems


def _drop(psql: _Psql, scratch: str, settings: RestoreSettings) -> None:
    """Drop the scratch database, even after the restore ran out of its time."""
    try:
        psql.run(
            settings.maintenance_db,
            "-c",
            f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)',
            timeout=_DROP_TIMEOUT,
        )
    except RestoreError as exc:
        raise RestoreError(f"could not drop the scratch database {scratch}: {exc}") from None


def _qualified(table: str) -> str:
    return table if "." in table else f"public.{table}"
