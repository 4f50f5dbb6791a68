"""The `backups:` section: where the seed's `backup.sh` writes, and what a good backup holds.

backups:
  directory: /backup/claude-code     # one dated directory per run (2026-01-31_02-00-00)
  max_age: 26h                       # a daily job, with slack for a slow run
  verify: restore
  restore: {host: 127.0.0.1, port: 5432, user: postgres, password: ${PGPASSWORD}, nonempty: [users]}
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from slo.config.fields import Duration, StrictModel

__all__ = ["BackupsSettings", "RestoreSettings"]

_DAY = 86400.0
# A table, optionally schema-qualified; kept to plain identifiers so the probe's SQL quotes them.
_TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")
_ROLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class RestoreSettings(StrictModel):
    """A PostgreSQL server where the dump is restored into a scratch database, then dropped.

    Never the production database: the probe creates ``slo_restore_check_*`` and drops it.
    `user` only creates and drops: the dump is replayed as a role that is no superuser (one
    the probe creates and drops, or `role`), with psql's meta-commands refused, so a backup
    cannot run code. Ownership is not restored (as ``pg_restore --no-owner``); the restore
    stops at the first error, unlike the seed's `restore.sh`.
    """

    host: str = "127.0.0.1"
    port: int = Field(5432, ge=1, le=65535)
    user: str = "postgres"
    password: SecretStr | None = None
    #: An existing role (no superuser) to replay the dump as, instead of a throwaway one.
    role: str | None = None
    role_password: SecretStr | None = None
    #: The database to connect to while creating and dropping the scratch database.
    maintenance_db: str = "postgres"
    #: Tables that must exist after the restore (``users`` or ``public.users``).
    tables: list[str] = Field(default_factory=list)
    #: Tables that must hold at least one row after the restore.
    nonempty: list[str] = Field(default_factory=list)
    #: The whole restore, from CREATE DATABASE to the last row count.
    #: Within the run deadline (200 s by default), inside systemd's and the CronJob's 4 min.
    timeout: Duration = Field(150.0, gt=0)

    @field_validator("role")
    @classmethod
    def _plain_role(cls, role: str | None) -> str | None:
        if role is not None and not _ROLE.fullmatch(role):
            raise ValueError(f"invalid role name {role!r} (letters, digits and _ only)")
        return role

    @field_validator("tables", "nonempty")
    @classmethod
    def _plain_identifiers(cls, tables: list[str]) -> list[str]:
        for table in tables:
            if not _TABLE.fullmatch(table):
                raise ValueError(f"invalid table name {table!r} (write name or schema.name)")
        return tables

    @field_validator("password", "role_password", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value


class BackupsSettings(StrictModel):
    """One directory of dated backups, as the seed's `backup.sh` writes them."""

    directory: Path
    #: Files every backup holds (the seed's five).
    expected: list[str] = Field(
        default_factory=lambda: [
            "config.tar.gz",
            "database.sql",
            "logs.tar.gz",
            "user-data.tar.gz",
            "manifest.txt",
        ],
        min_length=1,
    )
    #: The manifest that must name every file of the backup; empty for none.
    manifest: str = "manifest.txt"
    #: The `pg_dump` output (plain SQL) among the expected files.
    dump: str = "database.sql"
    #: The newest backup is younger than this (by its directory's modification time).
    max_age: Duration = Field(_DAY + 2 * 3600, gt=0)
    #: At least this many backups exist.
    min_count: int = Field(1, ge=1)
    #: No backup is older than this: the cleanup ran. The seed's ``find -mtime +30`` removes
    #: directories whose age in whole days is over 30, so one may be just under 31 days old.
    retention: Duration = Field(31 * _DAY, gt=0)
    #: Reading the newest backup's archives (each check in all), within the run deadline.
    deadline: Duration = Field(60.0, gt=0)
    #: Entries one tar archive may hold: a tar of millions of empty files is not read for ever.
    max_members: int = Field(1_000_000, ge=1)
    #: What one archive may inflate to: a small .tar.gz of zeros is not read for ever.
    max_inflated_bytes: int = Field(16 << 30, ge=1 << 20)
    verify: Literal["none", "restore"] = "none"
    restore: RestoreSettings | None = None

    @model_validator(mode="after")
    def _restore_needs_a_server(self) -> BackupsSettings:
        if self.verify == "restore" and self.restore is None:
            raise ValueError("verify: restore needs a restore: section (the PostgreSQL to restore into)")
        if self.retention <= self.max_age:
            raise ValueError("retention must be longer than max_age")
        return self
