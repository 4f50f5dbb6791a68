"""Redis connections whose every read and write obeys one deadline and one byte cap.

redis-py's `socket_timeout` bounds each read, so a server that trickles its replies, or
answers SCAN with a cursor that never comes back to 0, keeps a check waiting for ever; and a
reply is read whole, so an INFO of gigabytes is held whole. Here the socket refuses to wait
past the check's deadline and to read past its cap:

    client = redis.Redis.from_url(url, **bounded(url, deadline, max_read_bytes=16 << 20))
"""

from __future__ import annotations

import socket
import time
from typing import Any

import redis

__all__ = ["CheckDeadline", "ReadCapReached", "bounded"]


# Neither is a redis TimeoutError or ConnectionError: redis-py rewrites those messages (and
# may retry them); these pass through as they are, after the connection is dropped.
class CheckDeadline(redis.RedisError):
    """The check's deadline passed while it waited on Redis."""


class ReadCapReached(redis.RedisError):
    """Redis sent more than the check may read."""


class _BoundedSocket:
    """A socket whose timeouts never reach past `deadline` and whose reads stop at `cap`."""

    def __init__(self, inner: socket.socket, deadline: float, cap: int, limits: str) -> None:
        self._inner, self._deadline, self._cap, self._limits = inner, deadline, cap, limits
        self._timeout = inner.gettimeout()
        self._read = 0

    def settimeout(self, value: float | None) -> None:
        self._timeout = value

    def gettimeout(self) -> float | None:
        return self._timeout

    def _arm(self) -> None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise self._expired()
        self._inner.settimeout(left if self._timeout is None else min(self._timeout, left))

    def _expired(self) -> CheckDeadline:
        return CheckDeadline(f"no answer before the check's deadline ({self._limits})")

    def _waited(self, error: TimeoutError) -> Exception:
        """A timeout at the deadline is the deadline's; before it, the reply's own."""
        return self._expired() if time.monotonic() >= self._deadline - 0.01 else error

    def _count(self, size: int) -> None:
        self._read += size
        if self._read > self._cap:
            raise ReadCapReached(f"sent over {self._cap} bytes (cache.max_read_bytes)")

    def recv(self, size: int, *flags: int) -> bytes:
        self._arm()
        try:
            data = self._inner.recv(size, *flags)
        except TimeoutError as exc:
            raise self._waited(exc) from None
        self._count(len(data))
        return data

    def recv_into(self, buffer: Any, size: int = 0, *flags: int) -> int:
        self._arm()
        try:
            count = self._inner.recv_into(buffer, size, *flags)
        except TimeoutError as exc:
            raise self._waited(exc) from None
        self._count(count)
        return count

    def sendall(self, data: Any, *flags: int) -> None:
        self._arm()
        try:
            self._inner.sendall(data, *flags)
        except TimeoutError as exc:
            raise self._waited(exc) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _Bounds:
    """Mixed into redis-py's connection classes: their sockets come out bounded."""

    def __init__(self, *args: Any, slo_deadline: float, slo_cap: int, slo_limits: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._slo_bounds = (slo_deadline, slo_cap, slo_limits)

    def _connect(self) -> Any:
        return _BoundedSocket(super()._connect(), *self._slo_bounds)  # type: ignore[misc]


class _Connection(_Bounds, redis.Connection):
    pass


class _SSLConnection(_Bounds, redis.SSLConnection):
    pass


def bounded(url: str, deadline: float, max_read_bytes: int, limits: str) -> dict[str, Any]:
    """Keyword arguments for ``redis.Redis.from_url(url, ...)``: its connections end by
    `deadline` (``time.monotonic()``) and read at most `max_read_bytes`; `limits` names the
    settings behind the deadline for the failure line."""
    return {
        "connection_class": _SSLConnection if url.startswith("rediss:") else _Connection,
        "slo_deadline": deadline,
        "slo_cap": max_read_bytes,
        "slo_limits": limits,
    }
