"""The config's YAML reading: libyaml's parser where PyYAML has it, with the same results,
limits and one-line messages as PyYAML's own parser."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from probe_project import SHIPPED_CONFIG

from slo.config import ConfigError, load_config, loader


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="this PyYAML is built without libyaml")
def test_configs_are_parsed_by_libyaml() -> None:
    # A config of 5,000 checks took 1.9 s with PyYAML's Python parser, 0.5 s with libyaml's.
    assert issubclass(loader._FastLoader, yaml.CSafeLoader)


@pytest.mark.parametrize("parser", [loader._FastLoader, loader._PythonLoader], ids=["fast", "python"])
def test_both_parsers_read_the_shipped_config_alike(parser: type[yaml.SafeLoader]) -> None:
    text = SHIPPED_CONFIG.read_text(encoding="utf-8")
    assert loader._load_yaml(text, parser) == yaml.safe_load(text)


def _error(tmp_path: Path, content: str) -> str:
    path = tmp_path / "monitoring.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(path, "local", {})
    message = str(raised.value)
    assert "\n" not in message
    return message.removeprefix(f"{path}:")


def test_nesting_far_deeper_than_the_limit_is_one_line(tmp_path: Path) -> None:
    # libyaml's composer recurses in C: the depth is refused on the events, before composing.
    deep = "version: 1\na: " + "[" * 200_000 + "]" * 200_000 + "\n"
    assert _error(tmp_path, deep) == " line 2: invalid YAML: nested deeper than 64 levels"


def test_nesting_at_the_limit_is_read(tmp_path: Path) -> None:
    inner = "[" * (loader.MAX_DEPTH - 1) + "1" + "]" * (loader.MAX_DEPTH - 1)
    assert loader._load_yaml(f"a: {inner}\n", loader._FastLoader)["a"] is not None
    assert "nested deeper" in _error(tmp_path, f"a: [{inner}]\n")


def test_aliases_nesting_deeper_than_python_recurses_are_one_line(tmp_path: Path) -> None:
    # Each anchor nests 60 mappings and refers to the previous one: 2,400 levels once expanded.
    lines = [f"a{i}: &a{i} " + "{k: " * 60 + (f"*a{i - 1}" if i else "1") + "}" * 60 for i in range(40)]
    message = _error(tmp_path, "\n".join(lines) + "\n")
    assert message in (
        " invalid YAML: nested too deeply",
        " environments: at least one environment is required",
    )


def test_a_syntax_error_keeps_pyyaml_wording(tmp_path: Path) -> None:
    # libyaml says "mapping values are not allowed in this context".
    assert _error(tmp_path, "version: 1\nenvironments:\n  local: a: b\n") == (
        " line 3: invalid YAML: mapping values are not allowed here"
    )


def test_duplicate_keys_are_refused_by_the_fast_parser(tmp_path: Path) -> None:
    assert _error(tmp_path, "version: 1\nversion: 1\n") == " line 2: invalid YAML: duplicate key 'version'"
    with pytest.raises(yaml.constructor.ConstructorError):
        loader._load_yaml("a: 1\na: 2\n", loader._FastLoader)
