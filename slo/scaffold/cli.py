"""`slo init [DIR]`: scaffold a probe project that validates, collects and runs at once.

    $ slo init myprobes --api-url https://api.example.com --gateway-url https://llm.example.com
    slo init: wrote myprobes/monitoring.yaml, myprobes/probes/ (4 probes), myprobes/deploy/, ...

Nothing is overwritten: a file that exists already is a usage error naming it.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from slo import conventions
from slo.cliargs import ArgumentParser, UsageError, fail
from slo.config.fields import Url

__all__ = ["main", "scaffold"]

#: The reference stack's ports (`slo reference-stack`), used when no URL is given.
DEFAULT_API_URL = "http://127.0.0.1:8080"
DEFAULT_GATEWAY_URL = "http://127.0.0.1:4000"
#: The deploy examples a probe project takes along (the rules are generated from its own SLOs).
DEPLOY_FILES = (
    "systemd/slo-probes.service",
    "systemd/slo-probes.timer",
    "systemd/slo-probes-warm.service",
    "kubernetes/cronjob.yaml",
    "kubernetes/deployment.yaml",
    "ci/github-actions.yml",
    "prometheus.yml",
    "alertmanager.yml",
)
_PACKAGE = files("slo.scaffold")


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="slo init", description="Create a probe project in DIR.")
    parser.add_argument("directory", nargs="?", default=".", type=Path, metavar="DIR", help="default: .")
    parser.add_argument("--api-url", default=DEFAULT_API_URL, help="the API service (default %(default)s)")
    parser.add_argument(
        "--gateway-url", default=DEFAULT_GATEWAY_URL, help="the LLM gateway (default %(default)s)"
    )
    parser.add_argument(
        "--env", default=conventions.ENVIRONMENT, help="name of the environment (default %(default)s)"
    )
    return parser


def _checked_env(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise UsageError(f"slo init: --env: {name!r} is not a plain name (letters, digits, _ . -)")
    return name


def _checked_url(flag: str, value: str) -> str:
    from pydantic import TypeAdapter, ValidationError

    try:
        TypeAdapter(Url).validate_python(value)
    except ValidationError as exc:
        raise UsageError(
            f"slo init: {flag}: {exc.errors()[0]['msg'].removeprefix('Value error, ')}"
        ) from None
    return value


def _files(api_url: str, gateway_url: str, env: str) -> dict[Path, str]:
    """What the project holds, by path relative to its directory."""
    templates = _PACKAGE / "templates"

    def fill(template: Traversable) -> str:
        text = template.read_text(encoding="utf-8")
        return text.replace("@API_URL@", api_url).replace("@GATEWAY_URL@", gateway_url).replace("@ENV@", env)

    project = {
        Path("monitoring.yaml"): fill(templates / "monitoring.yaml"),
        Path("README.md"): fill(templates / "README.md"),
    }
    for probe in sorted((templates / "probes").iterdir(), key=lambda t: t.name):
        if probe.name.endswith(".py.tmpl"):
            project[Path("probes", probe.name.removesuffix(".tmpl"))] = fill(probe)
    for name in DEPLOY_FILES:
        project[Path("deploy", name)] = (_PACKAGE / "deploy" / name).read_text(encoding="utf-8")
    return project


def scaffold(directory: Path, api_url: str, gateway_url: str, env: str) -> list[Path]:
    """Write the project into `directory`; raises UsageError before writing anything if a file
    would be overwritten."""
    project = _files(api_url, gateway_url, env)
    existing = [directory / path for path in project if (directory / path).exists()]
    if existing:
        raise UsageError(f"slo init: {existing[0]} exists already; nothing was written (choose another DIR)")
    for path, text in project.items():
        target = directory / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return [directory / path for path in project]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        api_url = _checked_url("--api-url", args.api_url)
        gateway_url = _checked_url("--gateway-url", args.gateway_url)
        written = scaffold(args.directory, api_url, gateway_url, _checked_env(args.env))
    except UsageError as exc:
        return fail(str(exc))
    except OSError as exc:
        return fail(f"slo init: {exc.filename}: {exc.strerror}")
    probes = sum(1 for path in written if path.parent.name == "probes")
    d = args.directory
    wrote = f"{d / 'monitoring.yaml'}, {d / 'probes'}/ ({probes} probes), {d / 'deploy'}/, {d / 'README.md'}"
    print(f"slo init: wrote {wrote}")
    print(f"next: cd {d} && slo validate && pytest probes/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
