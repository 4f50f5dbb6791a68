"""The neutral helpers every command shares: one table layout, one way to stop a process,
one JUnit reader."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from slo.junit import JunitError, read_cases
from slo.processes import stop
from slo.tables import table


def test_columns_fit_the_widest_cell_numbers_align_right_no_trailing_spaces() -> None:
    lines = table([["NAME", "N", "NOTE"], ["api-availability", "12", ""], ["gw", "3", "slow"]], right={1})
    assert lines == [
        "NAME               N  NOTE",
        "api-availability  12",
        "gw                 3  slow",
    ]
    assert table([]) == []


def test_stop_kills_a_process_that_ignores_sigterm_after_the_grace() -> None:
    code = (
        "import signal, time; "
        "signal.signal(signal.SIGTERM, signal.SIG_IGN); print(flush=True); time.sleep(60)"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert process.stdout is not None
    process.stdout.readline()  # SIGTERM is ignored from here on
    started = time.monotonic()
    assert stop(process, grace=0.5) == -signal.SIGKILL
    assert time.monotonic() - started < 30, "waited far beyond the grace period"
    process.stdout.close()


def test_stop_returns_the_status_of_a_process_that_ends_on_sigterm_or_already_ended() -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    assert stop(sleeper, grace=30) == -signal.SIGTERM
    done = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    done.wait()
    assert stop(done, grace=30) == 3


def test_a_case_has_one_outcome_even_with_a_failure_and_a_teardown_error(tmp_path: Path) -> None:
    report = tmp_path / "junit.xml"
    report.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="probes.test_health" name="test_api"><failure message="down"/>'
        '<error message="teardown"/></testcase>'
        '<testcase classname="probes.test_tls" name="test_cert"><skipped message="no https"/></testcase>'
        '<testcase classname="probes.test_health" name="test_gateway"/>'
        "</testsuite></testsuites>"
    )
    cases = read_cases(report)
    assert [(c.module, c.name, c.outcome, c.message) for c in cases] == [
        ("test_health", "test_api", "failed", "down"),
        ("test_tls", "test_cert", "skipped", "no https"),
        ("test_health", "test_gateway", "passed", ""),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "file not found"),
        ("<testsuite", "not a JUnit XML file: unclosed token"),
        ("<html></html>", "not a JUnit XML file: root element <html>"),
    ],
)
def test_an_unreadable_report_is_one_line(tmp_path: Path, content: str | None, message: str) -> None:
    report = tmp_path / "junit.xml"
    if content is not None:
        report.write_text(content)
    with pytest.raises(JunitError) as raised:
        read_cases(report)
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)
