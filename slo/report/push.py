"""Pushing metrics to a Pushgateway: bounded in time, never raising, never leaking secrets.

`prometheus_client.push_to_gateway` waits 30 s by default and raises on any network error;
on a one-minute timer that is a hung or crashed run. This sends the same PUT with httpx,
retrying connection errors, timeouts and 5xx until a total deadline, and reports the outcome
as a :class:`PushResult` for the terminal summary. A push never changes a probe's verdict.

The deadline holds against a Pushgateway that trickles its answer a byte at a time (every
socket operation gets only the time left, see :mod:`slo.exchange.deadline`), so the state
file's lock, held around the push, is never held past it.

A probe run pushes its families in the protobuf format (:func:`push_families`, which the
Pushgateway parses about three times faster than text); :func:`push_registry` sends any
prometheus_client registry as text.
"""

from __future__ import annotations

import base64
import json
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from slo import redact
from slo.config import PushgatewaySettings
from slo.exchange.body import BodyTooLarge, read_body
from slo.exchange.deadline import exchange_deadline
from slo.exchange.failures import describe_exception
from slo.exchange.tls import context_on_first_handshake
from slo.exchange.transport import bounded_transport
from slo.redact import safe_url
from slo.report.families import PROTOBUF_CONTENT_TYPE, Family, encode_protobuf

__all__ = [
    "MAX_GROUPING_VALUE",
    "GroupsError",
    "PushResult",
    "delete_group",
    "group_url",
    "list_groups",
    "push_families",
    "push_registry",
    "read_groups",
]

#: Longer grouping-key values make URLs that proxies and the Pushgateway reject.
MAX_GROUPING_VALUE = 1024
#: Of an error answer, only this much is read: enough for the Pushgateway's one-line reason.
ERROR_BODY_BYTES = 4096
#: The Pushgateway's list of groups holds every pushed series: a fleet of 100 runners of 50
#: probes is a few megabytes.
GROUPS_BODY_BYTES = 256 * 1024 * 1024


class GroupsError(Exception):
    """The Pushgateway's groups could not be listed or deleted; one line for the user."""


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
    verify: ssl.SSLContext | bool = False
    if settings.verify:
        # Shared, and loaded at the first handshake: a plain-http Pushgateway never loads it.
        verify = context_on_first_handshake(str(settings.ca_file) if settings.ca_file else None)
    auth: httpx.Auth | None = None
    headers: dict[str, str] = {}
    if settings.token is not None:
        headers["Authorization"] = f"Bearer {settings.token.get_secret_value()}"
    elif settings.username is not None:
        password = settings.password.get_secret_value() if settings.password else ""
        auth = httpx.BasicAuth(settings.username, password)
    return httpx.Client(
        auth=auth, headers=headers, transport=bounded_transport(verify), follow_redirects=False
    )


def _error_excerpt(response: httpx.Response) -> str:
    body = b""
    for chunk in response.iter_raw(ERROR_BODY_BYTES):
        body += chunk
        if len(body) >= ERROR_BODY_BYTES:
            break
    return redact.excerpt(body.decode("utf-8", errors="replace"))


def push_families(
    families: Sequence[Family], settings: PushgatewaySettings, job: str, grouping_key: dict[str, str]
) -> PushResult:
    """PUT (replace the group) `families` as protobuf; retries until `settings.deadline`. Never raises."""
    return _push_body(lambda: encode_protobuf(families), PROTOBUF_CONTENT_TYPE, settings, job, grouping_key)


def push_registry(
    registry: CollectorRegistry,
    settings: PushgatewaySettings,
    job: str,
    grouping_key: dict[str, str],
) -> PushResult:
    """PUT (replace the group) `registry` as text; retries until `settings.deadline`. Never raises."""
    return _push_body(lambda: generate_latest(registry), CONTENT_TYPE_LATEST, settings, job, grouping_key)


def _push_body(
    render: Callable[[], bytes],
    content_type: str,
    settings: PushgatewaySettings,
    job: str,
    grouping_key: dict[str, str],
) -> PushResult:
    if not settings.url:
        return PushResult(False, "", 0, 0.0, "no Pushgateway URL configured")
    redact.register_secrets(settings)
    shown = safe_url(settings.url)
    started = time.monotonic()
    try:
        too_long = [
            name for name, value in [("job", job), *grouping_key.items()] if len(value) > MAX_GROUPING_VALUE
        ]
        if too_long:
            return PushResult(
                False, shown, 0, 0.0, f"grouping key {too_long[0]} is over {MAX_GROUPING_VALUE} characters"
            )
        with exchange_deadline(settings.deadline, within_run=False):
            url = group_url(settings.url, job, grouping_key)
            return _push(render, content_type, settings, url, started)
    except Exception as exc:  # documented never to raise: a push must not change the verdict
        elapsed = time.monotonic() - started
        return PushResult(False, shown, 0, elapsed, redact.excerpt(f"{type(exc).__name__}: {exc}"))


