"""Disk and memory below the seed's health-check thresholds (90 %): on the runner host, and on
every target host that has a node_exporter configured.

These are resource probes (``kind="resource"``), labelled by host (the `target` label is the
host name), so a full disk has its own alert and never burns an API's availability budget.
Disk use is `df`'s Use%: used / (used + available to users), where used = size - free, so the
blocks reserved for root count neither way; the runner and node_exporter use this one formula.
"""

import os
import socket
from urllib.parse import urlsplit

import psutil
import pytest

from slo import ProbeClient, Target, describe, expect_metrics, parametrize_probes, probe_config, probe_param

pytestmark = pytest.mark.probe(target=socket.gethostname(), kind="resource")


def disk_used(size: float, free: float, available: float) -> float:
    """The share of a filesystem in use as `df` shows it (Use%)."""
    used = size - free
    return used / (used + available) if used + available > 0 else 0.0


def test_runner_disk(slo_config):
    settings = slo_config.probes.resources
    stats = os.statvfs(settings.disk_path)
    used = disk_used(
        stats.f_blocks * stats.f_frsize, stats.f_bfree * stats.f_frsize, stats.f_bavail * stats.f_frsize
    )
    assert used < settings.disk, (
        f"runner disk {settings.disk_path} {used:.1%} used, over {settings.disk:.0%} (probes.resources.disk)"
    )


def test_runner_memory(slo_config):
    settings = slo_config.probes.resources
    used = psutil.virtual_memory().percent / 100
    assert used < settings.memory, (
        f"runner memory {used:.1%} used, over {settings.memory:.0%} (probes.resources.memory)"
    )


def pytest_generate_tests(metafunc):
    if "exporter_target" in metafunc.fixturenames:
        targets = probe_config(metafunc.config).environment.targets
        parametrize_probes(
            metafunc,
            "exporter_target",
            [
                probe_param(name, id=name, target=urlsplit(t.node_exporter).hostname or name, kind="resource")
                for name, t in targets.items()
                if t.node_exporter
            ],
            empty="no target sets node_exporter",
        )


def test_target_host_resources(exporter_target, slo_config):
    settings = slo_config.probes.resources
    target = slo_config.target(exporter_target)
    exporter = Target(
        url=target.node_exporter,
        timeout=target.timeout,
        verify=target.verify,
        ca_file=target.ca_file,
    )
    with ProbeClient(exporter_target, exporter) as client:
        response = client.get("/metrics")
    samples = expect_metrics(response)

    def value(name, **labels):
        for sample_labels, sample_value in samples.get(name, []):
            if all(sample_labels.get(k) == v for k, v in labels.items()):
                return sample_value
        raise AssertionError(f"{describe(response)} has no {name} {labels or ''}".strip())

    memory = 1 - value("node_memory_MemAvailable_bytes") / value("node_memory_MemTotal_bytes")
    mount = {"mountpoint": settings.disk_path}
    disk = disk_used(
        value("node_filesystem_size_bytes", **mount),
        value("node_filesystem_free_bytes", **mount),
        value("node_filesystem_avail_bytes", **mount),
    )
    problems = []
    if memory >= settings.memory:
        problems.append(f"memory {memory:.1%} used (limit {settings.memory:.0%})")
    if disk >= settings.disk:
        problems.append(f"disk {settings.disk_path} {disk:.1%} used (limit {settings.disk:.0%})")
    assert not problems, f"{exporter_target} host: " + "; ".join(problems)
