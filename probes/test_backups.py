"""Backups (the seed's 34.3.7): fresh, complete, readable, listed, cleaned up, and restorable.

Configured by `backups:`; skipped while the config has none.
"""

import pytest

from slo import BackupChecks


@pytest.fixture
def backups(slo_config):
    if slo_config.backups is None:
        pytest.skip("monitoring.yaml has no backups: section")
    return BackupChecks(slo_config.backups)


@pytest.mark.probe(alert="BackupTooOld")
def test_newest_backup_is_fresh(backups):
    problem = backups.stale()
    assert not problem, problem


@pytest.mark.probe(alert="BackupUnusable")
def test_newest_backup_is_complete(backups):
    problem = backups.incomplete()
    assert not problem, problem


@pytest.mark.probe(alert="BackupUnusable")
def test_newest_backup_is_readable(backups):
    problem = backups.unreadable()
    assert not problem, problem


def test_newest_backup_manifest(backups):
    if not backups.settings.manifest:
        pytest.skip("backups.manifest is empty: no manifest to check")
    problem = backups.unlisted()
    assert not problem, problem


def test_backup_retention(backups):
    problem = backups.retention()
    assert not problem, problem


@pytest.mark.probe(alert="BackupUnusable")
def test_newest_backup_restores(backups):
    if backups.settings.verify != "restore":
        pytest.skip("backups.verify is not restore")
    problem = backups.unrestorable()
    assert not problem, problem