def _push(
    render: Callable[[], bytes], content_type: str, settings: PushgatewaySettings, url: str, started: float
) -> PushResult:
    shown = safe_url(url)
    body = render()
    deadline = started + settings.deadline
    attempts, error = 0, ""
    try:
        client = _client(settings)
    except (OSError, ssl.SSLError) as exc:
        return PushResult(False, shown, 0, 0.0, f"cannot set up TLS: {redact.excerpt(str(exc))}")
    with client:
        while attempts <= settings.retries:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            attempts += 1
            try:
                request = client.build_request(
                    "PUT",
                    url,
                    content=body,
                    headers={"Content-Type": content_type},
                    timeout=min(settings.timeout, remaining),
                )
                response = client.send(request, stream=True)
                try:
                    if response.is_success:
                        return PushResult(True, shown, attempts, time.monotonic() - started)
                    error = f"HTTP {response.status_code}: {_error_excerpt(response)}"
                finally:
                    response.close()
                if response.status_code < 500:
                    break  # wrong auth or a rejected body: retrying cannot help
            except httpx.HTTPError as exc:
                error, reason = describe_exception(exc)
                if reason in ("tls", "dns"):
                    break  # an untrusted certificate or an unknown host does not heal in seconds
            time.sleep(min(0.2 * attempts, max(0.0, deadline - time.monotonic())))
    elapsed = time.monotonic() - started
    if not attempts:  # the deadline passed while the body and the client were being made
        error = f"no attempt before the {settings.deadline:g} s deadline (pushgateway.deadline)"
    return PushResult(
        False,
        shown,
        attempts,
        elapsed,
        f"{redact.scrub(error)} (after {attempts} attempt(s), {elapsed:.1f} s)",
    )


def list_groups(settings: PushgatewaySettings) -> list[dict[str, str]]:
    """The grouping key (job included) of every group the Pushgateway holds; GroupsError."""
    return [{str(k): str(v) for k, v in group["labels"].items()} for group in read_groups(settings)]


def read_groups(settings: PushgatewaySettings) -> list[dict[str, Any]]:
    """Every group the Pushgateway holds, as its API gives it (``labels`` and each metric
    family by name); one GET within `settings.deadline`; GroupsError."""
    if not settings.url:
        raise GroupsError("no Pushgateway URL configured")
    redact.register_secrets(settings)
    url = f"{settings.url.rstrip('/')}/api/v1/metrics"
    try:
        with (
            exchange_deadline(settings.deadline, within_run=False),
            _client(settings) as client,
            client.stream("GET", url, timeout=settings.timeout) as response,
        ):
            if not response.is_success:
                raise GroupsError(f"{safe_url(url)}: HTTP {response.status_code}: {_error_excerpt(response)}")
            try:
                body = read_body(response, GROUPS_BODY_BYTES)
            except BodyTooLarge:
                raise GroupsError(f"{safe_url(url)}: over {GROUPS_BODY_BYTES >> 20} MiB of groups") from None
        groups = json.loads(body)["data"]
        if not isinstance(groups, list) or not all(isinstance(g.get("labels"), dict) for g in groups):
            raise ValueError("not the Pushgateway's list of groups")
        return groups
    except GroupsError:
        raise
    except Exception as exc:  # network, TLS, a body that is not the API's: one line
        raise GroupsError(f"{safe_url(url)}: {redact.excerpt(f'{type(exc).__name__}: {exc}')}") from None


def delete_group(settings: PushgatewaySettings, labels: dict[str, str]) -> PushResult:
    """DELETE the group with grouping key `labels` (job included). Never raises."""
    assert settings.url, "delete_group needs a Pushgateway URL"
    key = dict(labels)
    job = key.pop("job", "")
    url = group_url(settings.url, job, key)
    started = time.monotonic()
    try:
        with (
            exchange_deadline(settings.deadline, within_run=False),
            _client(settings) as client,
            client.stream("DELETE", url, timeout=settings.timeout) as response,
        ):
            # Only the start of an error answer is read: a hostile one may be endless.
            ok = response.is_success
            error = "" if ok else f"HTTP {response.status_code}: {_error_excerpt(response)}"
    except Exception as exc:  # documented never to raise, like a push
        ok, error = False, redact.excerpt(f"{type(exc).__name__}: {exc}")
    return PushResult(ok, safe_url(url), 1, time.monotonic() - started, error)
