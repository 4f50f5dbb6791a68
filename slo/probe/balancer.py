"""Which TLS versions a server accepts: one handshake per version, pinned to that version.

    offered = tls_handshake("lb.example.com", 443, "TLSv1.1", timeout=5)
    offered.outcome   # "refused" when the server answered with a protocol_version alert

OpenSSL 3 (Debian 12) will not even offer TLS 1.0 or 1.1 at its default security level, so a
refusal seen with a default context says nothing about the server. The probe's context
drops to security level 0 and pins the version, so only the server can refuse it. When this
runner's OpenSSL cannot offer a version at all, the outcome says so ("untestable") instead
of passing. Certificates are not verified here: that is the certificate probe's job.
"""

from __future__ import annotations

import socket
import ssl
import warnings
from dataclasses import dataclass
from typing import Literal

from slo.config.balancer import TlsVersion

__all__ = ["Handshake", "tls_handshake"]

_VERSIONS: dict[str, ssl.TLSVersion] = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
#: OpenSSL's reasons when the server turned the offered version down (a protocol_version
#: alert, or an answer in a version we did not offer). Not WRONG_VERSION_NUMBER: that is a
#: peer that does not speak TLS at all.
_SERVER_REFUSALS = {"TLSV1_ALERT_PROTOCOL_VERSION", "UNSUPPORTED_PROTOCOL"}
#: The reasons when this side could not offer the version in the first place.
_CLIENT_CANNOT = {"NO_PROTOCOLS_AVAILABLE", "NO_CIPHERS_AVAILABLE", "UNSUPPORTED_PROTOCOL_VERSION"}


@dataclass(frozen=True)
class Handshake:
    outcome: Literal["accepted", "refused", "untestable", "failed"]
    detail: str


def _pinned_context(version: TlsVersion) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    # Python deprecates naming TLS 1.0/1.1 at all; asking for them is this probe's point.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = _VERSIONS[version]
        context.maximum_version = _VERSIONS[version]
    if version in ("TLSv1", "TLSv1.1"):
        context.set_ciphers("ALL:@SECLEVEL=0")
    return context


def tls_handshake(host: str, port: int, version: TlsVersion, timeout: float) -> Handshake:
    """Offer only `version` to host:port and report whether the server took it."""
    try:
        context = _pinned_context(version)
    except (ssl.SSLError, ValueError) as exc:
        return Handshake("untestable", f"this runner's OpenSSL cannot offer {version}: {exc}")
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            return Handshake("accepted", f"negotiated {tls.version()}")
    except ssl.SSLError as exc:
        reason = exc.reason or ""
        if reason in _CLIENT_CANNOT:
            return Handshake("untestable", f"this runner's OpenSSL cannot offer {version} ({reason})")
        if reason in _SERVER_REFUSALS:
            return Handshake("refused", reason or str(exc))
        return Handshake("failed", f"handshake failed: {reason or exc}")
    except TimeoutError:
        return Handshake("failed", f"no handshake within {timeout:g}s")
    except OSError as exc:
        return Handshake("failed", f"cannot connect: {exc.strerror or exc}")
