"""Keeping secrets out of everything the suite shows: messages, reports, labels, files.

One registry per process knows every secret the config and the command line carry: tokens,
header values, passwords in URLs, query-string values of configured URLs, the Pushgateway and
Prometheus credentials. :func:`scrub` replaces each of them, also in the encodings a target
echoes them back in (percent-encoded, JSON-escaped, HTTP Basic's base64), with ``***``:

    redact.register_secrets(config)       # done by load_config for every config
    redact.register_url(args.prometheus)  # done by each command for its URL options
    redact.scrub(f"... {response.text}")  # -> "... Bearer ***"

It is process-wide on purpose: a message is built deep inside a probe, far from the config,
and it must be clean wherever it is built. Values shorter than four characters are not
scrubbed: replacing "a" or "on" everywhere would make every message unreadable, and a
secret that short is no secret.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit, urlunsplit

from pydantic import BaseModel, SecretStr

if TYPE_CHECKING:  # only for a type: importing httpx costs every Locust process 0.1-0.2 s
    import httpx

__all__ = [
    "MASK",
    "MAX_MESSAGE",
    "excerpt",
    "register",
    "register_secrets",
    "register_url",
    "safe_url",
    "scrub",
    "scrub_fields",
    "scrub_file",
    "scrub_report",
    "scrub_values",
]

MASK = "***"
MIN_SECRET_LENGTH = 4
#: Characters of an excerpt of a body or value in a one-line message.
EXCERPT = 200
#: Characters of a whole failure message (a few excerpts and their context).
MAX_MESSAGE = 2000

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: list[re.Pattern[str] | None] = [None]


def _variants(secret: str) -> set[str]:
    """The forms an echoing target may send a secret back in."""
    return {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}


def register(*secrets: str | SecretStr | None) -> None:
    """Scrub these values (and their echoed forms) from every later message."""
    values = {s.get_secret_value() if isinstance(s, SecretStr) else s for s in secrets}
    # A header value such as "Basic dXNlcjpw..." is often echoed as its credentials alone.
    values |= {value.split(" ", 1)[1].strip() for value in values if value and " " in value.strip()}
    fresh = {v for value in values if value and len(value) >= MIN_SECRET_LENGTH for v in _variants(value)}
    with _lock:
        if fresh <= _secrets:
            return
        _secrets.update(fresh)
        # Longest first, so a secret that contains another is replaced whole.
        alternatives = sorted(_secrets, key=len, reverse=True)
        _pattern[0] = re.compile("|".join(map(re.escape, alternatives)))


def register_basic(username: str | None, password: str | SecretStr | None) -> None:
    """An HTTP Basic credential: the password and the base64 the header carries."""
    secret = password.get_secret_value() if isinstance(password, SecretStr) else password
    if not secret:
        return
    register(secret, base64.b64encode(f"{username or ''}:{secret}".encode()).decode())


def register_url(url: str | None) -> None:
    """The password and the query-string values of a URL (or of a path with a query)."""
    if not url:
        return
    parts = urlsplit(url)
    try:
        password, username = parts.password, parts.username
    except ValueError:
        password = username = None
    if password:
        register_basic(username, password)
    register(*(value for _, value in parse_qsl(parts.query, keep_blank_values=False)))


def register_secrets(value: Any) -> None:
    """Every secret in a config (or any part of one): SecretStr fields and URLs' credentials
    and query values, found by walking the models, so a new secret field needs no code here."""
    if isinstance(value, SecretStr):
        register(value)
    elif isinstance(value, str):
        if "://" in value or "?" in value:
            register_url(value)
    elif isinstance(value, BaseModel):
        for item in value.__dict__.values():
            register_secrets(item)
        username, password = getattr(value, "username", None), getattr(value, "password", None)
        if isinstance(password, SecretStr):
            register_basic(username, password)
    elif isinstance(value, Mapping):
        for item in value.values():
            register_secrets(item)
    elif isinstance(value, Iterable) and not isinstance(value, bytes):
        for item in value:
            register_secrets(item)


def scrub(text: str) -> str:
    """`text` with every registered secret replaced by ``***``."""
    pattern = _pattern[0]
    return text if pattern is None or not text else pattern.sub(MASK, text)


def excerpt(text: str, limit: int = EXCERPT) -> str:
    """One scrubbed line of at most `limit` characters (plus "...") from any text.

    Scrubbed before it is cut: a secret cut in half would no longer be recognised.
    """
    window = text[: 20 * limit]
    line = " ".join(scrub(window).split())
    return line[:limit] + ("..." if len(line) > limit or len(text) > len(window) else "")


def safe_url(url: str | httpx.URL) -> str:
    """The URL without credentials or query string, fit for messages, reports and labels."""
    parts = urlsplit(str(url))
    try:
        host, port = parts.hostname or "", parts.port
    except ValueError:
        host, port = parts.hostname or "", None
    if ":" in host:  # an IPv6 literal keeps its brackets, or the port would merge into it
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    return scrub(urlunsplit((parts.scheme, netloc, parts.path, "", "")))


#: Files larger than this are left as they are: reports and logs, not dumps.
MAX_SCRUBBED_FILE = 64 * 1024 * 1024


def scrub_file(path: Path) -> None:
    """Rewrite a text file (a report or a log another tool wrote) without secrets; atomic, so
    a reader sees the old file or the clean one. Unreadable, vanished or huge files are left."""
    try:
        if not path.is_file() or path.stat().st_size > MAX_SCRUBBED_FILE:
            return
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
        clean = scrub(text)
        if clean != text:
            partial = path.with_name(f".{path.name}.scrubbed")
            partial.write_text(clean, encoding="utf-8", errors="surrogateescape")
            os.replace(partial, path)
    except OSError:
        return


def scrub_report(report: Any) -> None:
    """Scrub a pytest report in place (longrepr, captured sections, user properties), so
    the terminal, JUnit and Allure never see a secret a probe or a traceback carried.

    A traceback is scrubbed in its own structure, so pytest still renders it as one and the
    short summary still names the exception ("RuntimeError: boom ***")."""
    if _pattern[0] is None:
        return
    report.longrepr = scrub_fields(report.longrepr)
    report.sections = [(title, scrub(content)) for title, content in report.sections]
    if hasattr(report, "user_properties"):  # a test's report; a collection report has none
        report.user_properties = [
            (name, _scrub_property(value) if isinstance(value, str) else value)
            for name, value in report.user_properties
        ]


def scrub_fields(value: Any, _depth: int = 0) -> Any:
    """`value` with every string in it scrubbed. Strings and tuples come back new; lists,
    dicts and the fields of dataclass and attrs objects (pytest's tracebacks, Allure's
    results) are scrubbed in place, so whoever renders them later keeps their shape."""
    if isinstance(value, str):
        return scrub(value)
    if _depth > _MAX_FIELD_DEPTH or value is None or isinstance(value, int | float | bytes):
        return value
    if type(value) is tuple:
        return tuple(scrub_fields(item, _depth + 1) for item in value)
    if isinstance(value, list):
        value[:] = [scrub_fields(item, _depth + 1) for item in value]
    elif isinstance(value, dict):
        for key, item in value.items():
            value[key] = scrub_fields(item, _depth + 1)
    else:
        for name in _field_names(value):
            item = getattr(value, name)
            clean = scrub_fields(item, _depth + 1)
            if clean is not item:  # object.__setattr__: frozen dataclasses and slotted attrs too
                object.__setattr__(value, name, clean)
    return value


#: Tracebacks and Allure's steps nest a few levels; anything deeper is not a report.
_MAX_FIELD_DEPTH = 32


def _field_names(value: Any) -> list[str]:
    """The attributes of a report-like object: its dataclass or attrs fields and its own
    attributes (pytest's ``CollectErrorRepr`` sets one beside no fields); none for a class."""
    if isinstance(value, type):
        return []
    names: dict[str, None] = {}
    if dataclasses.is_dataclass(value):
        names.update((field.name, None) for field in dataclasses.fields(value))
    names.update((attribute.name, None) for attribute in getattr(type(value), "__attrs_attrs__", ()))
    own = getattr(value, "__dict__", None)
    if isinstance(own, dict):
        names.update(dict.fromkeys(own))
    return list(names)


def _scrub_property(value: str) -> str:
    """A property that holds JSON (a probe's evidence) is scrubbed value by value, so that
    the mask can never cut through its quoting and leave the controller unparseable JSON."""
    try:
        document = json.loads(value)
    except ValueError:
        return scrub(value)
    return json.dumps(scrub_values(document), separators=(",", ":"))


def scrub_values(value: Any) -> Any:
    """A JSON-shaped document (dicts, lists, strings, numbers) with every string value
    scrubbed: what a probe's evidence is encoded from, so its JSON is made once, already
    scrubbed, and never parsed again to scrub it."""
    if _pattern[0] is None:
        return value
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, list):
        return [scrub_values(item) for item in value]
    if isinstance(value, dict):
        return {key: scrub_values(item) for key, item in value.items()}
    return value
