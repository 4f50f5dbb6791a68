"""Keeping secrets out of what the suite shows: messages, reports, labels."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import httpx

__all__ = ["safe_url"]


def safe_url(url: str | httpx.URL) -> str:
    """The URL without credentials or query string, fit for messages, reports and labels."""
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal keeps its brackets, or the port would merge into it
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
