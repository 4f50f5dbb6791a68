"""Secrets out of what pytest and Allure write themselves: test ids, collection errors, and
Allure's result and attachment files.

Probe reports are scrubbed where they are made (:func:`slo.redact.scrub_report`, from the
plugin's report hook); this covers the channels that never pass through a test report:

- a test id built from a parameter that carries a secret (``test_x[sk-live-...]``) would be
  in the terminal, JUnit, Allure and the ``probe`` label;
- a probe module that fails to import reports through a collection report;
- Allure takes its status message from the exception itself, and its parameters from the
  values, not from the report.

It costs nothing outside probe runs: no secret is registered until :mod:`slo.redact` is
imported (by the config loader), so until then every hook returns at once, importing nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Generator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

__all__ = ["SecretScrubber"]


def _redact() -> ModuleType | None:
    """The registry, if anything registered a secret yet (importing it would cost a probe-less
    run httpx and pydantic)."""
    return sys.modules.get("slo.redact")


def _scrubbed(text: str) -> str | None:
    """`text` scrubbed, or None when it carries no secret."""
    redact = _redact()
    if redact is None:
        return None
    clean: str = redact.scrub(text)
    return clean if clean != text else None


class SecretScrubber:
    """The pytest plugin part (registered by :mod:`slo.plugin` in every process)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.allure_dir: Path | None = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_make_parametrize_id(self, val: object) -> str | None:
        # Only values whose own text would be the id; others get "argname0" from pytest.
        if isinstance(val, bytes):
            val = val.decode("ascii", errors="backslashreplace")
        return _scrubbed(val) if isinstance(val, str) else None

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Ids that still carry a secret (given with ``ids=``, or built by a plugin)."""
        if _redact() is None:
            return
        from slo.compat import rename_item

        taken = {item.nodeid for item in items}
        for item in items:
            name = _scrubbed(item.name)
            if name is None:
                continue
            base, count = name, 1
            while item.nodeid.removesuffix(item.name) + name in taken:
                count += 1
                name = f"{base[:-1]}-{count}]" if base.endswith("]") else f"{base}-{count}"
            rename_item(item, name)
            taken.add(item.nodeid)

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(self) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
        report = yield
        redact = _redact()
        if redact is not None and report.failed:
            redact.scrub_report(report)
        return report

    def pytest_sessionstart(self) -> None:
        directory = getattr(self.config.option, "allure_report_dir", None)
        if directory:
            import allure_commons

            scrubber = _allure_scrubber(Path(directory).resolve())
            allure_commons.plugin_manager.register(scrubber)
            self.config.add_cleanup(lambda: allure_commons.plugin_manager.unregister(scrubber))


def _allure_scrubber(directory: Path) -> object:
    """A plugin of Allure's own plugin manager (built only when Allure writes results, so
    that importing this module never imports Allure)."""
    import allure_commons

    class AllureScrubber:
        @allure_commons.hookimpl(tryfirst=True)
        def report_result(self, result: Any) -> None:
            """Before the file logger writes it: name, status message and trace,
            parameters and steps, in place."""
            _scrub_fields(result)

        @allure_commons.hookimpl(tryfirst=True)
        def report_container(self, container: Any) -> None:
            _scrub_fields(container)

        # After the file logger wrote it: an argument cannot be changed on its way.
        @allure_commons.hookimpl(trylast=True)
        def report_attached_data(self, body: Any, file_name: str) -> None:
            _scrub_file(directory / file_name)

        @allure_commons.hookimpl(trylast=True)
        def report_attached_file(self, source: Any, file_name: str) -> None:
            _scrub_file(directory / file_name)

    return AllureScrubber()


def _scrub_fields(value: Any) -> None:
    redact = _redact()
    if redact is not None:
        redact.scrub_fields(value)


def _scrub_file(path: Path) -> None:
    redact = _redact()
    if redact is not None:
        redact.scrub_file(path)
