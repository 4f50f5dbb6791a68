"""Opening a page the suite wrote in a real headless Chromium (Debian's `chromium`, driven by
Playwright for Python; never a browser Playwright downloads).

:func:`open_page` loads a file, records every request it makes besides the file itself (each
one aborted) and every console error or page exception, measures each chart, saves a
screenshot, and hands back what it saw for the test to judge.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: Every wait of the browser has this deadline (milliseconds), generous for a busy CI host.
DEADLINE_MS = 60_000

#: The drawn size of each chart and of its largest drawn mark (path, rect, line, circle).
_MEASURE_CHARTS = """() => [...document.querySelectorAll('svg.chart')].map(svg => {
  const box = svg.getBoundingClientRect();
  const marks = [...svg.querySelectorAll('path, rect, circle')].map(e => e.getBBox());
  return {
    title: (svg.querySelector('title') || {}).textContent || '',
    width: box.width, height: box.height,
    drawn: marks.filter(b => b.width > 0 && b.height > 0).length,
  };
})"""


@dataclass
class Chart:
    title: str
    width: float
    height: float
    #: Marks (curves, bars, bounds) with a non-zero bounding box.
    drawn: int


@dataclass
class Seen:
    text: str
    charts: list[Chart]
    #: Requests other than the page's own file (each was aborted).
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    #: The text of the verdict banner (``#verdict``), if the page has one.
    verdict: str = ""


def chromium_or_skip() -> str:
    if not Path(CHROMIUM).is_file() and not shutil.which(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian package chromium; `make system-deps` installs it)")
    return CHROMIUM


def open_page(page_file: Path, screenshot: Path) -> Seen:
    """Load `page_file` in headless Chromium and report what it shows and asked for."""
    from playwright.sync_api import Route, sync_playwright

    executable = chromium_or_skip()
    url = page_file.resolve().as_uri()
    seen = Seen("", [])

    def route(route: Route) -> None:
        if route.request.url == url:
            route.continue_()
        else:
            _request(seen, url, route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=ARGS, timeout=DEADLINE_MS)
        try:
            context = browser.new_context(viewport={"width": 1200, "height": 900})
            context.set_default_timeout(DEADLINE_MS)
            context.route("**/*", route)
            page = context.new_page()
            page.on(
                "request", lambda request: None if request.url == url else seen.requests.append(request.url)
            )
            page.on("console", lambda message: _console(seen, message.type, message.text))
            page.on("pageerror", lambda error: seen.console_errors.append(str(error)))
            page.goto(url, wait_until="load")
            seen.text = page.inner_text("body")
            if page.query_selector("#verdict") is not None:
                seen.verdict = page.inner_text("#verdict")
            seen.charts = [Chart(**chart) for chart in page.evaluate(_MEASURE_CHARTS)]
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=False)
        finally:
            browser.close()
    return seen


def _request(seen: Seen, own: str, url: str) -> None:
    # Routing sees http(s) requests; this sees the rest too (file:, data:, blob:).
    if url != own and url not in seen.requests:
        seen.requests.append(url)


def _console(seen: Seen, kind: str, text: str) -> None:
    if kind in ("error", "warning"):
        seen.console_errors.append(f"{kind}: {text}")
