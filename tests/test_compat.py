"""Each third-party internal `slo.compat` relies on, checked so that an upgrade that moves it
fails here instead of silently degrading a probe run.

- httpcore's network backend (behind httpx's transport): the DNS phase is timed by a backend
  of ours, so it must really be installed and used.
- pytest-xdist's worker queue (``torun`` with ``lock()``, since 3.7): a worker fetches the
  checks it is going to run as one concurrent batch, and only those.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest
from loopback import capture_server
from probe_project import INI, junit_cases, make_probe_project, run_probes

from slo.compat import wrap_network_backend
from slo.config import Target
from slo.probe.client import RECORD_EXTENSION, ProbeClient


class _Recording(httpcore.NetworkBackend):
    """Passes every connection on to the real backend and notes where it went."""

    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self.inner = inner
        self.connected: list[tuple[str, int]] = []

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        self.connected.append((host, port))
        return self.inner.connect_tcp(host, port, timeout, local_address, socket_options)


def test_the_network_backend_of_an_httpx_transport_is_replaced_and_used() -> None:
    transport = httpx.HTTPTransport()
    installed: list[_Recording] = []

    def wrap(inner: httpcore.NetworkBackend) -> httpcore.NetworkBackend:
        installed.append(_Recording(inner))
        return installed[0]

    assert wrap_network_backend(transport, wrap), "httpx's transport no longer has httpcore's pool"
    with capture_server() as server, httpx.Client(transport=transport, trust_env=False) as client:
        assert client.get(f"{server.url}/seen").status_code == 200
    [recording] = installed
    port = int(server.url.rsplit(":", 1)[1])
    assert recording.connected == [("127.0.0.1", port)], "the pool did not connect through our backend"


def test_a_transport_whose_pool_moved_is_left_alone() -> None:
    transport = httpx.HTTPTransport()
    vars(transport).pop("_pool")  # as if httpx had renamed it
    assert not wrap_network_backend(transport, lambda inner: inner)


def test_a_probe_request_to_a_host_name_times_its_lookup_apart() -> None:
    # The probe client's own backend resolves "localhost" itself: without the seam the
    # lookup would hide inside `connect` and `dns` would read 0.
    with capture_server() as server:
        port = server.url.rsplit(":", 1)[1]
        client = ProbeClient("api", Target.model_validate({"url": f"http://localhost:{port}"}))
        try:
            response = client.request("GET", "/health")
        finally:
            client.close()
    assert response.status_code == 200
    assert response.extensions[RECORD_EXTENSION].phases.dns > 0


# --- pytest-xdist: the worker's queue ---------------------------------------------------------

QUEUE_TESTS = 12

#: Each test notes how many tests `scheduled_items` says this process is going to run from it on.
QUEUE_CONFTEST = """
from slo.compat import scheduled_items

def pytest_runtest_call(item):
    with open({sizes!r}, "a") as sizes:
        worker = getattr(item.config, "workerinput", {{}}).get("workerid", "main")
        sizes.write(f"{{worker}} {{len(scheduled_items(item.session, item))}}\\n")
"""


def queue_sizes(pytester: pytest.Pytester, *args: str) -> dict[str, list[int]]:
    """Run `QUEUE_TESTS` tests with `args`; each process's sizes of `scheduled_items`, in order."""
    sizes = pytester.path / "sizes.txt"
    pytester.makeini(INI)
    pytester.makeconftest(QUEUE_CONFTEST.format(sizes=str(sizes)))
    pytester.makepyfile(
        test_queue=f"import pytest\n\n@pytest.mark.parametrize('n', range({QUEUE_TESTS}))\n"
        "def test_queued(n):\n    pass\n"
    )
    result = pytester.runpytest("-p", "no:slo", *args)
    result.assert_outcomes(passed=QUEUE_TESTS)
    found: dict[str, list[int]] = {}
    for line in sizes.read_text().splitlines():
        process, size = line.split()
        found.setdefault(process, []).append(int(size))
    return found


def test_in_one_process_the_batch_is_the_rest_of_the_session(pytester: pytest.Pytester) -> None:
    assert queue_sizes(pytester) == {"main": list(range(QUEUE_TESTS, 0, -1))}


def test_an_xdist_worker_batch_is_its_own_queue(pytester: pytest.Pytester) -> None:
    # loadfile sends the module's tests to one worker in one message: that worker's queue
    # holds all of them, and shrinks by one per test. Without the queue (xdist moved it, or
    # lost its lock) every batch would be one test.
    found = queue_sizes(pytester, "-n", "2", "--dist", "loadfile")
    [(worker, sizes)] = found.items()
    assert worker.startswith("gw")
    # The first test may start while the last indexes are still arriving; from the second on
    # the whole message is in the queue.
    assert sizes[0] >= 2
    assert sizes[1:] == list(range(QUEUE_TESTS - 1, 0, -1))


# --- the batch as the target sees it -------------------------------------------------------------

CHECKS = 40
#: Each request is held this long (well within the probe timeout of 2 s) unless the whole
#: expected batch arrives sooner, so requests sent together are seen together.
HOLD = 1.0


