"""The `slo` command: one entry point, one module per subcommand.

Each subcommand lives in its own module and exposes ``main(argv) -> int``; it is imported only
when chosen, so `slo rules` never pays for Locust or the HTTP stack.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from importlib.metadata import version

from slo.conventions import USAGE_ERROR

#: Not in the wheel: the reference stack, daemons and demo of a checkout (`make setup`).
DEVELOPMENT_PACKAGE = "devstack"

COMMANDS: dict[str, tuple[str, str]] = {
    "reference-stack": ("devstack.refstack.cli", "serve the local reference stack (API + LLM gateway)"),
    "load": ("slo.loadgate.cli", "run the Locust load gate and print its verdict"),
    "rules": ("slo.objectives.rules.cli", "generate Prometheus recording and alerting rules"),
    "budget": ("slo.objectives.budget", "report error budget left per SLO from Prometheus"),
    "dashboard": ("slo.objectives.dashboard", "generate the Grafana dashboard JSON"),
    "gate": ("slo.objectives.gate", "CI release gate over probes, load and budget"),
    "validate": ("slo.validate", "check every environment of the config and every probe marker"),
    "init": ("slo.scaffold.cli", "create a probe project: config, example probes, deploy snippets"),
    "report": ("slo.htmlreport.cli", "one offline HTML page of a run: verdict, probes, load, SLOs"),
    "retire": ("slo.report.retire", "delete a stopped runner's or location's groups from the Pushgateway"),
    "run": ("slo.warmrun.cli", "run the probes every DURATION from one warm process (pytest args after --)"),
    "maintenance": (
        "slo.maintenance",
        "open, close or list maintenance windows (runs not counted, no alert)",
    ),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: slo COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "`slo COMMAND --help` shows a command's options; `slo --version` the version."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0 if args else 2
    if args[0] == "--version":
        print(f"slo {version('slo-probes')}")
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"slo: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module_name = COMMANDS[name][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # The reference stack lives in the checkout's development package, not in the wheel.
        if exc.name != DEVELOPMENT_PACKAGE:
            raise
        print(
            f"slo {name}: needs the development package {DEVELOPMENT_PACKAGE}, which only a "
            "checkout of the project has (run `make setup` there)",
            file=sys.stderr,
        )
        return USAGE_ERROR
    exit_code: int = module.main(rest)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
