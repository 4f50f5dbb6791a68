"""Every use of a third-party internal, in one place, each guarded by a test that fails
when the internal changes (``tests/test_compat.py``).

- httpx does not expose the network backend of its transport; the DNS phase needs it.
- pytest-xdist does not expose a worker's queue of scheduled tests; batching checks needs it.
- pytest has no API to rename a collected test; a test id that carries a secret needs it.
- pytest adds a JUnit report's suite properties only through a session fixture; the run's
  environment must be in every probe run's report, fixture or not (`slo gate` checks it).
- pytest has no API to load a plugin ``-p no:NAME`` left out, nor to list the ini file's keys
  before the plugins that declare them are loaded (:mod:`slo.leanplugins` needs both).
- pytest's terminal keeps every passing setup and teardown report to the end of the run, only
  to show their output under ``-rP``/``-rA``; a run of thousands of checks need not.
- pytest's JUnit path option exists only while its JUnit writer is loaded (not under
  ``-p no:junitxml``).
- geventhttpclient (Locust's FastHttpUser) reads a body only in whole lines or whole blocks;
  a streamed answer's first token needs what arrived, as it arrives.

Each dependency is imported where it is used: a Locust process imports this module and must
not pay for httpx, nor a probe run for geventhttpclient.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpcore
    import httpx
    import pytest

__all__ = [
    "add_junit_property",
    "body_as_it_arrives",
    "forget_passed_phase_reports",
    "ini_keys",
    "junit_path",
    "load_blocked_plugin",
    "rename_item",
    "scheduled_items",
    "set_junit_path",
    "wrap_network_backend",
]


def wrap_network_backend(
    transport: httpx.HTTPTransport, wrap: Callable[[httpcore.NetworkBackend], httpcore.NetworkBackend]
) -> bool:
    """Put `wrap(backend)` in place of the transport's network backend; False if it moved."""
    import httpcore

    pool = getattr(transport, "_pool", None)
    if isinstance(pool, httpcore.ConnectionPool) and hasattr(pool, "_network_backend"):
        pool._network_backend = wrap(pool._network_backend)
        return True
    return False


def scheduled_items(session: pytest.Session, item: pytest.Item) -> list[pytest.Item]:
    """`item` and the tests this process is going to run after it, in order.

    In one process that is the rest of the session. In an xdist worker it is the worker's
    queue: xdist's ``WorkerInteractor`` (registered without a name, and loaded by execnet as
    source, so it is found by its ``torun`` queue) holds it, with a ``lock()`` since
    pytest-xdist 3.7, the version ``pyproject.toml`` requires. Anything unexpected means a
    batch of one, never a wrong batch.
    """
    items = session.items
    if not hasattr(session.config, "workerinput"):
        return items[items.index(item) :] if item in items else [item]
    # A worker collects every test but runs only those sent to it: without its queue, the
    # rest of the session would be other workers' tests.
    worker = next((p for p in session.config.pluginmanager.get_plugins() if hasattr(p, "torun")), None)
    if worker is None:
        return [item]
    try:
        with worker.torun.lock() as queue:
            indexes = [worker.nextitem_index, *queue]
    except (AttributeError, TypeError):
        return [item]
    return [item, *(items[i] for i in indexes if isinstance(i, int) and 0 <= i < len(items))]


def rename_item(item: pytest.Item, name: str) -> None:
    """Give a collected test a new last id part (``test_x[***]``): its ``name`` and the end
    of the ``nodeid`` that every report, JUnit case and label is keyed by."""
    nodeid = item.nodeid.removesuffix(item.name) + name
    if hasattr(item, "_id"):  # pytest 9 keeps a structured id and renders nodeid from it
        item._id = type(item._id).parse(nodeid)
    else:
        item._nodeid = nodeid  # type: ignore[attr-defined]
    item.name = name


def load_blocked_plugin(pluginmanager: pytest.PytestPluginManager, name: str) -> bool:
    """Load the plugin `name` that ``-p no:NAME`` left out, as a later ``-p NAME`` would;
    False when it was not left out (then it is loaded already, or not installed)."""
    if not pluginmanager.is_blocked(name):
        return False
    pluginmanager.consider_pluginarg(name)
    return True


def ini_keys(config: pytest.Config) -> frozenset[str]:
    """The keys the run's ini file sets, whether or not a plugin declared them yet."""
    found = getattr(config, "_inicfg", None)  # pytest 9
    if found is None:
        found = getattr(config, "inicfg", {})  # pytest 8
    return frozenset(found)


def forget_passed_phase_reports(config: pytest.Config) -> None:
    """Drop the passing setup and teardown reports pytest's terminal keeps (its statistics'
    empty category), unless ``-rP``/``-rA`` will show their output; the counts and colours
    of the summary never read them."""
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    if terminal is None or terminal.hasopt("P"):
        return
    terminal.stats.pop("", None)


def junit_path(config: pytest.Config) -> str | None:
    """Where pytest writes this run's JUnit XML: None when no report is asked for, or when
    ``-p no:junitxml`` left pytest's writer (and its ``--junit-xml`` option) out."""
    path = getattr(config.option, "xmlpath", None)
    return str(path) if path else None


def set_junit_path(config: pytest.Config, path: str) -> bool:
    """Ask pytest's JUnit writer for a report at `path`; False when the writer is left out."""
    if not hasattr(config.option, "xmlpath"):
        return False
    config.option.xmlpath = path
    return True


def add_junit_property(config: pytest.Config, name: str, value: str) -> bool:
    """A ``<property>`` of the JUnit report's suite; False when no report is written (or
    pytest's JUnit writer moved)."""
    from _pytest.junitxml import xml_key

    xml = config.stash.get(xml_key, None)
    if xml is None or not hasattr(xml, "add_global_property"):
        return False
    xml.add_global_property(name, value)
    return True


def body_as_it_arrives(raw: Any) -> Iterator[bytes]:
    """The rest of a geventhttpclient response's body in the pieces its socket gives (a few
    kB at most), each as soon as it is in, from the parser's own buffer: ``readline`` would
    buffer a line without end for ever, and ``read(n)`` waits for n bytes, holding back a
    first token that came in a small chunk."""
    from geventhttpclient.response import HTTPConnectionClosed

    while True:
        if raw._body_buffer:
            piece = bytes(raw._body_buffer)
            raw._body_buffer.clear()
            yield piece
        elif raw.message_complete or raw._sock is None:
            return
        else:
            data = raw._sock.recv(raw.block_size)
            if not data:
                raise HTTPConnectionClosed("connection closed before the end of the body")
            raw.feed(data)
