"""A report of studies and comparisons, built from their records alone (never W&B).

``harness report STUDY...`` writes into one directory::

    index.html            links to everything, tables inline
    report.md             the tables and the PNGs inline (relative paths)
    tables/auc.csv        every AUC: method, task, ablation, ground truth, convention,
                          seeds, mean, 95% bootstrap interval, best of its group
    tables/auc-<gt>-<convention>.{md,tex}   one row per method, one column per task
    tables/best-params.{md,csv,tex}         the best trial of each study
    tables/trials-<name>.{md,csv,tex}       every trial / run
    tables/suite-*.{md,csv,tex}             comparisons over 2+ tasks: the suite mean per
                                            method, AUC per task, tasks that separate methods
    figures/<stem>.{html,json,pdf,svg,png}  the ROC and faithfulness grids (up to 4 tasks),
                                            AUC per task (suites), each study's figures
    figures/<stem>.caption.md, <stem>.tex   each figure's caption, and a LaTeX figure of it

The ``figure`` section of the configs (:class:`~harness.configs.figure.FigureConfig`) sets
the figures' width (a column or the page of a two-column paper) and static formats.

A study contributes its best trial's held-out runs as the method ``<algorithm> tuned
(<study>), held-out``; a comparison contributes each method's seeds. Where each part is
made: :mod:`~harness.reporting.sources` (what is read), :mod:`~harness.reporting.runs`
(each method's runs), :mod:`~harness.reporting.auc_tables`,
:mod:`~harness.reporting.record_tables`, :mod:`~harness.reporting.pareto` and
:mod:`~harness.reporting.suite` (the tables), :mod:`~harness.reporting.report_figures`
(the figures and their captions, :mod:`~harness.reporting.captions` writes them) and
:mod:`~harness.reporting.pages` (the two pages).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.configs.figure import FigureConfig
from harness.reporting.auc_tables import auc_frame, auc_tables
from harness.reporting.captions import write_captions
from harness.reporting.figures import export_figures
from harness.reporting.pages import report_html, report_markdown
from harness.reporting.pareto import pareto_table
from harness.reporting.record_tables import best_params_table, trials_table
from harness.reporting.report_figures import comparison_figures, study_figures, suite_figures
from harness.reporting.runs import method_runs
from harness.reporting.sources import Source, figure_config, load_source
from harness.reporting.static_export import HOW_TO_GET_THEM, static_timeout
from harness.reporting.suite import spans_several_tasks, suite_tables, task_frame
from harness.reporting.tables import markdown_table, write_table
from harness.util.staged_output import staged_output
from harness.util.user_files import refuse_symlinked_outputs

REPORT_PAGES = ("report.md", "index.html")
REPORT_FOLDERS = ("tables", "figures")
REPORT_ENTRIES = REPORT_PAGES + REPORT_FOLDERS
"""What a report writes in its directory, each replaced whole (see :func:`build_report`)."""

__all__ = [
    "ReportResult",
    "Source",
    "build_report",
    "load_source",
    "markdown_table",
    "method_runs",
]

WIDE_TABLE = 8  # in a suite report, per-method AUC tables wider than this go to auc.csv only
FEW_TASKS = 4  # ROC and faithfulness grids up to this many tasks (a row each; suite figure beyond)


@dataclass
class ReportResult:
    """What :func:`build_report` wrote.

    Attributes:
        out: The report's directory.
        files: Every file written, relative to ``out``.
        warning: One line on what is missing (static figures without a browser), or None.
        seconds: Wall time of the whole report.
        seconds_per_figure: Kaleido time per figure (three formats), if it ran.
    """

    out: Path
    files: list[str] = field(default_factory=list)
    warning: str | None = None
    seconds: float = 0.0
    seconds_per_figure: float | None = None


def build_report(
    sources: list[Source], out: Path, static: bool = True, figure: FigureConfig | None = None
) -> ReportResult:
    """Write the tables, figures, ``index.html`` and ``report.md`` of some sources.

    The report is built in a hidden folder inside ``out`` and swapped in by renames, pages
    last (:mod:`harness.util.staged_output`): killed at any point, ``out`` holds the old
    report intact, the new one complete, or no page at all. ``tables/`` and ``figures/``
    are replaced whole; other entries of ``out`` are left alone.

    Args:
        sources: What to report (see :func:`load_source`).
        out: The report's directory (made if missing).
        static: Also write the static figures (needs a browser; without one the
            result's ``warning`` says so).
        figure: The figures' width and formats; None: the ``figure`` section of the
            sources' configs, else the defaults (see :func:`figure_config`).

    Example:
        >>> import tempfile
        >>> record = {"trial": 0, "state": "COMPLETE", "algorithm": "eap", "task": "t",
        ...           "params": {"ablation": "zero"}, "seed": 0, "seconds": 1.0,
        ...           "auc": {"zero": {"score-trapezoid": 0.75}}}
        >>> out = Path(tempfile.mkdtemp())
        >>> result = build_report([Source("c", "compare", [record])], out, static=False)
        >>> result.files[:3]
        ['index.html', 'report.md', 'tables/auc-zero-score-trapezoid.md']
    """
    if static:
        static_timeout()  # a bad HARNESS_STATIC_TIMEOUT fails before any work
    figure = figure_config(sources) if figure is None else figure
    refuse_symlinked_outputs(out, REPORT_ENTRIES)
    start = time.perf_counter()
    with staged_output(out, REPORT_PAGES, REPORT_FOLDERS) as stage:
        result = _write_report(sources, stage, static, figure)
    result.out = out
    result.seconds = time.perf_counter() - start
    return result


def _write_report(
    sources: list[Source], out: Path, static: bool, figure: FigureConfig
) -> ReportResult:
    """The body of :func:`build_report`, writing into the (staged) folder ``out``."""
    result = ReportResult(out)
    runs = method_runs(sources)
    samples = min((s.bootstrap_samples for s in sources), default=10000)
    frame = auc_frame(runs, samples)
    suite = spans_several_tasks(runs)
    per_task = task_frame(runs, samples) if suite else None
    tables = suite_tables(runs, samples, tasks=per_task) if suite else []
    tables += [t for t in auc_tables(frame) if not suite or len(t.frame.columns) <= WIDE_TABLE]
    best = best_params_table(sources)
    tables += [best] if best is not None else []
    tables += [trials_table(source) for source in sources]
    tables += [t for s in sources if s.kind == "study" and (t := pareto_table(s)) is not None]
    files: list[Path] = []
    if len(frame):
        (out / "tables").mkdir(exist_ok=True)
        frame.to_csv(out / "tables" / "auc.csv", index=False)
        files.append(out / "tables" / "auc.csv")
    for table in tables:
        files += write_table(table, out)
    few_tasks = len({run.task for run in runs}) <= FEW_TASKS
    figures = comparison_figures(runs, figure) if few_tasks else []
    if suite:
        figures += suite_figures(per_task, runs, figure)
    for source in sources:
        if source.kind == "study":
            figures += study_figures(source, figure)
    exported = export_figures(
        {f.stem: f.figure for f in figures}, out / "figures", static, formats=figure.formats
    )
    image = "pdf" if "pdf" in figure.formats or "png" not in figure.formats else "png"
    for stem, names in write_captions(figures, out / "figures", image).items():
        exported.files[stem].update(names)
    result.seconds_per_figure = exported.seconds_per_figure
    if exported.static_error:
        result.warning = (
            f"no PDF/SVG/PNG figures, only HTML and JSON ({exported.static_error}); "
            f"{HOW_TO_GET_THEM}"
        )
    for stem in exported.files.values():
        files += [out / "figures" / name for name in stem.values()]
    if exported.files:
        files.append(out / "figures" / "plotly.min.js")
    sections = [(f, exported.files.get(f.stem, {})) for f in figures]
    (out / "report.md").write_text(
        report_markdown(sources, tables, sections, result.warning, figure)
    )
    (out / "index.html").write_text(report_html(sources, tables, sections, result.warning, figure))
    files += [out / "report.md", out / "index.html"]
    result.files = sorted({str(p.relative_to(out)) for p in files if p.exists()})
    return result
