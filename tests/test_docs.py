"""The README and the documentation site: every example parses, every whole config validates,
the site builds with `mkdocs build --strict`, the README stays short, and `make demo` installs
only what the demo uses."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from slo.config.loader import validate_config
from slo.config.reference import config_reference

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
README_LIMIT = 12_000


def _blocks(language: str) -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for match in FENCE.finditer(page.read_text(encoding="utf-8")):
            if match.group(1) == language:
                line = page.read_text(encoding="utf-8")[: match.start()].count("\n") + 1
                found.append((f"{page.relative_to(ROOT)}:{line}", match.group(2)))
    return found


YAML_BLOCKS = _blocks("yaml")
PYTHON_BLOCKS = _blocks("python")


def test_the_readme_is_a_short_front_door() -> None:
    assert len((ROOT / "README.md").read_bytes()) <= README_LIMIT


def test_there_are_examples_to_check() -> None:
    # A fence pattern that stopped matching would make the tests below pass on nothing.
    assert len(YAML_BLOCKS) >= 12
    assert len(PYTHON_BLOCKS) >= 2


@pytest.mark.parametrize(("where", "text"), YAML_BLOCKS, ids=[w for w, _ in YAML_BLOCKS])
def test_every_yaml_example_parses(where: str, text: str) -> None:
    try:
        list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        pytest.fail(f"{where}: {exc}")


@pytest.mark.parametrize(("where", "text"), PYTHON_BLOCKS, ids=[w for w, _ in PYTHON_BLOCKS])
def test_every_python_example_compiles(where: str, text: str) -> None:
    compile(text, where, "exec")


def test_every_whole_config_example_validates(tmp_path: Path) -> None:
    """A block with `environments:` at its top is a whole monitoring.yaml: it must pass the
    schema as written (no secret needed)."""
    whole = [(where, text) for where, text in YAML_BLOCKS if re.search(r"^environments:", text, re.MULTILINE)]
    assert whole
    for where, text in whole:
        path = tmp_path / "monitoring.yaml"
        path.write_text(text)
        _, problems = validate_config(path, environ={})
        assert problems == [], where


def test_the_configuration_reference_has_every_key_with_its_type_and_default() -> None:
    reference = config_reference()
    # Values as the pages above document them (durations and percents as people write them).
    assert "| `environments.<name>.targets.<name>.timeout` | duration | `5s` |" in reference
    assert "| `environments.<name>.targets.<name>.token` | secret (`${VAR}`) | none |" in reference
    assert "| `load.total.p95` | duration | `2s` |" in reference
    assert "| `budgets.cpu` | percent | `80` |" in reference
    assert (
        "| `slos[].sli.kind` | `probes` \\| `degraded` \\| `probe_latency` \\| `first_token` \\| `events` "
        "\\| `histogram` |" in (reference)
    )
    # The meaning comes from the model's own comment.
    assert "fails the probe unread" in reference
    sections = [line.removeprefix("### ") for line in reference.splitlines() if line.startswith("### ")]
    assert sections[:2] == ["`version`", "`environments`"]
    assert {"`slos`", "`budgets`", "`load`", "`pushgateway`", "`checks`", "`probes`"} <= set(sections)


@pytest.mark.slow
def test_the_site_builds_with_strict_checks(tmp_path: Path) -> None:
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent))
    assert mkdocs, "mkdocs is in the dev extra (make test installs it)"
    built = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert built.returncode == 0, built.stdout + built.stderr
    reference = (tmp_path / "site" / "configuration" / "index.html").read_text(encoding="utf-8")
    # The generated reference: keys the schema has, with their defaults.
    assert "environments.&lt;name&gt;.targets.&lt;name&gt;.timeout" in reference
    assert "<code>load.users</code>" in reference
    assert "slo:config-reference" not in reference


def test_make_demo_on_a_fresh_clone_installs_only_what_the_demo_uses(tmp_path: Path) -> None:
    # A venv that does not exist yet: make shows every step a fresh clone would run.
    dry = subprocess.run(
        ["make", "-n", "-C", str(ROOT), "demo", f"VENV={tmp_path / 'venv'}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert dry.returncode == 0, dry.stderr
    commands = dry.stdout.lower()
    assert "pip install --quiet -e ." in commands
    assert "prometheus-pushgateway" in commands
    for heavy in ("litellm", "postgresql", "redis", "nginx", "[dev", "alertmanager"):
        assert heavy not in commands, heavy
