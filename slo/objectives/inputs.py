"""What every SLO command reads: the config file, its environment and OpenSLO files.

`slo rules`, `slo budget`, `slo dashboard` and `slo gate` share these options and the one
precedence of `slo.options`, and report every mistake as one line with exit code 4, like the
pytest plugin (`slo.cliargs`).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from slo.config import Config, ConfigError, load_config
from slo.config.objectives import SLO
from slo.objectives.openslo import load_openslo
from slo.options import add_cli_options

__all__ = ["Inputs", "add_config_options", "load_inputs"]


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """``--config``, ``--env`` (resolved like every entry point's, see `slo.options`) and
    ``--openslo``."""
    add_cli_options(parser, ["config", "env"])
    parser.add_argument(
        "--openslo",
        action="append",
        default=[],
        metavar="FILE",
        help="also read SLOs from an OpenSLO v1 file (repeatable)",
    )


@dataclass(frozen=True)
class Inputs:
    config: Config
    slos: tuple[SLO, ...]


def load_inputs(args: argparse.Namespace, *, secrets: bool = True) -> Inputs:
    """The config and every SLO (config first, then OpenSLO files); raises ConfigError.
    ``secrets=False`` for commands that send nothing to a target (an unset ``${VAR}`` is empty)."""
    config = load_config(args.config, args.env, secrets=secrets, flag="--config")
    slos = [*config.slos, *load_openslo(args.openslo)]
    seen: set[str] = set()
    for slo in slos:
        if slo.name in seen:
            raise ConfigError(f"SLO {slo.name!r} is defined twice (config and OpenSLO files)")
        seen.add(slo.name)
    return Inputs(config, tuple(slos))
