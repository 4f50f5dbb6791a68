"""A loopback HTTP server that misbehaves the way real targets do, and a few hostile ways.

    with HostileServer() as server:
        client = ProbeClient("api", Target(url=server.url, timeout=1.0))
        client.get("/trickle-headers")  # headers a byte every 100 ms, for ever

Every path is one behaviour (see ``ROUTES``); any other path, by default, echoes the request
(its line, its headers, the query string) in a 401 JSON body, as many APIs do on auth errors. Each
connection is served by a daemon thread that gives up when the client goes away or the
server stops; ``requests`` records every request head that arrived, so a test can prove a
second server was never contacted. ``stall_port`` is a socket that accepts connections and
never says a word (a TLS handshake that stalls).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import zlib
from collections.abc import Callable
from types import TracebackType
from typing import Self

__all__ = ["HostileServer"]

TICK = 0.1
_CHUNK = b"\0" * 65536


class HostileServer:
    def __init__(self, redirect_to: str = "http://127.0.0.1:9", default: str = "/echo") -> None:
        """`default`: the behaviour of paths that are not in ROUTES (e.g. a Pushgateway that
        trickles every answer: ``default="/trickle-headers"``)."""
        self.redirect_to = redirect_to
        self.default = default
        self.requests: list[str] = []
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._stall = socket.create_server(("127.0.0.1", 0))
        self._connections: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    @property
    def stall_port(self) -> int:
        return int(self._stall.getsockname()[1])

    def __enter__(self) -> Self:
        for listener, serve in ((self._listener, self._serve), (self._stall, self._hold)):
            listener.settimeout(TICK)
            self._spawn(self._accept, listener, serve)
        return self

    def __exit__(self, *exc: object | TracebackType) -> None:
        self._stop.set()
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
                connection.close()
        for thread in list(self._threads):
            thread.join(5)
        self._listener.close()
        self._stall.close()

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept(self, listener: socket.socket, serve: Callable[[socket.socket], None]) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            connection.settimeout(5)  # a client that stops reading must not pin a thread
            with self._lock:
                self._connections.append(connection)
            self._spawn(self._guarded, serve, connection)

    def _guarded(self, serve: Callable[[socket.socket], None], connection: socket.socket) -> None:
        try:
            serve(connection)
        except OSError:
            pass  # the client went away: that is what the client under test should do
        finally:
            connection.close()

    def _hold(self, connection: socket.socket) -> None:
        self._stop.wait(60)

    def _serve(self, connection: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            data = connection.recv(4096)
            if not data:
                return
            head += data
        text = head.decode("latin-1")
        self.requests.append(text)
        path = text.split(" ", 2)[1] if text.count(" ") >= 2 else "/"
        route = ROUTES.get(path.split("?", 1)[0], ROUTES[self.default])
        route(self, connection, text)

    def _ticks(self) -> bool:
        """Sleep one tick; False once the server stops."""
        return not self._stop.wait(TICK)


def _send(connection: socket.socket, status: str, headers: dict[str, str], body: bytes = b"") -> None:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    connection.sendall("\r\n".join(lines).encode("latin-1") + body)


def _echo(server: HostileServer, connection: socket.socket, head: str) -> None:
    request_line, *header_lines = head.strip().split("\r\n")
    # The request's own headers (credentials) first, so even a short excerpt holds them.
    echoed = {"headers": header_lines[::-1], "request": request_line, "error": "unauthorized"}
    body = json.dumps(echoed).encode()
    _send(
        connection,
        "401 Unauthorized",
        {"Content-Type": "application/json", "Content-Length": str(len(body))},
        body,
    )


def _trickle_headers(server: HostileServer, connection: socket.socket, head: str) -> None:
    connection.sendall(b"HTTP/1.1 200 OK\r\n")
    while server._ticks():
        connection.sendall(b"X")  # a header line that never ends


def _trickle_body(server: HostileServer, connection: socket.socket, head: str) -> None:
    _send(connection, "200 OK", {"Content-Type": "text/plain", "Content-Length": "100000"})
    while server._ticks():
        connection.sendall(b"x")


def _stream(server: HostileServer, connection: socket.socket, event: bytes) -> None:
    _send(connection, "200 OK", {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked"})
    while server._ticks():
        connection.sendall(b"%x\r\n%s\r\n" % (len(event), event))


def _keepalive_stream(server: HostileServer, connection: socket.socket, head: str) -> None:
    _stream(server, connection, b": keepalive\n\n")


def _empty_delta_stream(server: HostileServer, connection: socket.socket, head: str) -> None:
    _stream(server, connection, b'data: {"choices": [{"index": 0, "delta": {}}]}\n\n')


def _oversized(server: HostileServer, connection: socket.socket, head: str) -> None:
    _send(connection, "200 OK", {"Content-Type": "text/plain", "Content-Length": str(500 * 1024 * 1024)})
    for _ in range(500 * 16):
        connection.sendall(_CHUNK)


def _endless(server: HostileServer, connection: socket.socket, head: str) -> None:
    _send(connection, "200 OK", {"Content-Type": "text/plain", "Transfer-Encoding": "chunked"})
    chunk = b"%x\r\n%s\r\n" % (len(_CHUNK), _CHUNK)
    while not server._stop.is_set():
        connection.sendall(chunk)


def _inflating(server: HostileServer, connection: socket.socket, head: str) -> None:
    """A gzip body of about 10 MiB that inflates to 10 GiB, compressed as it is sent."""
    _send(
        connection,
        "200 OK",
        {"Content-Type": "text/plain", "Content-Encoding": "gzip", "Transfer-Encoding": "chunked"},
    )
    gzip = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    megabyte = b"\0" * 1048576
    for _ in range(10 * 1024):
        piece = gzip.compress(megabyte)
        if piece:
            connection.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
    tail = gzip.flush()
    connection.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(tail), tail))


def _redirect(server: HostileServer, connection: socket.socket, head: str) -> None:
    _send(connection, "302 Found", {"Location": f"{server.redirect_to}/stolen", "Content-Length": "0"})


def _slow(server: HostileServer, connection: socket.socket, head: str) -> None:
    """Answers fine, but only after a second."""
    time.sleep(1)
    _send(connection, "200 OK", {"Content-Type": "application/json", "Content-Length": "2"}, b"{}")


ROUTES: dict[str, Callable[[HostileServer, socket.socket, str], None]] = {
    "/echo": _echo,
    "/trickle-headers": _trickle_headers,
    "/trickle-body": _trickle_body,
    "/keepalive-stream": _keepalive_stream,
    "/empty-delta-stream": _empty_delta_stream,
    "/oversized": _oversized,
    "/endless": _endless,
    "/inflating": _inflating,
    "/redirect": _redirect,
    "/slow": _slow,
}
