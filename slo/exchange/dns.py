"""DNS timed apart from the TCP connect: a network backend that resolves names itself.

httpcore resolves inside ``connect_tcp``; resolving here first, with a deadline and a thread
per lookup, gives DNS its own phase and bounds lookups that getaddrinfo would not.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpcore

__all__ = ["TimedBackend"]


def _resolve(host: str, port: int, timeout: float | None) -> tuple[list[str], float]:
    """Addresses of `host`, bounded by the connect timeout (getaddrinfo itself has none)."""
    try:
        return [str(ipaddress.ip_address(host))], 0.0  # a literal address needs no lookup
    except ValueError:
        pass
    started = time.perf_counter()
    outcome: list[Any] = []
    # A thread per lookup, not a shared pool: a hung resolver must not queue up healthy
    # targets behind it, and a daemon thread does not hold up the process at exit.
    lookup = threading.Thread(
        target=lambda: outcome.append(_getaddrinfo(host, port)), name="slo-dns", daemon=True
    )
    lookup.start()
    lookup.join(timeout)
    if not outcome:
        raise httpcore.ConnectTimeout(f"name resolution for {host} timed out")
    if isinstance(outcome[0], Exception):
        raise httpcore.ConnectError(f"name resolution failed for {host}: {_why(outcome[0])}")
    addresses = list(dict.fromkeys(str(info[4][0]) for info in outcome[0]))
    return addresses, time.perf_counter() - started


def _getaddrinfo(host: str, port: int) -> Any:
    # Every failure is handed back, none raised: an exception escaping the thread would be
    # printed as a traceback and the lookup reported as a timeout. A name the IDNA codec
    # refuses (a label over 63 characters) fails with UnicodeError before any lookup.
    try:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        return exc


def _why(error: Exception) -> str:
    if isinstance(error, socket.gaierror) and error.strerror:
        return error.strerror
    if isinstance(error, UnicodeError):
        return "not a valid host name (IDNA)"
    return str(error)


class TimedBackend(httpcore.NetworkBackend):
    """Resolves the host name itself so the DNS time is not hidden inside the TCP connect."""

    def __init__(self, inner: httpcore.NetworkBackend, on_lookup: Callable[[float], None]) -> None:
        self._inner = inner
        #: Told the seconds each lookup took, in the context of the request that made it.
        self._on_lookup = on_lookup

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses, dns = _resolve(host, port, timeout)
        self._on_lookup(dns)
        # Like a browser: try each address in turn (e.g. ::1, then 127.0.0.1 for "localhost").
        for address in addresses[:-1]:
            try:
                return self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError:
                continue
        return self._inner.connect_tcp(addresses[-1], port, timeout, local_address, socket_options)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        return self._inner.connect_unix_socket(path, timeout, socket_options)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)
