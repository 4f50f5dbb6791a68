"""What `slo run` was asked to do, parsed and checked (:mod:`slo.warmrun.cli`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Plan"]


@dataclass(frozen=True)
class Plan:
    """What `slo run` was asked to do."""

    every: float
    jitter: float
    #: Runs to make before exiting; None runs until stopped.
    runs: int | None
    run_timeout: float
    healthz: tuple[str, int] | None
    pytest_args: Sequence[str]
    #: The arguments of `slo run` itself, to re-exec with.
    argv: Sequence[str]
