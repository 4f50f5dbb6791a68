"""Verifying TLS contexts, one per CA bundle, and none loaded by a run that never does TLS.

Loading a CA bundle costs 10-14 ms of CPU. httpx loads one for every client it makes, https or
not, so a run of plain-http targets (and its plain-http Pushgateway) paid for it every time.

- :func:`verifying_context` loads the bundle at once: for https targets, whose first handshake
  is timed as the request's ``tls`` phase and must not include the load.
- :func:`context_on_first_handshake` loads it at the first handshake, if any: for clients of
  plain-http URLs (a probe's http target, the push). An https URL asked of such a client is
  still verified, against the same bundle.
"""

from __future__ import annotations

import functools
import ssl
import threading
from typing import Any

import certifi

__all__ = ["context_on_first_handshake", "verifying_context"]


@functools.lru_cache(maxsize=16)
def verifying_context(ca_file: str | None = None) -> ssl.SSLContext:
    """A verifying client context with its CA bundle (default: certifi's) loaded, shared."""
    return ssl.create_default_context(cafile=ca_file or certifi.where())


class _LoadsOnFirstHandshake(ssl.SSLContext):
    """A verifying client context (``PROTOCOL_TLS_CLIENT``: certificate and host name
    required) whose CA bundle is loaded under a lock before the first handshake it wraps."""

    def __new__(cls, ca_file: str | None) -> _LoadsOnFirstHandshake:
        return super().__new__(cls, ssl.PROTOCOL_TLS_CLIENT)

    def __init__(self, ca_file: str | None) -> None:
        self._ca_file = ca_file or certifi.where()
        self._loaded = False
        self._lock = threading.Lock()

    def _load(self) -> None:
        with self._lock:
            if not self._loaded:
                self.load_verify_locations(cafile=self._ca_file)
                self._loaded = True

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        self._load()
        return super().wrap_socket(*args, **kwargs)

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        self._load()
        return super().wrap_bio(*args, **kwargs)


@functools.lru_cache(maxsize=16)
def context_on_first_handshake(ca_file: str | None = None) -> ssl.SSLContext:
    """A verifying client context, shared, whose CA bundle loads at its first handshake."""
    return _LoadsOnFirstHandshake(ca_file)
