"""The backup probes against backups in the seed's shape, with a real `pg_dump` of a seeded
database restored into Debian's PostgreSQL (started here on a loopback port).

Each fault (a truncated dump, a stale backup, a missing file, a corrupt archive, no cleanup,
an empty table) fails the probe that exists for it, with its one line.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from probe_project import junit_cases, make_probe_project, run_probes
from prometheus_client.parser import text_string_to_metric_families
from servers import Postgres, postgres_server

from devstack.daemons import Pushgateway
from slo.config import ConfigError, load_config
from slo.config.backups import RestoreSettings
from slo.probe.backups import Backup, ReadLimits, manifest_problems, unreadable_files
from slo.probe.restore import SCRATCH_PREFIX, RestoreError, restore_problems
from slo.processes import stop
from slo.stopping import STOPPED_EXIT

DAY = 86400
FRESH = "test_backups::test_newest_backup_is_fresh"
COMPLETE = "test_backups::test_newest_backup_is_complete"
READABLE = "test_backups::test_newest_backup_is_readable"
MANIFEST = "test_backups::test_newest_backup_manifest"
RETENTION = "test_backups::test_backup_retention"
RESTORES = "test_backups::test_newest_backup_restores"
ALL = (FRESH, COMPLETE, READABLE, MANIFEST, RETENTION, RESTORES)


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    with postgres_server() as server:
        # The seed's database, as `pg_dump -U claude claude_code` would dump it.
        server.psql("CREATE DATABASE claude_code")
        server.psql(
            "CREATE TABLE users (id int PRIMARY KEY, name text);"
            "INSERT INTO users SELECT n, 'user ' || n FROM generate_series(1, 50) n;"
            "CREATE TABLE sessions (id int PRIMARY KEY, user_id int REFERENCES users);",
            "claude_code",
        )
        yield server


@pytest.fixture(scope="module")
def dump(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("dump") / "database.sql"
    postgres.pg_dump("claude_code", path)
    return path.read_bytes()


def _tar_gz(member: str, content: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo(member)
        info.size = len(content)
        archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def make_backup(directory: Path, age: float, dump: bytes, name: str = "") -> Path:
    """One run of the seed's backup.sh, `age` seconds ago."""
    when = time.time() - age
    path = directory / (name or time.strftime("%Y-%m-%d_%H-%M-%S", time.localtime(when)))
    path.mkdir(parents=True)
    (path / "config.tar.gz").write_bytes(_tar_gz("etc/claude-code/config.yaml", b"port: 8080\n"))
    (path / "database.sql").write_bytes(dump)
    # Random-looking content, so the archive is long enough to corrupt in its middle.
    (path / "logs.tar.gz").write_bytes(_tar_gz("var/log/claude-code/app.log", os.urandom(64 * 1024)))
    (path / "user-data.tar.gz").write_bytes(_tar_gz("var/lib/claude-code/users.json", b"[]\n"))
    (path / "manifest.txt").write_text(
        f"备份清单 日期: {path.name} 配置文件: config.tar.gz 数据库: database.sql "
        "日志: logs.tar.gz 用户数据: user-data.tar.gz\n",
        encoding="utf-8",
    )
    for entry in (*path.iterdir(), path):
        os.utime(entry, (when, when))
    return path


def configure(
    pytester: pytest.Pytester, directory: Path, postgres: Postgres | None = None, **extra: object
) -> None:
    backups: dict[str, object] = {"directory": str(directory), **extra}
    if postgres is not None:
        backups["verify"] = "restore"
        backups["restore"] = {
            "host": "127.0.0.1",
            "port": postgres.port,
            "user": postgres.user,
            "password": "${TEST_PGPASSWORD}",
            "tables": ["users", "public.sessions"],
            "nonempty": ["users"],
        }
    make_probe_project(pytester, None, backups=backups)


def outcomes(pytester: pytest.Pytester) -> dict[str, tuple[str, str]]:
    run_probes(pytester, "probes/test_backups.py")
    cases = junit_cases(pytester)
    return {name: (cases[name].outcome, cases[name].message) for name in ALL}


