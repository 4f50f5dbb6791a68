"""Restore a plain `pg_dump` into a scratch database with `psql`, check it, drop it.

`psql` is what the seed's `restore.sh` uses, and the only client that replays a plain dump
(its ``COPY ... FROM stdin`` blocks) as written. A backup is data, never code, so the replay:

- runs psql in restricted mode (``\\restrict`` with a random key): every meta-command the
  dump holds (``\\!``, ``\\o``, ``\\getenv``, ...) is refused; a genuine pg_dump's own
  ``\\restrict``/``\\unrestrict`` pair is taken out, so it cannot lift the restriction;
- gives psql only the ``PG*`` variables it needs, never the runner's environment;
- connects as a role that is no superuser (a throwaway one, or `restore.role`), owner of the
  scratch database only, so ``COPY ... FROM PROGRAM`` and server files are refused;
- drops ownership statements (``ALTER ... OWNER TO``, as ``pg_restore --no-owner``): that
  role cannot become the dump's owners, and the check is about the data.

A dump that tries any of it fails the probe with a line naming what it tried. The whole check
ends by `restore.timeout` and by the run deadline; psql and whatever it started are killed
with their process group; the scratch database and the throwaway role are dropped whatever
happens (a timeout, a signal, an exception).

    problems = restore_problems(Path("/backup/claude-code/2026-01-31_02-00-00/database.sql"), settings)
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from slo.config.backups import RestoreSettings
from slo.exchange.deadline import probe_deadline
from slo.files import NotRegular, open_regular
from slo.processes import OutputTooLarge, RunTimeout, run_bounded

__all__ = ["SCRATCH_PREFIX", "RestoreError", "restore_problems"]

#: The scratch database's (and throwaway role's) name: a prefix nobody uses, a random suffix.
SCRATCH_PREFIX = "slo_restore_check_"
#: Dropping the scratch database gets its own deadline, even after the restore ran out of time.
_DROP_TIMEOUT = 30.0
#: What psql may say on stderr before it is cut (a dump of errors must not fill memory).
_STDERR_CAP = 64 * 1024
#: What the check's own queries may print (a line per configured table).
_STDOUT_CAP = 1 << 20
#: The dump is fed to psql a line at a time, a long line in pieces of this size.
_LINE_CAP = 1 << 20
#: The libpq settings of the runner psql may see: how to reach the server securely.
_PASSED_ON = ("PGSSLMODE", "PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY", "PGSSLCRL", "PGPASSFILE")
#: Server-side privileges that run programs or touch the server's files.
_DANGEROUS = ("pg_execute_server_program", "pg_read_server_files", "pg_write_server_files")

_OWN_RESTRICT = re.compile(rb"\\restrict ([A-Za-z0-9]+)\r?\n")
_OWNER = re.compile(rb"ALTER [A-Z][A-Z ]* .+ OWNER TO [^;\n]+;\r?\n")
_COPY_FROM_STDIN = re.compile(rb"COPY .+ FROM stdin;\r?\n")
_PSQL_LINE = re.compile(r"psql:<stdin>:(\d+):")
_META = re.compile(rb"\\[^\s\\]{0,20}")
#: What the server refused, as the finding names it.
_REFUSED = (
    ("external program", "COPY ... PROGRAM (a program on the database server)"),
    ("pg_read_server_files", "to read a file on the database server"),
    ("pg_write_server_files", "to write a file on the database server"),
    ("must be superuser", "a statement only a superuser may run"),
)


class RestoreError(Exception):
    """The restore could not be tried or did not work; the message is the one line to show."""


class RestoreTimeout(RestoreError):
    """The whole check ran out of `backups.restore.timeout` or the run deadline."""


class _Psql:
    """psql as one role, with only the libpq variables it needs."""

    def __init__(
        self, binary: str, settings: RestoreSettings, deadline: tuple[float, str], user: str, password: str
    ) -> None:
        self.binary, self.settings, self.user = binary, settings, user
        #: When the check must end, and which limit that is.
        self.deadline, self.limit = deadline
        self.env = {name: os.environ[name] for name in _PASSED_ON if name in os.environ}
        # Never on the command line (visible in `ps`): libpq reads it from the environment.
        self.env.update(PGCONNECT_TIMEOUT="10", PGAPPNAME="slo-restore-check", LC_ALL="C")
        if password:
            self.env["PGPASSWORD"] = password

    @property
    def out_of_time(self) -> str:
        return f"restore check ran out of time ({self.limit})"

    def run(
        self,
        database: str,
        *args: str,
        stdin: Iterator[bytes] | tuple[bytes, ...] = (),
        output: bool = True,
        timeout: float | None = None,
    ) -> str:
        """psql's output (unaligned, tuples only); RestoreError with its first error line."""
        deadline = self.deadline if timeout is None else time.monotonic() + timeout
        if deadline <= time.monotonic():
            raise RestoreTimeout(self.out_of_time)
        command = [
            self.binary, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
            "-h", self.settings.host, "-p", str(self.settings.port),
            "-U", self.user, "-d", database, *args,
        ]  # fmt: skip
        try:
            done = run_bounded(
                command,
                env=self.env,
                deadline=deadline,
                stdout_cap=_STDOUT_CAP if output else None,
                stderr_keep=_STDERR_CAP,
                stdin=stdin,
            )
        except RunTimeout:
            raise RestoreTimeout(self.out_of_time) from None
        except OutputTooLarge as exc:
            raise RestoreError(f"psql printed {exc} (the check's cap)") from None
        if done.returncode != 0:
            raise RestoreError(_first_error(done.stderr.decode("utf-8", "replace")))
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

    Returns the check's problems; raises RestoreError when the restore itself fails, or the
    dump tried to run code (its message then starts with ``SECURITY:``).
    """
    binary = shutil.which("psql")
    if binary is None:
        raise RestoreError("psql not found on this runner (install postgresql-client)")
    own = time.monotonic() + settings.timeout
    at = probe_deadline(settings.timeout)
    deadline = (at, f"{settings.timeout:g}s, backups.restore.timeout" if at >= own else "the run deadline")
    password = settings.password.get_secret_value() if settings.password else ""
    admin = _Psql(binary, settings, deadline, settings.user, password)
    scratch = SCRATCH_PREFIX + secrets.token_hex(6)
    if settings.role is None:
        role, role_password = scratch, secrets.token_urlsafe(24)
        create_role = (
            f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE '
            f"PASSWORD '{_scram(role_password)}';\n"
        )
    else:
        role = settings.role
        role_password = settings.role_password.get_secret_value() if settings.role_password else ""
        _refuse_powerful(admin, role)
        create_role = ""
    throwaway = role if settings.role is None else None
    # On stdin, not the command line: `ps` shows neither the role's password verifier nor the SQL.
    create = f'{create_role}CREATE DATABASE "{scratch}" OWNER "{role}";\n'
    try:
        admin.run(settings.maintenance_db, "-f", "-", stdin=(create.encode(),), output=False)
        problems = _restore_and_check(
            _Psql(binary, settings, deadline, role, role_password), scratch, dump, settings
        )
    except BaseException:
        # The first failure is the one to report (a signal's exit included); cleaning up is tried.
        with contextlib.suppress(RestoreError):
            _drop(admin, scratch, throwaway)
        raise
    _drop(admin, scratch, throwaway)
    return problems


def _refuse_powerful(admin: _Psql, role: str) -> None:
    """A named replay role must not be, or be able to become (SET ROLE), a superuser or a
    holder of the server-file roles."""
    dangerous = ", ".join(f"'{name}'" for name in _DANGEROUS)
    query = (
        "SELECT r.rolsuper OR EXISTS (SELECT 1 FROM pg_roles s WHERE s.oid <> r.oid "
        f"AND (s.rolsuper OR s.rolname IN ({dangerous})) AND pg_has_role(r.oid, s.oid, 'MEMBER')) "
        f"FROM pg_roles r WHERE r.rolname = '{role}';\n"
    )
    answer = admin.run(admin.settings.maintenance_db, "-f", "-", stdin=(query.encode(),)).strip()
    if answer == "":
        raise RestoreError(f"backups.restore.role {role} does not exist")
    if answer != "f":
        raise RestoreError(
            f"backups.restore.role {role} is a superuser or may run programs or read server files: "
            "a backup must be replayed by a role that cannot"
        )


def _scram(password: str) -> str:
    """A SCRAM-SHA-256 verifier (RFC 5803), so the password itself never reaches the server log."""
    salt, iterations = secrets.token_bytes(16), 4096
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored = hashlib.sha256(hmac.digest(salted, b"Client Key", "sha256")).digest()
    server = hmac.digest(salted, b"Server Key", "sha256")

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored)}:{b64(server)}"


def _restore_and_check(psql: _Psql, scratch: str, dump: Path, settings: RestoreSettings) -> list[str]:
    key = secrets.token_hex(16)
    try:
        with open_regular(dump) as stream:
            psql.run(scratch, "-c", f"\\restrict {key}", "-f", "-", stdin=_as_data(stream), output=False)
    except NotRegular:
        raise RestoreError(f"{dump.name} is not a regular file") from None
    except RestoreTimeout:
        raise
    except RestoreError as exc:
        if "invalid command \\restrict" in str(exc):
            raise RestoreError(
                "psql on this runner cannot refuse a dump's meta-commands (no \\restrict): install "
                "postgresql-client 13.22, 14.19, 15.14, 16.10, 17.6 or later"
            ) from None
        raise RestoreError(_finding(dump, str(exc)) or f"restoring {dump.name} failed: {exc}") from None
    wanted = sorted({_qualified(table) for table in (*settings.tables, *settings.nonempty)})
    names = ", ".join(f"'{table}'" for table in wanted) or "NULL"
    listed = psql.run(
        scratch,
        "-c",
        "SELECT 'count ' || count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "UNION ALL SELECT n.nspname || '.' || c.relname FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        f"WHERE c.relkind IN ('r', 'p') AND n.nspname || '.' || c.relname IN ({names})",
    ).splitlines()
    if "count 0" in listed:
        return [f"{dump.name} restored no tables"]
    present = set(listed)
    problems = [f"table {t} missing after restore" for t in settings.tables if _qualified(t) not in present]
    for table in settings.nonempty:
        if _qualified(table) not in present:
            problems.append(f"table {table} missing after restore")
        elif psql.run(scratch, "-c", f"SELECT EXISTS (SELECT 1 FROM {_quoted(table)})").strip() != "t":
            problems.append(f"table {table} restored empty")
    return problems


def _as_data(stream: IO[bytes]) -> Iterator[bytes]:
    """The dump as psql replays it: its own ``\\restrict`` pair and ownership lines blanked
    (blank, not removed, so psql's line numbers are the dump's), everything else as it is.

    Only a ``\\restrict`` among the header comments is the dump's own; its ``\\unrestrict``
    is the one with the same key. Lines inside ``COPY ... FROM stdin`` blocks are data.
    """
    key: bytes | None = None
    header, in_copy, line_start = True, False, True
    while chunk := stream.readline(_LINE_CAP):
        if line_start:
            if in_copy:
                in_copy = chunk.rstrip(b"\r\n") != b"\\."
            elif header and key is None and (own := _OWN_RESTRICT.fullmatch(chunk)):
                key, chunk = own.group(1), b"\n"
            elif _OWNER.fullmatch(chunk) or (key and chunk.rstrip(b"\r\n") == b"\\unrestrict " + key):
                chunk = b"\n"
            elif _COPY_FROM_STDIN.fullmatch(chunk):
                in_copy = True
            header = header and (not chunk.strip() or chunk.startswith(b"--"))
        line_start = chunk.endswith(b"\n")
        yield chunk


def _finding(dump: Path, error: str) -> str | None:
    """The security finding a refused statement means, or None for an ordinary failure."""
    line = _PSQL_LINE.search(error)
    where = f" (line {line.group(1)})" if line else ""
    if "backslash commands are restricted" in error:
        command = _meta_command(dump, int(line.group(1))) if line else "a meta-command"
        what = f"to run the psql meta-command {command}"
    else:
        what = next((name for marker, name in _REFUSED if marker in error), "")
        if not what:
            return None
    return f"SECURITY: {dump.name} tried {what}{where}; refused: a backup is data, never code"


def _meta_command(dump: Path, number: int) -> str:
    """The meta-command at line `number` of the dump (``\\!``), read again within a cap."""
    with open_regular(dump) as stream:
        seen, line_start = 0, True
        while chunk := stream.readline(_LINE_CAP):
            if line_start:
                seen += 1
                if seen == number:
                    found = _META.match(chunk.lstrip())
                    return found.group().decode("ascii", "replace") if found else "a meta-command"
            line_start = chunk.endswith(b"\n")
    return "a meta-command"


def _drop(admin: _Psql, scratch: str, role: str | None) -> None:
    """Drop the scratch database (and the throwaway role), even after the restore ran out of time."""
    statements = f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE);\n'
    if role is not None:
        statements += f'DROP ROLE IF EXISTS "{role}";\n'
    try:
        admin.run(
            admin.settings.maintenance_db, "-f", "-", stdin=(statements.encode(),), timeout=_DROP_TIMEOUT
        )
    except RestoreError as exc:
        raise RestoreError(f"could not drop the scratch database {scratch}: {exc}") from None


def _qualified(table: str) -> str:
    return table if "." in table else f"public.{table}"
