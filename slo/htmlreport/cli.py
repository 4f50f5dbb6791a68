"""`slo report`: one self-contained HTML page of what a run left in ``reports/``.

    slo report                                # reports/ -> reports/index.html
    slo report -o site/run.html --prometheus "$PROMETHEUS_URL"

The gate's verdict and its reasons, the probes with their evidence, the LLM probes' first
token and tokens/s, the load gate's percentile curves and, with ``--prometheus``, each SLO's
error budget over its window. The page fetches nothing and runs no script: it opens from a
CI artifact, an e-mail or a laptop offline. Exit 0 when the page is written (the verdict is
`slo gate`'s exit code, not this one's), 4 for usage errors and nothing to report.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from slo.cliargs import ArgumentParser, fail
from slo.config import ConfigError
from slo.conventions import CONFIG_FILE, LOAD_REPORTS
from slo.htmlreport.inputs import GATE_FILE, PROBES_FILE, read_inputs
from slo.htmlreport.load import load_section
from slo.htmlreport.markup import page, text
from slo.htmlreport.probes import llm_section, metadata_section, probes_section, verdict_banner
from slo.objectives.inputs import add_config_options, load_inputs, parse
from slo.options import add_cli_options

__all__ = ["main"]

REPORTS = LOAD_REPORTS.parent
DEFAULT_OUTPUT = REPORTS / "index.html"


def _parser() -> ArgumentParser:
    parser = ArgumentParser(prog="slo report", description=__doc__.split("\n\n")[0])
    add_config_options(parser)
    add_cli_options(parser, ["prometheus"])
    parser.add_argument(
        "--reports",
        default=str(REPORTS),
        metavar="DIR",
        help=f"the run's reports directory (default: {REPORTS})",
    )
    parser.add_argument(
        "-o",
        "--output",
        default=str(DEFAULT_OUTPUT),
        metavar="PATH",
        help=f"the page (default: {DEFAULT_OUTPUT})",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(_parser(), argv)
    reports = Path(args.reports)
    slos_html = ""
    try:
        # The config registers every secret it carries, so none reaches the page. Only the
        # default one may be absent: a run directory copied elsewhere may come without it.
        if args.prometheus or args.config != CONFIG_FILE or Path(args.config).exists():
            inputs = load_inputs(args)
            title = f"SLO report: {inputs.config.env_name}"
            if args.prometheus:
                from slo.htmlreport.slos import slo_section

                slos_html = slo_section(args.prometheus, inputs.slos, inputs.config.env_name)
        else:
            title = "SLO report"
    except ConfigError as exc:
        return fail(f"slo report: {exc}")
    found = read_inputs(reports)
    if found.probes is None and found.gate is None and found.load is None and not slos_html:
        return fail(
            f"slo report: nothing to report in {reports}: no {PROBES_FILE} (a probe run), {GATE_FILE} "
            f"(`slo gate`) or {LOAD_REPORTS.name}/summary.json (`slo load`)"
        )
    sources = {
        what: str(path)
        for what, path, document in (
            ("probe run", reports / PROBES_FILE, found.probes),
            ("gate verdict", reports / GATE_FILE, found.gate),
            ("load summary", reports / LOAD_REPORTS.name / "summary.json", found.load),
        )
        if document is not None
    }
    sections = [
        verdict_banner(found.gate, found.probes),
        "".join(f'<p class="banner unknown">{text(problem)}</p>' for problem in found.problems),
        probes_section(found.probes) if found.probes is not None else "",
        llm_section(found.probes) if found.probes is not None else "",
        load_section(found.load, found.load_results) if found.load is not None else "",
        slos_html,
        metadata_section(found.probes, sources),
    ]
    output = Path(args.output)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(page(title, sections), encoding="utf-8")
    except OSError as exc:
        return fail(f"slo report: cannot write {output}: {exc.strerror or exc}")
    print(f"report: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
