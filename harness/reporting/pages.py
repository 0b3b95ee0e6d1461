"""A report's two pages, ``report.md`` and ``index.html``: what it is built from, the AUC
conventions, every table inline and every figure with its caption and files."""

from __future__ import annotations

import html

from harness.configs.figure import FigureConfig
from harness.reporting.conventions import CONVENTION_NOTES
from harness.reporting.figure_style import (
    COLUMN_IN,
    FONT_PT,
    PAGE_IN,
    PNG_SCALE,
    PX_PER_IN,
    SMALL_PT,
)
from harness.reporting.figures import Figure
from harness.reporting.sources import Source
from harness.reporting.tables import Table, markdown_table, table_styler

Section = tuple[Figure, dict[str, str]]
"""A figure and its files: format (``html``, ``json``, ``png``, ``caption``, ``tex``...) ->
file name under ``figures/``."""


def figure_settings(config: FigureConfig) -> str:
    """The figure settings a report was made with, as the config section that makes them.

    Example:
        >>> print(figure_settings(FigureConfig()))  # doctest: +NORMALIZE_WHITESPACE
        `figure: {width: auto, formats: [pdf, svg, png]}`: multi-panel figures 6.9 in wide,
        single-panel ones 3.3 in; fonts 7–8 pt at that size; PNGs at 288 dpi.
    """
    widths = {
        "auto": f"multi-panel figures {PAGE_IN} in wide, single-panel ones {COLUMN_IN} in",
        "column": f"every figure {COLUMN_IN} in wide",
        "page": f"every figure {PAGE_IN} in wide",
    }[config.width]
    return (
        f"`figure: {{width: {config.width}, formats: [{', '.join(config.formats)}]}}`: "
        f"{widths}; fonts {SMALL_PT}–{FONT_PT} pt at that size"
        + (f"; PNGs at {PX_PER_IN * PNG_SCALE} dpi." if "png" in config.formats else ".")
    )


def describe(sources: list[Source]) -> str:
    """What a report is built from: each source's kind, name and record states.

    Example:
        >>> describe([Source("s", "study", [{"state": "COMPLETE"}, {"state": "FAIL"}])])
        'study s (1 complete, 1 fail)'
    """
    parts = []
    for s in sources:
        states = [r["state"] for r in s.records]
        counts = ", ".join(f"{states.count(x)} {x.lower()}" for x in sorted(set(states)))
        parts.append(f"{'comparison' if s.kind == 'compare' else 'study'} {s.name} ({counts})")
    return "; ".join(parts)


def report_markdown(
    sources: list[Source],
    tables: list[Table],
    sections: list[Section],
    warning: str | None,
    figure: FigureConfig | None = None,
) -> str:
    """``report.md``: the tables inline, each figure's PNG inline where there is one, and
    links to every file (paths relative to the report's directory)."""
    lines = [
        "# Report",
        "",
        f"Built from the records of {describe(sources)}. AUC conventions: "
        + "; ".join(f"**{c}**: {n}" for c, n in CONVENTION_NOTES.items())
        + ". Interactive figures: open `index.html`.",
        "",
    ]
    if warning:
        lines += [f"> {warning}", ""]
    lines += ["## Tables", ""]
    for table in tables:
        lines += [
            f"### {table.stem}",
            "",
            table.caption,
            "",
            markdown_table(table.frame, table.bold),
            "",
            f"[Markdown](tables/{table.stem}.md) · [LaTeX](tables/{table.stem}.tex)"
            + (f" · [CSV](tables/{table.stem}.csv)" if table.data is not None else ""),
            "",
        ]
    lines += ["## Figures", ""]
    if sections:
        lines += [f"Figure settings: {figure_settings(figure or FigureConfig())}", ""]
    for figure, files in sections:
        links = " · ".join(f"[{fmt.upper()}](figures/{name})" for fmt, name in files.items())
        lines += [f"### {figure.stem}", ""]
        if "png" in files:
            lines += [f"![{figure.caption}](figures/{files['png']})", ""]
        lines += [f"{figure.caption} {links}", ""]
    return "\n".join(lines)


def report_html(
    sources: list[Source],
    tables: list[Table],
    sections: list[Section],
    warning: str | None,
    figure: FigureConfig | None = None,
) -> str:
    """``index.html``: the tables inline, each figure as its PNG linking to its interactive
    HTML (or as a link without a PNG), and links to every file."""
    escape = html.escape
    body = [
        "<h1>Report</h1>",
        f"<p>Built from the records of {escape(describe(sources))}. AUC conventions: "
        + "; ".join(f"<b>{escape(c)}</b>: {escape(n)}" for c, n in CONVENTION_NOTES.items())
        + ".</p>",
    ]
    if warning:
        body.append(f"<p class='warn'>{escape(warning)}</p>")
    body.append("<h2>Tables</h2>")
    for table in tables:
        links = [f"<a href='tables/{table.stem}.{x}'>{x}</a>" for x in ("md", "tex")]
        if table.data is not None:
            links.append(f"<a href='tables/{table.stem}.csv'>csv</a>")
        # cells and headers are text from records (task names, params, fail reasons)
        styler = table_styler(table).format(escape="html")
        styler = styler.format_index(escape="html", axis=0).format_index(escape="html", axis=1)
        if table.bold is None:
            styler = styler.hide(axis="index")
        body += [
            f"<h3 id='{escape(table.stem)}'>{escape(table.stem)}</h3>",
            f"<p>{escape(table.caption)} ({' · '.join(links)})</p>",
            styler.to_html(),
        ]
    body.append("<h2>Figures</h2>")
    if sections:
        settings = figure_settings(figure or FigureConfig()).replace("`", "")
        body.append(f"<p>Figure settings: {escape(settings)}</p>")
    for figure, files in sections:
        links = " · ".join(f"<a href='figures/{n}'>{fmt}</a>" for fmt, n in files.items())
        image = (
            f"<a href='figures/{files['html']}'><img src='figures/{files['png']}' "
            f"width='{figure.figure.layout.width or 340}' alt='{escape(figure.stem)}'></a>"
            if "png" in files
            else f"<a href='figures/{files['html']}'>{escape(figure.stem)} (interactive)</a>"
        )
        body += [
            f"<figure id='{escape(figure.stem)}'>{image}<figcaption>{escape(figure.caption)} "
            f"({links})</figcaption></figure>"
        ]
    style = (
        "body{font-family:Helvetica,Arial,sans-serif;max-width:60em;margin:2em auto;}"
        "table{border-collapse:collapse;font-size:90%;margin:.5em 0}"
        "td,th{border-bottom:1px solid #ccc;padding:2px 8px;text-align:right}"
        "figure{display:inline-block;margin:1em;vertical-align:top;max-width:45em}"
        ".warn{color:#D55E00}"
    )
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>Report</title>"
        f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
