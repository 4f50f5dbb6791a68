"""Backups (the seed's 34.3.7): fresh, complete, readable, listed, cleaned up, and restorable.

Configured by `backups:`; skipped while the config has none.
"""

import time

import pytest

from slo.probe.backups import (
    format_age,
    list_backups,
    manifest_problems,
    missing_or_empty,
    retention_problems,
    unreadable_files,
)
from slo.probe.failures import ProbeFailure
from slo.probe.restore import RestoreError, restore_problems
from slo.units import format_duration


@pytest.fixture
def settings(slo_config):
    if slo_config.backups is None:
        pytest.skip("monitoring.yaml has no backups: section")
    return slo_config.backups


def _backups(settings):
    try:
        return list_backups(settings.directory)
    except OSError as exc:
        raise ProbeFailure(f"backups {settings.directory}: cannot list: {exc.strerror or exc}") from None


def _newest(settings):
    backups = _backups(settings)
    if not backups:
        raise ProbeFailure(f"backups {settings.directory}: no backup at all")
    return backups[0]


def test_newest_backup_is_fresh(settings):
    newest = _newest(settings)
    age = time.time() - newest.mtime
    assert age <= settings.max_age, (
        f"backups {settings.directory}: newest backup {newest.name} is {format_age(age)} old, "
        f"over {format_duration(settings.max_age)} (backups.max_age): the backup job has not run"
    )


def test_newest_backup_is_complete(settings):
    newest = _newest(settings)
    problems = missing_or_empty(newest, settings.expected)
    assert not problems, f"backup {newest.path}: " + "; ".join(problems)


def test_newest_backup_is_readable(settings):
    newest = _newest(settings)
    problems = unreadable_files(newest, settings.dump)
    assert not problems, f"backup {newest.path}: " + "; ".join(problems)


def test_newest_backup_manifest(settings):
    if not settings.manifest:
        pytest.skip("backups.manifest is empty: no manifest to check")
    newest = _newest(settings)
    problems = manifest_problems(newest, settings.manifest)
    assert not problems, f"backup {newest.path}: " + "; ".join(problems)


def test_backup_retention(settings):
    problems = retention_problems(_backups(settings), time.time(), settings.retention, settings.min_count)
    assert not problems, f"backups {settings.directory}: " + "; ".join(problems)


def test_newest_backup_restores(settings):
    if settings.verify != "restore":
        pytest.skip("backups.verify is not restore")
    newest = _newest(settings)
    dump = newest.path / settings.dump
    if not dump.is_file():
        raise ProbeFailure(f"backup {newest.path}: {settings.dump} missing, nothing to restore")
    where = f"{settings.restore.host}:{settings.restore.port}"
    try:
        problems = restore_problems(dump, settings.restore)
    except RestoreError as exc:
        raise ProbeFailure(f"backup {newest.path}: restore check on {where}: {exc}") from None
    assert not problems, f"backup {newest.path}: restore check on {where}: " + "; ".join(problems)