@pytest.fixture(autouse=True)
def password(postgres: Postgres, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_PGPASSWORD", postgres.password)


def test_good_backups_pass_and_restore(pytester: pytest.Pytester, postgres: Postgres, dump: bytes) -> None:
    directory = pytester.path / "backup"
    for age in (3 * DAY, 2 * DAY, 3600):
        make_backup(directory, age, dump)
    configure(pytester, directory, postgres, min_count=3)
    assert {name: outcome for name, (outcome, _) in outcomes(pytester).items()} == dict.fromkeys(
        ALL, "passed"
    )
    # The scratch database is gone again.
    assert SCRATCH_PREFIX not in postgres.psql("SELECT string_agg(datname, ' ') FROM pg_database")


def test_truncated_dump(pytester: pytest.Pytester, postgres: Postgres, dump: bytes) -> None:
    directory = pytester.path / "backup"
    make_backup(directory, 3600, dump[: len(dump) // 2])
    configure(pytester, directory, postgres)
    results = outcomes(pytester)
    assert results[READABLE][0] == "failed"
    assert (
        "database.sql cut short (no '-- PostgreSQL database dump complete' at its end)"
        in results[READABLE][1]
    )
    assert results[FRESH][0] == results[COMPLETE][0] == "passed"


def test_stale_backup(pytester: pytest.Pytester, dump: bytes) -> None:
    directory = pytester.path / "backup"
    newest = make_backup(directory, 3 * DAY, dump)
    configure(pytester, directory)
    results = outcomes(pytester)
    assert results[FRESH][0] == "failed"
    assert f"newest backup {newest.name} is 3.0 days old, over 26h (backups.max_age)" in results[FRESH][1]
    assert results[RESTORES] == ("skipped", "backups.verify is not restore")


def test_missing_file(pytester: pytest.Pytester, dump: bytes) -> None:
    directory = pytester.path / "backup"
    newest = make_backup(directory, 3600, dump)
    (newest / "user-data.tar.gz").unlink()
    (newest / "config.tar.gz").write_bytes(b"")
    configure(pytester, directory)
    results = outcomes(pytester)
    assert results[COMPLETE][0] == "failed"
    assert "user-data.tar.gz missing; config.tar.gz empty" in results[COMPLETE][1] or (
        "config.tar.gz empty; user-data.tar.gz missing" in results[COMPLETE][1]
    )
    assert "manifest.txt lists user-data.tar.gz, which is not there" in results[MANIFEST][1]


def test_corrupt_archive(pytester: pytest.Pytester, dump: bytes) -> None:
    directory = pytester.path / "backup"
    newest = make_backup(directory, 3600, dump)
    archive = newest / "logs.tar.gz"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
    archive.write_bytes(bytes(data))
    configure(pytester, directory)
    results = outcomes(pytester)
    assert results[READABLE][0] == "failed"
    assert f"backup {newest}: logs.tar.gz unreadable (" in results[READABLE][1]


def test_cleanup_not_run_and_too_few(pytester: pytest.Pytester, dump: bytes) -> None:
    directory = pytester.path / "backup"
    make_backup(directory, 40 * DAY, dump)
    make_backup(directory, 3600, dump)
    configure(pytester, directory, min_count=3)
    results = outcomes(pytester)
    assert results[RETENTION][0] == "failed"
    assert "2 backups, fewer than min_count 3; 1 older than the retention of 31d" in results[RETENTION][1]
    assert "the cleanup did not run" in results[RETENTION][1]


def test_no_backups_section_skips(pytester: pytest.Pytester) -> None:
    make_probe_project(pytester, None)
    run_probes(pytester, "probes/test_backups.py")
    cases = junit_cases(pytester)
    assert {cases[name].outcome for name in ALL} == {"skipped"}
    assert cases[FRESH].message == "monitoring.yaml has no backups: section"


def test_empty_directory(pytester: pytest.Pytester) -> None:
    (pytester.path / "backup").mkdir()
    configure(pytester, pytester.path / "backup")
    results = outcomes(pytester)
    assert results[FRESH] == ("failed", f"backups {pytester.path / 'backup'}: no backup at all")


# --- the library, directly ----------------------------------------------------------------


def test_restore_of_an_empty_table_and_a_missing_one(postgres: Postgres, dump: bytes, tmp_path: Path) -> None:
    path = tmp_path / "database.sql"
    path.write_bytes(dump)
    settings = RestoreSettings(
        port=postgres.port,
        password=postgres.password,
        tables=["users", "audit_log"],
        nonempty=["users", "sessions"],
    )
    assert restore_problems(path, settings) == [
        "table audit_log missing after restore",
        "table sessions restored empty",
    ]


def test_restore_that_fails_names_the_error_and_drops_the_scratch_database(
    postgres: Postgres, tmp_path: Path
) -> None:
    path = tmp_path / "database.sql"
    path.write_text("CREATE TABLE t (id int);\nINSERT INTO nowhere VALUES (1);\n")
    with pytest.raises(
        RestoreError, match=r'restoring database.sql failed: .*relation "nowhere" does not exist'
    ):
        restore_problems(path, RestoreSettings(port=postgres.port, password=postgres.password))
    assert SCRATCH_PREFIX not in postgres.psql("SELECT string_agg(datname, ' ') FROM pg_database")


def test_wrong_password_is_one_line_without_the_password(
    postgres: Postgres, dump: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "database.sql"
    path.write_bytes(dump)
    with pytest.raises(RestoreError) as caught:
        restore_problems(path, RestoreSettings(port=postgres.port, password="wrong-secret-xyz"))
    assert "password authentication failed" in str(caught.value)
    assert "wrong-secret-xyz" not in str(caught.value)
    assert "\n" not in str(caught.value)


def test_manifest_that_misses_a_file(tmp_path: Path) -> None:
    backup = tmp_path / "b"
    backup.mkdir()
    (backup / "database.sql").write_text("x")
    (backup / "extra.tar.gz").write_text("x")
    (backup / "manifest.txt").write_text("数据库: database.sql\n")
    assert manifest_problems(Backup(backup, 0), "manifest.txt") == ["extra.tar.gz not in manifest.txt"]


def test_truncated_gzip_archive_is_cut_short(tmp_path: Path) -> None:
    backup = tmp_path / "b"
    backup.mkdir()
    whole = _tar_gz("a", os.urandom(32 * 1024))
    (backup / "logs.tar.gz").write_bytes(whole[: len(whole) - 100])
    assert unreadable_files(Backup(backup, 0)) == ["logs.tar.gz unreadable (cut short)"]


@pytest.mark.slow
def test_restore_deadline_is_held_and_the_scratch_database_dropped(
    postgres: Postgres, tmp_path: Path
) -> None:
    path = tmp_path / "database.sql"
    path.write_text("CREATE TABLE t (id int);\nSELECT pg_sleep(60);\n")
    started = time.monotonic()
    with pytest.raises(
        RestoreError, match=r"^restore check ran out of time \(3s, backups.restore.timeout\)$"
    ):
        restore_problems(path, RestoreSettings(port=postgres.port, password=postgres.password, timeout=3))
    assert time.monotonic() - started < 40  # the 60 s sleep was cut, and the drop took its own deadline
    assert SCRATCH_PREFIX not in postgres.psql("SELECT string_agg(datname, ' ') FROM pg_database")


def test_backups_config_mistakes_are_one_line(tmp_path: Path) -> None:
    def load(backups: dict[str, object]) -> object:
        path = tmp_path / "monitoring.yaml"
        config = {"environments": {"local": {"targets": {}}}, "backups": backups}
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return load_config(path, "local")

    with pytest.raises(ConfigError, match=r"backups: verify: restore needs a restore: section"):
        load({"directory": "/backup", "verify": "restore"})
    with pytest.raises(ConfigError, match=r"backups.restore.nonempty: invalid table name 'users; DROP'"):
        load({"directory": "/backup", "verify": "restore", "restore": {"nonempty": ["users; DROP"]}})
    with pytest.raises(ConfigError, match=r"backups: retention must be longer than max_age"):
        load({"directory": "/backup", "max_age": "40d"})


# --- a backup is data, never code -----------------------------------------------------------


def _scratch_left(postgres: Postgres) -> str:
    """Scratch databases and throwaway roles still on the server (none, after every check)."""
    return postgres.psql(
        f"SELECT string_agg(datname, ' ') FROM pg_database WHERE datname LIKE '{SCRATCH_PREFIX}%' "
        f"UNION ALL SELECT string_agg(rolname, ' ') FROM pg_roles WHERE rolname LIKE '{SCRATCH_PREFIX}%'"
    ).strip()


def _with_attack(dump: bytes, attack: str) -> bytes:
    """The genuine dump with `attack` where its first table is created: the line number is
    that of the attack's first line."""
    at = dump.index(b"CREATE TABLE")
    return dump[:at] + attack.encode() + dump[at:]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("attack", "refused", "tried"),
    [
        ("\\! touch {marker}\n", "\\!", "to run the psql meta-command \\!"),
        ("\\o {marker}\nSELECT 1;\n", "\\o", "to run the psql meta-command \\o"),
        (
            "\\getenv leaked SLO_TEST_SECRET\n\\w {marker}\n",
            "\\getenv",
            "to run the psql meta-command \\getenv",
        ),
        # Its own key lifts nothing: ours holds.
        ("\\unrestrict {key}\n\\! touch {marker}\n", "\\!", "to run the psql meta-command \\!"),
        (
            "CREATE TABLE public.pwn (a text);\nCOPY public.pwn FROM PROGRAM 'touch {marker}';\n",
            "COPY",
            "COPY ... PROGRAM (a program on the database server)",
        ),
        (
            "CREATE TABLE public.pwn (a text);\nCOPY public.pwn FROM '/etc/passwd';\n",
            "COPY",
            "to read a file on the database server",
        ),
    ],
    ids=["shell", "output-file", "getenv", "lift-own-restriction", "copy-program", "copy-server-file"],
)
def test_a_dump_that_tries_to_run_code_runs_nothing_and_fails(
    postgres: Postgres,
    dump: bytes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    attack: str,
    refused: str,
    tried: str,
) -> None:
    monkeypatch.setenv("SLO_TEST_SECRET", "runner-secret-value")
    # Where the database server (another user) could write, so a COPY PROGRAM would show too.
    marker = Path("/tmp") / f"slo-restore-pwned-{os.getpid()}-{time.monotonic_ns()}"
    own_key = dump.split(b"\\restrict ", 1)[1].split(b"\n", 1)[0].decode()
    text = attack.format(marker=marker, key=own_key)
    hostile = _with_attack(dump, text)
    line = hostile[: hostile.index(refused.encode(), hostile.index(text.encode()))].count(b"\n") + 1
    path = tmp_path / "database.sql"
    path.write_bytes(hostile)
    with pytest.raises(RestoreError) as caught:
        restore_problems(
            path, RestoreSettings(port=postgres.port, password=postgres.password, tables=["users"])
        )
    try:
        assert not marker.exists(), "the dump ran code on the runner or the server"
    finally:
        marker.unlink(missing_ok=True)
    assert str(caught.value) == (
        f"SECURITY: database.sql tried {tried} (line {line}); refused: a backup is data, never code"
    )
    assert "runner-secret-value" not in str(caught.value)
    assert _scratch_left(postgres) == ""


def test_a_genuine_dump_restores_under_its_own_restrict_pair(
    postgres: Postgres, dump: bytes, tmp_path: Path
) -> None:
    # pg_dump 15.14 and later write `\restrict KEY` ... `\unrestrict KEY`: the dump is trusted
    # to carry them, and our own restriction stays on.
    assert dump.count(b"\\restrict ") == 1
    assert dump.count(b"\\unrestrict ") == 1
    path = tmp_path / "database.sql"
    path.write_bytes(dump)
    assert (
        restore_problems(
            path, RestoreSettings(port=postgres.port, password=postgres.password, nonempty=["users"])
        )
        == []
    )
    assert _scratch_left(postgres) == ""


def test_psql_does_not_see_the_runners_environment(
    postgres: Postgres, dump: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Either would break the restore if psql saw it: a service that does not exist, and
    # every transaction read-only.
    monkeypatch.setenv("PGSERVICE", "slo_no_such_service")
    monkeypatch.setenv("PGOPTIONS", "-c default_transaction_read_only=on")
    path = tmp_path / "database.sql"
    path.write_bytes(dump)
    assert (
        restore_problems(
            path, RestoreSettings(port=postgres.port, password=postgres.password, nonempty=["users"])
        )
        == []
    )


def test_the_dump_is_replayed_as_a_role_that_is_no_superuser(postgres: Postgres, tmp_path: Path) -> None:
    path = tmp_path / "database.sql"
    path.write_text(
        "CREATE TABLE who AS SELECT rolsuper FROM pg_roles WHERE rolname = current_user;\n"
        "DO $$ BEGIN IF (SELECT rolsuper FROM who) THEN RAISE EXCEPTION 'restored as a superuser'; "
        "END IF; END $$;\n"
    )
    assert (
        restore_problems(
            path, RestoreSettings(port=postgres.port, password=postgres.password, nonempty=["who"])
        )
        == []
    )


def test_a_named_restore_role_is_used_and_a_superuser_refused(
    postgres: Postgres, dump: bytes, tmp_path: Path
) -> None:
    postgres.psql("CREATE ROLE restorer LOGIN PASSWORD 'restorer-pw'")
    postgres.psql("CREATE ROLE mighty LOGIN SUPERUSER PASSWORD 'mighty-pw'")
    path = tmp_path / "database.sql"
    path.write_text("CREATE TABLE who AS SELECT current_user AS name;\n")
    base = {"port": postgres.port, "password": postgres.password, "nonempty": ["who"]}
    assert restore_problems(path, RestoreSettings(**base, role="restorer", role_password="restorer-pw")) == []
    with pytest.raises(
        RestoreError, match=r"^backups.restore.role mighty is a superuser or may run programs"
    ):
        restore_problems(path, RestoreSettings(**base, role="mighty", role_password="mighty-pw"))
    # Able to SET ROLE to a superuser, or to run programs: the same.
    postgres.psql("CREATE ROLE climber LOGIN NOINHERIT PASSWORD 'climber-pw' IN ROLE mighty")
    postgres.psql("CREATE ROLE runner LOGIN PASSWORD 'runner-pw' IN ROLE pg_execute_server_program")
    for name in ("climber", "runner"):
        with pytest.raises(RestoreError, match=rf"^backups.restore.role {name} is a superuser or may run"):
            restore_problems(path, RestoreSettings(**base, role=name, role_password=f"{name}-pw"))
    with pytest.raises(RestoreError, match=r"^backups.restore.role nobody_here does not exist$"):
        restore_problems(path, RestoreSettings(**base, role="nobody_here"))
    assert "restorer" in postgres.psql("SELECT rolname FROM pg_roles WHERE rolname = 'restorer'")
    assert _scratch_left(postgres) == ""


@pytest.mark.slow
def test_the_restore_probe_fails_with_the_security_finding(
    pytester: pytest.Pytester, postgres: Postgres, dump: bytes
) -> None:
    directory = pytester.path / "backup"
    newest = make_backup(directory, 3600, _with_attack(dump, "\\! echo pwned\n"))
    configure(pytester, directory, postgres)
    outcome, message = outcomes(pytester)[RESTORES]
    assert outcome == "failed"
    assert (
        f"backup {newest}: restore check on 127.0.0.1:{postgres.port}: SECURITY: database.sql tried to run "
        in message
    )
    assert "the psql meta-command \\! (line " in message
    assert _scratch_left(postgres) == ""


# --- one deadline ---------------------------------------------------------------------------


def test_a_restore_timeout_longer_than_the_run_deadline_is_a_usage_error(
    pytester: pytest.Pytester, postgres: Postgres, dump: bytes
) -> None:
    directory = pytester.path / "backup"
    make_backup(directory, 3600, dump)
    configure(pytester, directory, postgres)  # the default restore.timeout, 150s
    result = run_probes(pytester, "probes/test_backups.py", "--slo-run-deadline", "5s")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*backups.restore.timeout 150s is longer than the run deadline 5s (--slo-run-deadline): "
            "shorten it, or lengthen the run deadline"
        ]
    )
    assert "Traceback" not in result.stderr.str()


@pytest.mark.slow
def test_the_run_deadline_holds_against_a_60s_restore(
    pytester: pytest.Pytester, postgres: Postgres, dump: bytes
) -> None:
    directory = pytester.path / "backup"
    make_backup(directory, 3600, dump.replace(b"CREATE TABLE", b"SELECT pg_sleep(60);\nCREATE TABLE", 1))
    configure(pytester, directory, postgres)
    settings = yaml.safe_load((pytester.path / "monitoring.yaml").read_text())
    settings["backups"]["restore"]["timeout"] = "5s"
    (pytester.path / "monitoring.yaml").write_text(yaml.safe_dump(settings))
    run_probes(pytester, "probes/test_backups.py", "--slo-run-deadline", "5s")
    case = junit_cases(pytester)[RESTORES]
    assert case.outcome == "failed"
    assert case.message.endswith("restore check ran out of time (the run deadline)") or case.message.endswith(
        "restore check ran out of time (5s, backups.restore.timeout)"
    )
    assert _scratch_left(postgres) == ""


# --- archives and manifests read within their limits -----------------------------------------


def _limits(**overrides: Any) -> ReadLimits:
    values: dict[str, Any] = {
        "deadline": time.monotonic() + 60,
        "max_members": 1000,
        "max_inflated_bytes": 1 << 20,
    }
    return ReadLimits(**{**values, **overrides})


def test_a_fifo_manifest_is_never_opened(pytester: pytest.Pytester, dump: bytes) -> None:
    directory = pytester.path / "backup"
    newest = make_backup(directory, 3600, dump)
    (newest / "manifest.txt").unlink()
    os.mkfifo(newest / "manifest.txt")
    assert manifest_problems(Backup(newest, 0), "manifest.txt") == ["manifest.txt is not a regular file"]
    configure(pytester, directory)
    result = run_probes(pytester, "probes/test_backups.py", "--slo-run-deadline", "5s")
    cases = junit_cases(pytester)
    assert cases[MANIFEST].outcome == "failed"
    assert cases[MANIFEST].message == f"backup {newest}: manifest.txt is not a regular file"
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_a_manifest_of_megabytes_is_not_a_manifest(tmp_path: Path) -> None:
    (tmp_path / "manifest.txt").write_bytes(b"database.sql\n" * 100_000)
    assert manifest_problems(Backup(tmp_path, 0), "manifest.txt") == [
        "manifest.txt is over 1048576 bytes: not a manifest"
    ]


def test_an_archive_that_inflates_past_the_cap_fails(tmp_path: Path) -> None:
    (tmp_path / "user-data.tar.gz").write_bytes(_tar_gz("zeros", bytes(4 << 20)))
    assert unreadable_files(Backup(tmp_path, 0), limits=_limits()) == [
        "user-data.tar.gz inflates past 1048576 bytes (backups.max_inflated_bytes)"
    ]


def test_an_archive_read_past_the_deadline_fails(tmp_path: Path) -> None:
    (tmp_path / "logs.tar.gz").write_bytes(_tar_gz("zeros", bytes(4 << 20)))
    limits = _limits(
        deadline=time.monotonic(), max_inflated_bytes=1 << 30, deadline_source="backups.deadline 1s"
    )
    assert unreadable_files(Backup(tmp_path, 0), limits=limits) == [
        "logs.tar.gz not read to its end by the deadline (backups.deadline 1s)"
    ]


def _many_members(path: Path, count: int) -> None:
    with tarfile.open(path, "w:gz", compresslevel=1) as archive:
        for index in range(count):
            archive.addfile(tarfile.TarInfo(f"f{index}"))


def test_a_tar_of_too_many_entries_fails(tmp_path: Path) -> None:
    _many_members(tmp_path / "config.tar.gz", 1001)
    assert unreadable_files(Backup(tmp_path, 0), limits=_limits()) == [
        "config.tar.gz holds over 1000 entries (backups.max_members)"
    ]


@pytest.mark.slow
def test_a_tar_of_many_entries_is_walked_in_bounded_memory(tmp_path: Path) -> None:
    # tarfile keeps every entry it walked (about 450 bytes each): 100k would be ~45 MB more.
    _many_members(tmp_path / "config.tar.gz", 100_000)
    tracemalloc.start()
    try:
        assert (
            unreadable_files(
                Backup(tmp_path, 0), limits=_limits(max_members=1_000_000, max_inflated_bytes=1 << 30)
            )
            == []
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"{peak} bytes allocated at the peak of walking 100k entries"


# --- a stopped run keeps what it saw ----------------------------------------------------------


def _scratch_processes(port: int) -> list[str]:
    """Command lines of processes still working on a scratch database of the server on `port`
    (psql, a `\\!` child): another test's run, on its own server, is not this one's."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if SCRATCH_PREFIX in command and f"-p {port} " in command and "pg_stat" not in command:
            found.append(command)
    return found


@pytest.mark.slow
@pytest.mark.parametrize(
    ("workers", "signum", "code", "how"),
    [
        ([], signal.SIGTERM, STOPPED_EXIT, "stopped by SIGTERM"),
        (["-n", "2"], signal.SIGTERM, STOPPED_EXIT, "stopped by SIGTERM"),
        ([], signal.SIGINT, pytest.ExitCode.INTERRUPTED, "interrupted (Ctrl-C)"),
    ],
    ids=["sigterm", "sigterm-xdist", "ctrl-c"],
)
def test_a_stopped_run_records_pushes_and_cleans_up(
    pytester: pytest.Pytester,
    postgres: Postgres,
    dump: bytes,
    workers: list[str],
    signum: signal.Signals,
    code: int,
    how: str,
) -> None:
    directory = pytester.path / "backup"
    # Stale (the freshness probe fails before the restore starts), and a restore that hangs.
    make_backup(directory, 3 * DAY, dump.replace(b"CREATE TABLE", b"SELECT pg_sleep(60);\nCREATE TABLE", 1))
    with Pushgateway() as gateway:
        make_probe_project(
            pytester,
            None,
            backups={
                "directory": str(directory),
                "verify": "restore",
                "restore": {"port": postgres.port, "password": "${TEST_PGPASSWORD}"},
            },
            pushgateway={"url": gateway.url, "state_file": str(pytester.path / "state.json")},
        )
        run = subprocess.Popen(
            [sys.executable, "-m", "pytest", "probes/test_backups.py", *workers],
            cwd=pytester.path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            until = time.monotonic() + 120
            while SCRATCH_PREFIX not in postgres.psql("SELECT string_agg(datname, ' ') FROM pg_database"):
                assert run.poll() is None, "the run ended before its restore started"
                assert time.monotonic() < until, "the restore never started"
                time.sleep(0.2)
            run.send_signal(signum)
            output, _ = run.communicate(timeout=120)
        finally:
            stop(run, 10)
        pushed = httpx.get(f"{gateway.url}/metrics", timeout=10).text
    assert run.returncode == code, output.decode(errors="replace")[-3000:]
    cases = junit_cases(pytester)
    assert cases[FRESH].outcome == "failed"
    assert (cases[RESTORES].outcome, cases[RESTORES].message) == (
        "failed",
        f"{how} before this probe finished: the run was cut short",
    )
    success = {
        sample.labels["probe"].rsplit("::", 1)[-1]: sample.value
        for family in text_string_to_metric_families(pushed)
        if family.name == "synthetic_probe_success"
        for sample in family.samples
    }
    assert success["test_newest_backup_is_fresh"] == 0
    assert success["test_newest_backup_restores"] == 0
    assert success["test_newest_backup_is_complete"] == 1
    assert _scratch_left(postgres) == ""
    assert _scratch_processes(postgres.port) == []
