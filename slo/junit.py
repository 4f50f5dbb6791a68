"""Reading a JUnit XML report, the one way: the release gate, the demo and the tests read
probe runs through :func:`read_cases`.

pytest writes one ``<testcase>`` per test, with a ``<failure>``, ``<error>`` or ``<skipped>``
child when it did not pass. A case with several (a failed call and a teardown error) counts
as its first: one test, one outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal
from xml.etree import ElementTree

__all__ = ["Case", "JunitError", "Outcome", "read_cases", "read_timestamp"]

Outcome = Literal["passed", "failed", "error", "skipped"]
_OUTCOMES: dict[str, Outcome] = {"failure": "failed", "error": "error", "skipped": "skipped"}


class JunitError(Exception):
    """The file is missing or is not a JUnit XML report; the message says which, in one line."""


@dataclass(frozen=True)
class Case:
    """One test of the report: ``classname`` (``probes.test_health``), ``name``, outcome and,
    unless it passed, the message pytest gave it."""

    classname: str
    name: str
    outcome: Outcome
    message: str = ""

    @property
    def module(self) -> str:
        """The test module's own name (``test_health``)."""
        return self.classname.rsplit(".", 1)[-1]


def read_cases(path: Path) -> list[Case]:
    """Every ``<testcase>`` of the report at `path`, in file order; raises :class:`JunitError`."""
    try:
        root = ElementTree.parse(path).getroot()
    except FileNotFoundError:
        raise JunitError("file not found") from None
    except (OSError, ElementTree.ParseError) as exc:
        raise JunitError(f"not a JUnit XML file: {exc}") from None
    if root.tag not in ("testsuites", "testsuite"):
        raise JunitError(f"not a JUnit XML file: root element <{root.tag}>")
    return [_case(element) for element in root.iter("testcase")]


def _case(element: ElementTree.Element) -> Case:
    classname, name = element.get("classname", ""), element.get("name", "")
    for child in element:
        if child.tag in _OUTCOMES:
            return Case(classname, name, _OUTCOMES[child.tag], child.get("message", ""))
    return Case(classname, name, "passed")


def read_timestamp(path: Path) -> datetime | None:
    """When the run started: the first ``<testsuite timestamp=...>`` (pytest writes it with its
    time zone), or None when the report has none; raises :class:`JunitError`."""
    try:
        root = ElementTree.parse(path).getroot()
    except FileNotFoundError:
        raise JunitError("file not found") from None
    except (OSError, ElementTree.ParseError) as exc:
        raise JunitError(f"not a JUnit XML file: {exc}") from None
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    stamp = suite.get("timestamp") if suite is not None else None
    try:
        started = datetime.fromisoformat(stamp) if stamp else None
    except ValueError:
        return None
    return started.astimezone() if started is not None else None  # a naive time is the local one
