"""TLS: every https target presents a certificate the probes trust, valid for long enough.

Two probes per https target, from one handshake: `test_certificate_trusted` fails when
clients cannot connect (an outage: it counts against the target's availability), and says
which failure it is (self-signed, hostname mismatch, unknown issuer, expired), since each has
a different fix; `test_certificate_expiry` (kind "warning") fails while fewer than
`probes.tls.min_days_left` days are left, alerting without burning the target's error budget,
and pushes the days left as `synthetic_tls_certificate_days_left`.
"""

import socket
import ssl
import time
from urllib.parse import urlsplit

import pytest

from slo import ProbeFailure, parametrize_probes, probe_config, probe_param, tls_verify

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


@pytest.fixture(scope="session")
def presented_certificates():
    """Each target's handshake, made once per run for both probes: target -> certificate,
    or the ProbeFailure that kept it from being read."""
    return {}


@pytest.fixture
def certificate(tls_target, slo_config, presented_certificates):
    target = slo_config.target(tls_target)
    context = tls_verify(target)
    if not isinstance(context, ssl.SSLContext):
        pytest.skip(f"target {tls_target} sets verify: false, so its certificate is not checked")
    if tls_target not in presented_certificates:
        presented_certificates[tls_target] = handshake(tls_target, target.url, target.timeout, context)
    return presented_certificates[tls_target]


def handshake(name, url, timeout, context):
    """The verified peer certificate, or what failed, in the words the person on call needs."""
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port or 443
    where = f"{name} {host}:{port}"
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            return where, tls.getpeercert()
    except ssl.SSLCertVerificationError as exc:
        what = verification_failure(exc)
        failure = ProbeFailure(f"{where}: certificate verification failed: {what}", "tls")
    except ssl.SSLError as exc:
        failure = ProbeFailure(f"{where}: TLS handshake failed: {exc.reason or exc}", "tls")
    except TimeoutError:
        failure = ProbeFailure(f"{where}: TLS handshake timed out", "timeout")
    except OSError as exc:
        failure = ProbeFailure(f"{where}: cannot connect: {exc.strerror or exc}", "connect")
    return where, failure


def test_certificate_trusted(certificate, probe):
    """Clients can connect: a failure here is an outage of the target (availability)."""
    where, presented = certificate
    if isinstance(presented, ProbeFailure):
        raise presented
    probe.note(f"{where}: certificate verified ({presented['notAfter']})")


# Renewal due is a warning; only a certificate clients reject is the target's outage.
@pytest.mark.probe(kind="warning", alert="CertificateExpiringSoon")
def test_certificate_expiry(certificate, tls_target, slo_config, probe):
    """Renewal is due: a warning with its own alert (CertificateExpiringSoon), never an outage
    of the target while the certificate is still valid."""
    where, presented = certificate
    if isinstance(presented, ProbeFailure):
        pytest.skip(f"{where}: no verified certificate to read (test_certificate_trusted says why)")
    expires = ssl.cert_time_to_seconds(presented["notAfter"])
    days_left = (expires - time.time()) / 86400
    probe.value("tls_certificate_days_left", round(days_left, 3))
    minimum = slo_config.probes.tls.min_days_left
    assert days_left >= minimum, (
        f"{where}: certificate expires in {days_left:.1f} days "
        f"({presented['notAfter']}), under {minimum} (probes.tls.min_days_left)"
    )
    probe.note(f"certificate valid for {days_left:.0f} more days ({presented['notAfter']})")
