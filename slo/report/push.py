"""Pushing a registry to a Pushgateway: bounded in time, never raising, never leaking secrets.

`prometheus_client.push_to_gateway` waits 30 s by default and raises on any network error;
on a one-minute timer that is a hung or crashed run. This sends the same PUT with httpx,
retrying connection errors, timeouts and 5xx until a total deadline, and reports the outcome
as a :class:`PushResult` for the terminal summary. A push never changes a probe's verdict.
"""

from __future__ import annotations

import base64
import ssl
import time
from dataclasses import dataclass
from urllib.parse import quote

import httpx
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from slo.config import PushgatewaySettings
from slo.probe.failures import describe_exception
from slo.redact import safe_url

__all__ = ["PushResult", "group_url", "push_registry"]


@dataclass(frozen=True)
class PushResult:
    ok: bool
    url: str
    attempts: int
    elapsed: float
    error: str = ""


def _segment(name: str, value: str) -> str:
    # The Pushgateway's URL encoding: values with "/" (or empty) go base64-url encoded.
    if value and "/" not in value:
        return f"{name}/{quote(value, safe='')}"
    encoded = base64.urlsafe_b64encode(value.encode()).decode() or "="
    return f"{name}@base64/{encoded}"


def group_url(base_url: str, job: str, grouping_key: dict[str, str]) -> str:
    """``http://pg:9091/metrics/job/<job>/<label>/<value>...`` for one grouping key."""
    path = "/".join(_segment(name, value) for name, value in [("job", job), *grouping_key.items()])
    return f"{base_url.rstrip('/')}/metrics/{path}"


def _client(settings: PushgatewaySettings) -> httpx.Client:
    verify: ssl.SSLContext | bool = settings.verify
    if settings.verify and settings.ca_file is not None:
        verify = ssl.create_default_context(cafile=str(settings.ca_file))
    auth: httpx.Auth | None = None
    headers = {"Content-Type": CONTENT_TYPE_LATEST}
    if settings.token is not None:
        headers["Authorization"] = f"Bearer {settings.token.get_secret_value()}"
    elif settings.username is not None:
        password = settings.password.get_secret_value() if settings.password else ""
        auth = httpx.BasicAuth(settings.username, password)
    return httpx.Client(verify=verify, auth=auth, headers=headers)


def push_registry(
    registry: CollectorRegistry,
    settings: PushgatewaySettings,
    job: str,
    grouping_key: dict[str, str],
) -> PushResult:
    """PUT (replace the group) `registry`; retries until `settings.deadline`. Never raises."""
    if not settings.url:
        return PushResult(False, "", 0, 0.0, "no Pushgateway URL configured")
    url = group_url(settings.url, job, grouping_key)
    shown = safe_url(url)
    body = generate_latest(registry)
    started = time.monotonic()
    deadline = started + settings.deadline
    attempts, error = 0, ""
    try:
        client = _client(settings)
    except (OSError, ssl.SSLError) as exc:
        return PushResult(False, shown, 0, 0.0, f"cannot set up TLS: {exc}")
    with client:
        while attempts <= settings.retries:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            attempts += 1
            try:
                response = client.request("PUT", url, content=body, timeout=min(settings.timeout, remaining))
            except httpx.HTTPError as exc:
                error, reason = describe_exception(exc)
                if reason in ("tls", "dns"):
                    break  # an untrusted certificate or an unknown host does not heal in seconds
            else:
                if response.is_success:
                    return PushResult(True, shown, attempts, time.monotonic() - started)
                error = f"HTTP {response.status_code}: {response.text.strip()[:200]}"
                if response.status_code < 500:
                    break  # wrong auth or a rejected body: retrying cannot help
            time.sleep(min(0.2 * attempts, max(0.0, deadline - time.monotonic())))
    elapsed = time.monotonic() - started
    return PushResult(
        False, shown, attempts, elapsed, f"{error} (after {attempts} attempt(s), {elapsed:.1f} s)"
    )
