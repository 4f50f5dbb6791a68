"""`slo rules`: write the Prometheus rule file, and optionally its promtool tests.

    slo rules -o deploy/rules/slo-rules.yml --tests deploy/rules/tests --check
    slo rules --explain

Exit 0 when written (and, with ``--check``, accepted and passing), 1 when promtool rejects
or a scenario fails, 4 for usage and config errors.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from slo.binaries import BinaryNotFoundError
from slo.cliargs import ArgumentParser, fail
from slo.config import ConfigError
from slo.config.objectives import SLO, DegradedSLI, FirstTokenSLI, ProbeLatencySLI, RunSLI
from slo.objectives.inputs import Inputs, add_config_options, load_inputs
from slo.objectives.rules.generate import number, render, rule_file
from slo.objectives.rules.promtool import check_rules, run_tests
from slo.objectives.rules.promtool_tests import scenario_files
from slo.objectives.rules.quorum import uses_quorum
from slo.objectives.rules.simulate import minutes_to_page
from slo.objectives.rules.windows import alert_windows
from slo.options import parse_cli

__all__ = ["explain", "main"]


def _parser() -> ArgumentParser:
    parser = ArgumentParser(prog="slo rules", description=__doc__.split("\n\n")[0])
    add_config_options(parser)
    parser.add_argument("-o", "--output", metavar="FILE", help="rule file to write (default: stdout)")
    parser.add_argument("--tests", metavar="DIR", help="also write promtool test files to DIR")
    parser.add_argument(
        "--check",
        action="store_true",
        help="run promtool check rules on the output, and promtool test rules on --tests",
    )
    parser.add_argument(
        "--explain", action="store_true", help="print each SLO's alert policy instead of rules"
    )
    return parser


def _nominal_rate(slo: SLO) -> tuple[float, str]:
    # One probe run a minute is the design's timer; services are assumed busy.
    if isinstance(slo.sli, RunSLI):
        return 1.0, "1 run of the target/min"
    if isinstance(slo.sli, FirstTokenSLI):
        return 1.0, "1 stream/min"
    if isinstance(slo.sli, ProbeLatencySLI):
        return 60.0, "60 probe requests/min"
    return 1000.0, "1000 requests/min"


def explain(slos: Sequence[SLO]) -> str:
    """One block per SLO: its alert windows and how fast a total outage pages."""
    lines = []
    for slo in slos:
        rate, described = _nominal_rate(slo)
        minutes = minutes_to_page(slo, rate)
        pages = f"{minutes} min" if minutes is not None else "never (paging off)"
        # A "fast enough" SLO's worst case is every run working slowly, not an outage.
        worst = "every run degraded" if isinstance(slo.sli, DegradedSLI) else "total outage"
        lines.append(
            f"{slo.name}: {number(slo.objective * 100)} % over {slo.window_name}, "
            f"min {slo.alerting.min_bad_events} bad events; {worst} pages after {pages} "
            f"at {described}"
        )
        if uses_quorum(slo):
            lines.append(
                f"  quorum {slo.locations_quorum}: burns only when that many locations (or every "
                "reporting one, if fewer) are over the threshold; a location alone: SLOLocationFailing"
            )
        for window in alert_windows(slo):
            threshold = window.factor * slo.error_budget
            lines.append(
                f"  {window.severity:<6} {window.long_name:>4}/{window.short_name:<4} "
                f"burn > {number(window.factor):<4} (error ratio > {number(threshold)})"
            )
    return "\n".join(lines)


def _write(inputs: Inputs, output: str | None, tests: str | None, check: bool) -> int:
    config = inputs.config
    spend_limit = config.probes.gateway.daily_spend_limit
    text = render(
        rule_file(inputs.slos, config.budgets, config.pushgateway.job, daily_spend_limit=spend_limit)
    )
    if output is None:
        sys.stdout.write(text)
    else:
        path = Path(output)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    test_paths = []
    if tests is not None:
        directory = Path(tests)
        directory.mkdir(parents=True, exist_ok=True)
        for name, content in scenario_files(inputs.slos, config.budgets, config.pushgateway.job).items():
            (directory / name).write_text(content, encoding="utf-8")
            if name.endswith(".test.yml"):
                test_paths.append(directory / name)
    if not check:
        return 0
    if output is None:
        return fail("slo rules: --check needs -o FILE")
    checked = check_rules(Path(output))
    print(checked.output, file=sys.stderr)
    if not checked.ok:
        return 1
    if test_paths:
        tested = run_tests(*test_paths)
        print(tested.output, file=sys.stderr)
        if not tested.ok:
            return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_cli(_parser(), argv)
    try:
        inputs = load_inputs(args, secrets=False)
        if args.explain:
            print(explain(inputs.slos))
            return 0
        return _write(inputs, args.output, args.tests, args.check)
    except ConfigError as exc:
        return fail(str(exc))
    except BinaryNotFoundError as exc:
        return fail(f"slo rules: {exc}")
    except OSError as exc:
        return fail(f"slo rules: {exc.filename}: {exc.strerror}")


if __name__ == "__main__":
    sys.exit(main())
