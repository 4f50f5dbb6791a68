"""Reading a JUnit XML report, the one way: the release gate, the demo and the tests read
probe runs through :func:`read_cases`.

pytest writes one ``<testcase>`` per test, with a ``<failure>``, ``<error>`` or ``<skipped>``
child when it did not pass. A case with several (a failed call and a teardown error) counts
as its first: one test, one outcome. A degraded probe's case passes, with the reason in its
``degraded`` property (:data:`slo.evidence.DEGRADED_PROPERTY`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal
from xml.etree import ElementTree

from slo.evidence import DEGRADED_PROPERTY

__all__ = ["Case", "JunitError", "Outcome", "Suite", "read_cases", "read_suite"]

Outcome = Literal["passed", "failed", "error", "skipped"]
_OUTCOMES: dict[str, Outcome] = {"failure": "failed", "error": "error", "skipped": "skipped"}


class JunitError(Exception):
    """The file is missing or is not a JUnit XML report; the message says which, in one line."""


@dataclass(frozen=True)
class Case:
    """One test of the report: ``classname`` (``probes.test_health``), ``name``, outcome and,
    unless it passed, the message pytest gave it; a passing probe that was degraded, why."""

    classname: str
    name: str
    outcome: Outcome
    message: str = ""
    degraded: str = ""

    @property
    def module(self) -> str:
        """The test module's own name (``test_health``)."""
        return self.classname.rsplit(".", 1)[-1]


def read_cases(path: Path) -> list[Case]:
    """Every ``<testcase>`` of the report at `path`, in file order; raises :class:`JunitError`."""
    return [_case(element) for element in _root(path).iter("testcase")]


def _root(path: Path) -> ElementTree.Element:
    try:
        root = ElementTree.parse(path).getroot()
    except FileNotFoundError:
        raise JunitError("file not found") from None
    except (OSError, ElementTree.ParseError) as exc:
        raise JunitError(f"not a JUnit XML file: {exc}") from None
    if root.tag not in ("testsuites", "testsuite"):
        raise JunitError(f"not a JUnit XML file: root element <{root.tag}>")
    return root


def _case(element: ElementTree.Element) -> Case:
    classname, name = element.get("classname", ""), element.get("name", "")
    for child in element:
        if child.tag in _OUTCOMES:
            return Case(classname, name, _OUTCOMES[child.tag], child.get("message", ""))
    degraded = next(
        (p.get("value", "") for p in element.iter("property") if p.get("name") == DEGRADED_PROPERTY), ""
    )
    return Case(classname, name, "passed", degraded=degraded)


@dataclass(frozen=True)
class Suite:
    """What the report says about the run: when it started (None if it does not say) and
    its suite properties (``slo_environment``)."""

    started: datetime | None
    properties: dict[str, str]


def read_suite(path: Path) -> Suite:
    """The first ``<testsuite>``'s ``timestamp`` (pytest writes it with its time zone; a naive
    one is local time) and properties; raises :class:`JunitError`."""
    root = _root(path)
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        return Suite(None, {})
    properties = {
        prop.get("name", ""): prop.get("value", "") for prop in suite.iterfind("properties/property")
    }
    stamp = suite.get("timestamp")
    try:
        started = datetime.fromisoformat(stamp).astimezone() if stamp else None
    except ValueError:
        started = None
    return Suite(started, properties)
