"""What every `slo` command does with a usage mistake: one line on stderr naming it, and exit
status 4 (:data:`slo.conventions.USAGE_ERROR`, pytest's own) instead of argparse's usage
block and 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from slo.conventions import USAGE_ERROR

__all__ = ["ArgumentParser", "UsageError", "fail"]


class UsageError(Exception):
    """A mistake in what was asked that parsing alone cannot see (a missing file, two flags
    that do not go together); the command shows it with :func:`fail`."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad flag or value is one line and exit status 4."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"{self.prog}: {message}\n")


def fail(message: str, code: int = USAGE_ERROR) -> int:
    """Print `message` as one line on stderr and return `code` (a usage error unless told)."""
    print(message, file=sys.stderr)
    return code
