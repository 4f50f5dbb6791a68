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
from collections.abc import Callable, Sequence
from pathlib import Path

from slo import redact
from slo.cliargs import ArgumentParser, fail
from slo.config import ConfigError
from slo.conventions import CONFIG_FILE, LOAD_REPORTS
from slo.html.markup import page, text
from slo.htmlreport.inputs import GATE_FILE, PROBES_FILE, Inputs, read_inputs
from slo.htmlreport.probes import llm_section, metadata_section, probes_section, verdict_banner
from slo.loadgate.page import PAGE_NAME as PAGE
from slo.loadgate.page import load_section
from slo.objectives.inputs import add_config_options, load_inputs
from slo.options import add_cli_options, parse_cli

__all__ = ["main", "report_sections"]

REPORTS = LOAD_REPORTS.parent


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
        default=None,
        metavar="PATH",
        help=f"the page (default: {PAGE} in the reports directory, {REPORTS / PAGE})",
    )
    return parser


def _shown(path: Path, build: Callable[[], str]) -> str:
    """A section, or one line naming the file when its content has a shape this version cannot
    lay out (hand-edited, truncated, from another tool): the page is still written."""
    try:
        return build()
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
        said = (
            f"{path}: not in the shape this version reads ({type(exc).__name__}: {redact.excerpt(str(exc))})"
        )
        return f'<p class="banner unknown">{text(said)}</p>'


def report_sections(found: Inputs, reports: Path) -> list[str]:
    """The page's sections from what was found in `reports`, worst news first."""
    probes_file, gate_file = reports / PROBES_FILE, reports / GATE_FILE
    load_file = reports / LOAD_REPORTS.name / "summary.json"
    sources = {
        what: str(path)
        for what, path, document in (
            ("probe run", probes_file, found.probes),
            ("gate verdict", gate_file, found.gate),
            ("load summary", load_file, found.load),
        )
        if document is not None
    }
    probes, gate, load = found.probes, found.gate, found.load
    return [
        _shown(gate_file, lambda: verdict_banner(gate, probes)),
        "".join(f'<p class="banner unknown">{text(problem)}</p>' for problem in found.problems),
        _shown(probes_file, lambda: probes_section(probes)) if probes is not None else "",
        _shown(probes_file, lambda: llm_section(probes)) if probes is not None else "",
        _shown(load_file, lambda: load_section(load, found.load_results)) if load is not None else "",
        _shown(probes_file, lambda: metadata_section(probes, sources)),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_cli(_parser(), argv)
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

                slos_html = slo_section(args.prometheus, inputs.slos, inputs.config.env_name, inputs.config)
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
    sections = report_sections(found, reports)
    sections.insert(-1, slos_html)  # before the run's metadata
    output = Path(args.output) if args.output else reports / PAGE
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(page(title, sections), encoding="utf-8")
    except OSError as exc:
        return fail(f"slo report: cannot write {output}: {exc.strerror or exc}")
    print(f"report: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
