"""The page's HTML: one escaping rule, tables, badges and the self-contained page around them.

Everything shown comes from files a run wrote, and through them from the targets: a
response body or a message may hold markup or an echoed secret. :func:`text` is the one way
a value enters the page, scrubbed (`slo.redact`) and then escaped; :func:`page` scrubs the
finished page once more, so a secret cannot slip in by a path that forgot.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from slo import redact

__all__ = ["badge", "details", "extras", "page", "table", "text"]

#: Characters of an unknown field's JSON shown on the page.
MAX_EXTRA = 4000

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5rem auto;max-width:70rem;padding:0 1rem;color:#222}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}h3{font-size:1rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.85rem}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td code{word-break:break-all}td{max-width:22rem}
.banner{padding:.8rem 1rem;border-radius:.3rem;color:#fff;font-size:1.1rem}
.banner ul{margin:.4rem 0 0;font-size:.9rem}
.pass,.passed{background:#2e7d32}.fail,.failed,.error{background:#c62828}
.inconclusive,.degraded,.unknown{background:#ef6c00}.skipped{background:#757575}
.badge{color:#fff;border-radius:.2rem;padding:0 .35rem;font-size:.8rem;white-space:nowrap}
.muted{color:#666;font-size:.85rem}
pre{white-space:pre-wrap;word-break:break-all;background:#f6f6f6;padding:.5rem;font-size:.8rem}
svg.chart{display:block;margin:.3rem 0;overflow:visible}
details{margin:.3rem 0}
"""


def text(value: object) -> str:
    """`value` as page text: scrubbed of secrets, then escaped (quotes too, for attributes)."""
    return html.escape(redact.scrub(str(value)), quote=True)


def badge(outcome: str, colour_of: str | None = None) -> str:
    """An outcome or verdict as a coloured word; the colour is that of `colour_of` (an
    outcome or verdict) when the word is not one itself."""
    word = str(outcome).lower()
    css = str(colour_of or word).lower()
    return f'<span class="badge {css if css.isalpha() else "unknown"}">{text(word.upper())}</span>'


def table(header: Sequence[str], rows: Iterable[Sequence[str]], numeric: Iterable[int] = ()) -> str:
    """A table of cells that are already HTML (made with :func:`text` or :func:`badge`)."""
    right = set(numeric)
    head = "".join(f"<th>{text(cell)}</th>" for cell in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{cell}</td>' if i in right else f"<td>{cell}</td>" for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def details(summary: str, content: str) -> str:
    return f"<details><summary>{text(summary)}</summary>{content}</details>"


def extras(document: Mapping[str, Any], known: Iterable[str], what: str) -> str:
    """Fields of `document` this page does not know (a newer writer's): shown as JSON, so
    nothing a run recorded is hidden, and nothing unknown breaks the page."""
    unknown = {key: value for key, value in document.items() if key not in set(known)}
    if not unknown:
        return ""
    dumped = json.dumps(unknown, indent=2, default=str)
    if len(dumped) > MAX_EXTRA:
        dumped = dumped[:MAX_EXTRA] + "\n..."
    return details(f"more {what} fields: {', '.join(sorted(unknown))}", f"<pre>{text(dumped)}</pre>")


def page(title: str, sections: Iterable[str]) -> str:
    """The whole document: inline style, no script, nothing fetched (the CSP says so too)."""
    body = "\n".join(section for section in sections if section)
    document = (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{text(title)}</title><style>{_CSS}</style></head>\n"
        f"<body>\n<h1>{text(title)}</h1>\n{body}\n</body></html>\n"
    )
    return redact.scrub(document)
