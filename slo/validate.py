"""`slo validate`: every environment of a config, and every probe marker, checked without any
secret, one line per problem, exit 4.

    $ slo validate --config monitoring.yaml --probes probes
    monitoring.yaml: environments.staging.targets.api.timout: unknown key
    probes/test_gateway.py:12: @pytest.mark.probe: unknown target 'gatway' (did you mean 'gateway'? ...)

The probe files are read, never imported: a marker counts when its names are written as
literals (``@pytest.mark.probe(target="api")``, ``probe_param(..., slo="api-availability")``);
names computed at run time are checked by the plugin when the probes are collected.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from slo import conventions
from slo.cliargs import ArgumentParser, fail
from slo.config import Config
from slo.config.loader import validate_config
from slo.markers import alert_problem, name_problems
from slo.options import add_cli_options, resolve_cli
from slo.outcomes import MARKER_ARGUMENTS, kind_problem

__all__ = ["main", "marker_problems"]


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="slo validate",
        description="Check every environment of the config and every probe marker; no secret is needed.",
    )
    add_cli_options(parser, ["config"])
    parser.add_argument(
        "--probes",
        metavar="DIR",
        type=Path,
        help="probe directory whose markers are checked (default: probes/ beside the config)",
    )
    return parser


def _is_marker(call: ast.Call) -> str | None:
    """``@pytest.mark.probe(...)`` or ``probe_param(...)``: how to name it in a message."""
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr == "probe":
        owner = func.value
        if isinstance(owner, ast.Attribute) and owner.attr == "mark":
            return "@pytest.mark.probe"
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return "probe_param" if name == "probe_param" else None


def _literal(call: ast.Call, name: str) -> str | None:
    for keyword in call.keywords:
        if keyword.arg == name and isinstance(keyword.value, ast.Constant):
            return str(keyword.value.value) if keyword.value.value is not None else None
    return None


def marker_problems(path: Path, config: Config) -> Iterator[str]:
    """The problems of every probe marker written in `path`, one line each."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError) as exc:
        yield f"{path}: cannot be parsed: {exc}"
        return
    except OSError as exc:
        yield f"{path}: cannot be read: {exc.strerror}"
        return
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or (what := _is_marker(node)) is None:
            continue
        where = f"{path}:{node.lineno}: {what}"
        if what == "@pytest.mark.probe":
            if node.args:
                yield f"{where}: takes keyword arguments only ({', '.join(MARKER_ARGUMENTS)})"
            unknown = sorted(k.arg for k in node.keywords if k.arg and k.arg not in MARKER_ARGUMENTS)
            if unknown:
                known = ", ".join(MARKER_ARGUMENTS)
                yield f"{where}: unknown argument {', '.join(unknown)} (known: {known})"
        kind = _literal(node, "kind")
        problem = (kind_problem({"kind": kind}) if kind is not None else None) or alert_problem(
            _literal(node, "alert")
        )
        if problem:
            yield f"{where}: {problem}"
        for line in name_problems(config, _literal(node, "target"), _literal(node, "slo"), kind):
            yield f"{where}: {line}"


def main(argv: Sequence[str] | None = None) -> int:
    args = resolve_cli(_parser().parse_args(list(sys.argv[1:] if argv is None else argv)))
    config_path = Path(args.config)
    config, problems = validate_config(config_path)
    probes = args.probes if args.probes is not None else config_path.parent / "probes"
    files = 0
    if args.probes is not None and not probes.is_dir():
        return fail(f"slo validate: {probes}: no such directory (use --probes)")
    if config is not None and probes.is_dir():
        for path in sorted(probes.rglob("*.py")):
            files += 1
            problems.extend(marker_problems(path, config))
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return conventions.USAGE_ERROR
    checked = f"{files} probe file(s) in {probes} checked"
    print(f"slo validate: {config_path}: every environment is valid; {checked}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
