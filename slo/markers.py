"""Names in probe markers checked against the config, so a typo cannot silently disable a probe.

A ``target`` that no environment of the file defines, or an ``slo`` the file does not declare,
is a mistake (a target missing only from the selected environment is not: that probe skips).
So is an ``alert`` that no registered feature defines (:mod:`slo.objectives.rules.features`).
The pytest plugin stops the run on it and `slo validate` lists it, with the same words.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from slo.config import Config
from slo.objectives.rules.features import alert_names

__all__ = ["alert_problem", "name_problems", "unknown_name"]


def unknown_name(what: str, name: str, known: Iterable[str]) -> str | None:
    """``unknown target 'gatway' (did you mean 'gateway'? known: api, gateway)``, or None."""
    names = sorted(set(known))
    if name in names:
        return None
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown {what} {name!r} ({hint}known: {', '.join(names) or 'none'})"


def name_problems(config: Config, target: str | None, slo: str | None, kind: str | None) -> list[str]:
    """What is wrong with the names a probe marker gives; a resource probe's target is a host
    name, not a config target."""
    problems = []
    if target and kind != "resource":
        problem = unknown_name("target", target, config.known_targets)
        if problem:
            problems.append(f"{problem}: no environment of {config.source} defines it")
    if slo:
        problem = unknown_name("SLO", slo, (s.name for s in config.slos))
        if problem:
            problems.append(f"{problem}: {config.source} declares no such SLO")
    return problems


def alert_problem(alert: object) -> str | None:
    """What is wrong with a marker's ``alert=``: only a registered feature alert has rules, so
    any other name would never fire."""
    if alert is None:
        return None
    if not isinstance(alert, str):
        return f"alert={alert!r} is not a string"
    problem = unknown_name("alert", alert, alert_names())
    return f"{problem}: `slo rules` generates no such alert" if problem else None
