"""MkDocs hook: the configuration reference, generated from the schema at build time."""

from typing import Any

MARKER = "<!-- slo:config-reference -->"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if MARKER not in markdown:
        return markdown
    from slo.config.reference import config_reference

    return markdown.replace(MARKER, config_reference())
