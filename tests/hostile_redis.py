"""A Redis that answers as an attacker would: a SCAN cursor that never returns to 0, replies
trickled a byte at a time, an INFO of a gigabyte. Speaks just enough RESP for redis-py.

    with HostileRedis("endless-scan") as server:
        configure(pytester, server)
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType
from typing import Self

MODES = ("endless-scan", "trickle", "huge-info")


class HostileRedis:
    def __init__(self, mode: str) -> None:
        assert mode in MODES, mode
        self.mode = mode
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}"
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Self:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc: object | TracebackType) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(10)
        self._listener.close()

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            self._spawn(self._serve, connection)

    def _serve(self, connection: socket.socket) -> None:
        connection.settimeout(0.2)
        with connection, connection.makefile("rb") as reader:
            while not self._stopping.is_set():
                try:
                    command = _read_command(reader)
                except (TimeoutError, OSError):
                    continue
                if command is None:
                    return
                try:
                    self._answer(connection, command)
                except OSError:
                    return

    def _answer(self, connection: socket.socket, command: list[bytes]) -> None:
        name = command[0].upper()
        if name == b"HELLO":
            connection.sendall(b"%1\r\n$5\r\nproto\r\n:3\r\n")  # RESP3, as redis-py asks
        elif name == b"SCAN" and self.mode == "endless-scan":
            connection.sendall(b"*2\r\n$1\r\n7\r\n*0\r\n")  # no keys, and never cursor 0
        elif self.mode == "trickle":
            connection.sendall(b"$100000\r\n")  # a long reply, a byte every 50 ms
            while not self._stopping.wait(0.05):
                connection.sendall(b"x")
        elif name == b"INFO" and self.mode == "huge-info":
            size = 1 << 30
            connection.sendall(f"${size}\r\n".encode())
            chunk = b"x" * (1 << 20)
            for _ in range(size // len(chunk)):
                if self._stopping.is_set():
                    return
                connection.sendall(chunk)
        elif name == b"PING":
            connection.sendall(b"+PONG\r\n")
        elif name == b"TTL":
            connection.sendall(b":-1\r\n")
        else:
            connection.sendall(b"+OK\r\n")


def _read_command(reader: object) -> list[bytes] | None:
    line = reader.readline()  # type: ignore[attr-defined]
    if not line:
        return None
    count = int(line[1:])
    parts = []
    for _ in range(count):
        size = int(reader.readline()[1:])  # type: ignore[attr-defined]
        parts.append(reader.read(size + 2)[:size])  # type: ignore[attr-defined]
    return parts
