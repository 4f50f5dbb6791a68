"""A small HTTP ``/healthz`` for the warm runner, served from its own loop (no thread).

Each connection is read without blocking, up to :data:`MAX_REQUEST` bytes and for at most
:data:`CONNECTION_DEADLINE` seconds, and answered once: ``GET /healthz`` gets the runner's
status (200 or 503, a small JSON body), any other path 404. At most :data:`MAX_CONNECTIONS`
are open at once; more are closed as they arrive. A slow or hostile client costs the loop
nothing but one non-blocking read per event.
"""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["CONNECTION_DEADLINE", "MAX_CONNECTIONS", "MAX_REQUEST", "Healthz", "parse_address"]

MAX_REQUEST = 4096
CONNECTION_DEADLINE = 2.0
MAX_CONNECTIONS = 16

#: (healthy, facts shown in the body)
Status = Callable[[], tuple[bool, dict[str, object]]]


def parse_address(text: str) -> tuple[str, int]:
    """``8081``, ``:8081`` or ``127.0.0.1:8081`` (all interfaces when no host is given)."""
    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--healthz: expected [HOST:]PORT, got {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


@dataclass
class _Connection:
    sock: socket.socket
    deadline: float
    received: bytes = b""


class Healthz:
    def __init__(self, address: tuple[str, int], status: Status, selector: selectors.BaseSelector) -> None:
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(address)
        self.listener.listen(MAX_CONNECTIONS)
        self.listener.setblocking(False)
        self.status = status
        self.selector = selector
        self.connections: dict[int, _Connection] = {}
        selector.register(self.listener, selectors.EVENT_READ, self._accept)

    @property
    def port(self) -> int:
        port: int = self.listener.getsockname()[1]
        return port

    def fds(self) -> list[int]:
        """Every descriptor it holds (a forked run closes them)."""
        return [self.listener.fileno(), *self.connections]

    def next_deadline(self) -> float | None:
        return min((c.deadline for c in self.connections.values()), default=None)

    def expire(self, now: float) -> None:
        for fd, connection in list(self.connections.items()):
            if now >= connection.deadline:
                self._close(fd)

    def _accept(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        if len(self.connections) >= MAX_CONNECTIONS:
            sock.close()
            return
        sock.setblocking(False)
        connection = _Connection(sock, time.monotonic() + CONNECTION_DEADLINE)
        self.connections[sock.fileno()] = connection
        self.selector.register(sock, selectors.EVENT_READ, lambda: self._read(connection))

    def _read(self, connection: _Connection) -> None:
        fd = connection.sock.fileno()
        try:
            chunk = connection.sock.recv(MAX_REQUEST - len(connection.received))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(fd)
            return
        connection.received += chunk
        if not chunk or b"\r\n\r\n" in connection.received or len(connection.received) >= MAX_REQUEST:
            self._answer(connection)
            self._close(fd)

    def _answer(self, connection: _Connection) -> None:
        request_line = connection.received.split(b"\r\n", 1)[0].split()
        path = request_line[1].split(b"?", 1)[0] if len(request_line) >= 2 else b""
        if request_line[:1] == [b"GET"] and path == b"/healthz":
            healthy, facts = self.status()
            code, body = (200, "OK") if healthy else (503, "Service Unavailable"), json.dumps(facts)
        else:
            code, body = (404, "Not Found"), json.dumps({"error": "only GET /healthz is served"})
        payload = body.encode()
        head = (
            f"HTTP/1.1 {code[0]} {code[1]}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
        ).encode()
        # Small enough for any socket buffer: one send, never waiting on a slow reader.
        with contextlib.suppress(OSError):
            connection.sock.send(head + payload)

    def _close(self, fd: int) -> None:
        connection = self.connections.pop(fd, None)
        if connection is not None:
            self.selector.unregister(connection.sock)
            connection.sock.close()

    def close(self) -> None:
        for fd in list(self.connections):
            self._close(fd)
        self.selector.unregister(self.listener)
        self.listener.close()