def url_checks(url: str) -> dict[str, Any]:
    """CHECKS checks of one target whose 1 MiB body cap lets a batch read all of them at once
    (a batch reads at most 256 MiB of bodies: 16 at the default 16 MiB cap)."""
    return {
        "checks": [
            {"name": f"check-{i:02d}", "target": "checked", "path": f"/check/{i}"} for i in range(CHECKS)
        ],
        "environments": {"local": {"targets": {"checked": {"url": url, "max_response_bytes": 1 << 20}}}},
    }


@pytest.mark.slow
@pytest.mark.parametrize("dist", ["load", "loadfile"])
def test_under_xdist_each_worker_fetches_its_checks_as_one_concurrent_batch(
    pytester: pytest.Pytester, dist: str
) -> None:
    # loadfile: one worker gets the whole module in one message, so its batch is all of it.
    batch = CHECKS if dist == "loadfile" else 0
    with capture_server(hold=HOLD, release_at=batch) as server:
        make_probe_project(pytester, None, **url_checks(server.url))
        result = run_probes(pytester, "probes/test_checks.py", "-n", "2", "--dist", dist)
    result.stdout.fnmatch_lines(["created: 2/2 workers"])
    result.assert_outcomes(passed=CHECKS)
    assert len(junit_cases(pytester)) == CHECKS
    # Every check fetched once: no worker fetched another's checks, none was fetched again.
    assert sorted(request.path for request in server.received) == sorted(f"/check/{i}" for i in range(CHECKS))
    # One at a time, two workers would have had at most 2 requests in flight. xdist's default
    # scheduling first hands each of the 2 workers 5 of the 40 tests (in messages of one
    # test, so the first check may find only some of them); loadfile hands one worker the
    # whole module in one message.
    assert server.peak_in_flight >= (batch or 4), server.peak_in_flight


def test_in_one_process_every_check_is_fetched_in_one_batch(pytester: pytest.Pytester) -> None:
    with capture_server(hold=HOLD, release_at=CHECKS) as server:
        make_probe_project(pytester, None, **url_checks(server.url))
        result = run_probes(pytester, "probes/test_checks.py")
    result.assert_outcomes(passed=CHECKS)
    assert len(server.received) == CHECKS
    assert server.peak_in_flight == CHECKS


def test_compat_is_the_only_module_that_reaches_into_xdist_or_httpcore_internals() -> None:
    slo_dir = Path(__file__).resolve().parents[1] / "slo"
    reaching = [
        str(path.relative_to(slo_dir))
        for path in slo_dir.rglob("*.py")
        if path.name != "compat.py"
        and any(name in path.read_text() for name in (".torun", "._pool", "._network_backend"))
    ]
    assert reaching == []


def test_a_renamed_test_is_reported_under_its_new_id(pytester: pytest.Pytester) -> None:
    """compat.rename_item: the nodeid every report and JUnit case is keyed by follows."""
    pytester.makeconftest(
        "from slo.compat import rename_item\n"
        "def pytest_collection_modifyitems(items):\n"
        "    for item in items:\n"
        "        rename_item(item, item.name.replace('secret', 'masked'))\n"
    )
    pytester.makepyfile(
        "import pytest\n@pytest.mark.parametrize('v', [1], ids=['secret'])\ndef test_x(v):\n    pass\n"
    )
    result = pytester.runpytest("-p", "no:slo", "-v", "--junit-xml", "junit.xml")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*::test_x[[]masked[]] PASSED*"])
    assert 'name="test_x[masked]"' in (pytester.path / "junit.xml").read_text()


GEVENT_STREAM = r"""
import socket, sys, threading, time
from geventhttpclient import HTTPClient
from slo.compat import body_as_it_arrives

listener = socket.create_server(("127.0.0.1", 0))
sent_second = threading.Event()

def serve():
    connection, _ = listener.accept()
    connection.recv(65536)
    connection.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\ndata: 1\n\n\r\n")
    time.sleep(0.5)
    sent_second.set()
    connection.sendall(b"9\r\ndata: 2\n\n\r\n0\r\n\r\n")
    connection.close()

threading.Thread(target=serve, daemon=True).start()
client = HTTPClient("127.0.0.1", listener.getsockname()[1], network_timeout=10)
response = client.get("/")
pieces = [(piece, sent_second.is_set()) for piece in body_as_it_arrives(response)]
print(repr(pieces))
"""


def test_a_gevent_response_body_is_read_as_it_arrives() -> None:
    """compat.body_as_it_arrives: the first chunk comes out before the second is even sent
    (a streamed answer's first token is timed when it arrives), and the body ends cleanly."""
    done = subprocess.run(
        [sys.executable, "-c", GEVENT_STREAM], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == repr([(b"data: 1\n\n", False), (b"data: 2\n\n", True)])


def test_a_probe_run_names_its_environment_in_the_junit_report(pytester: pytest.Pytester) -> None:
    """Guards `add_junit_property` (pytest's JUnit writer in the config's stash)."""
    from slo.junit import read_suite

    pytester.makeini(INI)
    (pytester.path / "monitoring.yaml").write_text(
        "environments:\n  qa:\n    targets:\n      api: {url: 'http://127.0.0.1:9'}\n"
    )
    pytester.mkdir("probes").joinpath("test_x.py").write_text("def test_x(slo_config):\n    pass\n")
    result = pytester.runpytest("probes/", "--slo-env", "qa", "--no-push", "--junit-xml", "out.xml")
    result.assert_outcomes(passed=1)
    assert read_suite(pytester.path / "out.xml").properties == {"slo_environment": "qa"}
