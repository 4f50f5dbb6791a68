"""TLS: every https target presents a certificate the probes trust, valid for long enough.

A verification failure says which one it is (self-signed, hostname mismatch, unknown issuer,
expired), since each has a different fix; a pass reports the days left.
"""

import socket
import ssl
import time
from urllib.parse import urlsplit

import pytest

from slo import ProbeFailure, parametrize_probes, probe_config, probe_param, report_note, tls_verify

# OpenSSL's X509_V_ERR_* codes, by what the person on call has to fix.
VERIFY_FAILURES = {
    10: "expired certificate",
    18: "self-signed certificate",
    19: "self-signed certificate in the chain",
    2: "unknown issuer",
    20: "unknown issuer",
    21: "unknown issuer",
    62: "hostname mismatch",
}


def verification_failure(exc: ssl.SSLCertVerificationError) -> str:
    """What failed, in words, then OpenSSL's own message."""
    what = VERIFY_FAILURES.get(exc.verify_code, "certificate not trusted")
    return f"{what} ({exc.verify_message})"


def pytest_generate_tests(metafunc):
    if "tls_target" in metafunc.fixturenames:
        targets = probe_config(metafunc.config).environment.targets
        parametrize_probes(
            metafunc,
            "tls_target",
            [probe_param(n, id=n, target=n) for n, t in targets.items() if t.url.startswith("https://")],
            empty="no https target in this environment",
        )


def test_certificate_expiry(tls_target, slo_config, request):
    target = slo_config.target(tls_target)
    context = tls_verify(target)
    if not isinstance(context, ssl.SSLContext):
        pytest.skip(f"target {tls_target} sets verify: false, so its certificate is not checked")
    url = urlsplit(target.url)
    host, port = url.hostname, url.port or 443
    try:
        with (
            socket.create_connection((host, port), timeout=target.timeout) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            certificate = tls.getpeercert()
    except ssl.SSLCertVerificationError as exc:
        raise ProbeFailure(
            f"{tls_target} {host}:{port}: certificate verification failed: {verification_failure(exc)}", "tls"
        ) from None
    except ssl.SSLError as exc:
        raise ProbeFailure(
            f"{tls_target} {host}:{port}: TLS handshake failed: {exc.reason or exc}", "tls"
        ) from None
    except TimeoutError:
        raise ProbeFailure(f"{tls_target} {host}:{port}: TLS handshake timed out", "timeout") from None
    except OSError as exc:
        raise ProbeFailure(
            f"{tls_target} {host}:{port}: cannot connect: {exc.strerror or exc}", "connect"
        ) from None
    expires = ssl.cert_time_to_seconds(certificate["notAfter"])
    days_left = (expires - time.time()) / 86400
    minimum = slo_config.probes.tls.min_days_left
    assert days_left >= minimum, (
        f"{tls_target} {host}:{port}: certificate expires in {days_left:.1f} days "
        f"({certificate['notAfter']}), under {minimum} (probes.tls.min_days_left)"
    )
    report_note(request, f"certificate valid for {days_left:.0f} more days ({certificate['notAfter']})")
