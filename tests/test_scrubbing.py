"""Secrets stay out of the channels pytest and Allure write themselves: test ids (terminal,
JUnit, Allure), collection errors, Allure's status messages, parameters and attachments.

The probes here carry the secret the ways a real probe does: a parametrised value (a URL
with a key), ids built from it, an assertion and an exception echoing it, an attachment of
an echoed body, and a probe module that fails to import with it in the message.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from slo import redact

SECRET = "sk-live-SCRUB-4e1f9a"
OTHER = "sk-live-SCRUB-77b2c0"

CONFIG = f"""\
environments:
  local:
    targets:
      api:
        url: http://127.0.0.1:9/?key={SECRET}
        headers: {{X-Other: "{OTHER}"}}
"""

PROBES = f"""\
import allure
import pytest

SECRET, OTHER = {SECRET!r}, {OTHER!r}
pytestmark = pytest.mark.probe(target="api")


def test_assertion():
    print("captured", SECRET)
    assert False, f"the target echoed {{SECRET}}"


def test_exception():
    raise RuntimeError(f"boom {{SECRET}}")


@pytest.mark.parametrize("url", [f"https://x/?key={{SECRET}}"])
def test_value_id(url):
    assert url


@pytest.mark.parametrize("n", [1, 2], ids=[SECRET, OTHER])
def test_given_ids(n):
    allure.attach(f"body {{SECRET}}", name="echo")
"""


def _files_text(root: Path) -> str:
    return "\n".join(
        path.read_bytes().decode("utf-8", errors="replace")
        for path in root.rglob("*")
        if path.is_file() and path.suffix != ".py" and path.name != "monitoring.yaml"
    )


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".yaml", monitoring=CONFIG)
    pytester.makeini("[pytest]\naddopts = -p no:locust -p no:cacheprovider\n")
    (pytester.path / "probes").mkdir()
    (pytester.path / "probes" / "test_echo.py").write_text(PROBES, encoding="utf-8")
    return pytester


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one process", "xdist"])
def test_no_secret_in_ids_messages_junit_or_allure(project: pytest.Pytester, workers: list[str]) -> None:
    result = project.runpytest_subprocess("probes/", "--no-push", "--alluredir", "allure", "-rA", *workers)
    result.assert_outcomes(passed=3, failed=2)
    output = result.stdout.str() + result.stderr.str()
    files = _files_text(project.path)
    assert (project.path / "allure").is_dir()
    assert "RuntimeError: boom ***" in files
    for secret in (SECRET, OTHER):
        assert secret not in output
        assert secret not in files
    # The ids say where the secret was, and stay distinct.
    result.stdout.fnmatch_lines(
        ["*test_value_id[[]***[]]*", "*test_given_ids[[]***[]]*", "*test_given_ids[[]***-2[]]*"]
    )
    # The short summary still names the exception, not a line of the traceback.
    result.stdout.fnmatch_lines(["FAILED probes/test_echo.py::test_exception - RuntimeError: boom ***"])


def test_a_probe_module_that_fails_to_import_is_scrubbed(project: pytest.Pytester) -> None:
    (project.path / "probes" / "test_broken.py").write_text(
        f"raise ImportError('no module for ' + {SECRET!r})\n", encoding="utf-8"
    )
    result = project.runpytest_subprocess("probes/test_broken.py", "--no-push")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*ImportError: no module for ****"])
    assert SECRET not in result.stdout.str() + result.stderr.str() + _files_text(project.path)


def test_scrub_fields_keeps_the_shape_of_what_it_scrubs() -> None:
    @dataclasses.dataclass(frozen=True)
    class Entry:
        lines: list[str]
        location: tuple[str, int, str]

    redact.register(SECRET)
    entry = Entry([f"E   token {SECRET}"], ("probe.py", 3, f"key={SECRET}"))
    assert redact.scrub_fields(entry) is entry
    assert entry == Entry(["E   token ***"], ("probe.py", 3, "key=***"))
    assert redact.scrub_fields({"a": [SECRET, 1, None]}) == {"a": ["***", 1, None]}


def test_a_header_value_is_scrubbed_when_only_its_credentials_are_echoed() -> None:
    # The load gate's own list used to take the part after the scheme; the one registry does.
    redact.register("Basic c2NydWI6aGVhZGVyLXZhbHVl")
    assert redact.scrub("401: bad credentials c2NydWI6aGVhZGVyLXZhbHVl") == "401: bad credentials ***"
    assert redact.scrub("Basic") == "Basic"
