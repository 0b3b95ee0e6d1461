"""The report's table: its display text, bold cells and the numbers behind it, and its
three text forms (Markdown, LaTeX, and the HTML styling ``index.html`` uses)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Table:
    """A table in its three text forms (Markdown, LaTeX, HTML), and the numbers behind it.

    Attributes:
        stem: The file name stem (``tables/<stem>.md``...).
        caption: What the table shows, conventions named.
        frame: pandas DataFrame of display strings.
        bold: pandas DataFrame of bools, same shape (the best cells), or None.
        data: pandas DataFrame written as CSV (numbers), or None.

    Example:
        >>> Table("auc", "AUC", None).stem
        'auc'
    """

    stem: str
    caption: str
    frame: Any
    bold: Any = None
    data: Any = None


def format_cell(value: Any) -> str:
    """A number or text as a table shows it: 4 significant digits, ``–`` for none.

    Example:
        >>> format_cell(0.123456), format_cell(None), format_cell(float("nan")), format_cell(3)
        ('0.1235', '–', '–', '3')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def slug(text: str) -> str:
    """``text`` as a file name stem: runs of other characters than letters, digits, ``_.-``
    become one ``-``.

    Example:
        >>> slug("roc-tracr-reverse-acdc zero/resample")
        'roc-tracr-reverse-acdc-zero-resample'
    """
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


def markdown_table(frame, bold=None) -> str:
    """A DataFrame of strings as a Markdown table (``**bold**`` where ``bold`` is True).

    Example:
        >>> import pandas as pd
        >>> print(markdown_table(pd.DataFrame({"a": ["1"], "b": ["x|y"]})))
        | a | b |
        |---|---|
        | 1 | x\\|y |
    """
    import pandas as pd

    def text(value: Any) -> str:
        return str(value).replace("|", "\\|")

    def header(column: Any) -> str:
        return " / ".join(map(str, column)) if isinstance(column, tuple) else str(column)

    named = frame.index.name is not None or isinstance(frame.index, pd.MultiIndex)
    heads = ([frame.index.name or ""] if named else []) + [header(c) for c in frame.columns]
    lines = ["| " + " | ".join(text(h) for h in heads) + " |", "|" + "---|" * len(heads)]
    for i, (label, row) in enumerate(frame.iterrows()):
        cells = []
        for j, value in enumerate(row):
            cell = text(value)
            if bold is not None and bool(bold.iat[i, j]):
                cell = f"**{cell}**"
            cells.append(cell)
        lines.append("| " + " | ".join(([text(label)] if named else []) + cells) + " |")
    return "\n".join(lines)


def table_styler(table: Table):
    """A pandas Styler of the table's display text, its bold cells in bold."""
    styler = table.frame.style
    if table.bold is not None:
        bold = table.bold

        styler = styler.apply(
            lambda _: bold.map(lambda b: "font-weight: bold" if b else ""), axis=None
        )
    return styler


def latex_table(table: Table) -> str:
    """The table as LaTeX (booktabs rules, caption naming the AUC convention)."""
    styler = table_styler(table).format(escape="latex").format_index(escape="latex", axis=0)
    styler = styler.format_index(escape="latex", axis=1)
    if table.bold is None:
        styler = styler.hide(axis="index")
    n = len(table.frame.columns) + (0 if table.bold is None else table.frame.index.nlevels)
    return styler.to_latex(
        caption=_latex_escape(table.caption),
        label=f"tab:{table.stem}",
        hrules=True,
        convert_css=True,
        environment="table",
        position_float="centering",
        multicol_align="c",
        column_format="l" + "r" * (n - 1),
    )


def _latex_escape(text: str) -> str:
    text = "".join("\\" + c if c in "&%#_{}$" else c for c in text)
    return text.replace("|", r"$|$").replace("Σ", r"$\Sigma$")


def write_table(table: Table, out: Path) -> list[Path]:
    """Markdown, CSV and LaTeX of one table under ``out/tables``.

    Example:
        >>> import pandas as pd, tempfile
        >>> out = Path(tempfile.mkdtemp())
        >>> [p.name for p in write_table(Table("t", "A table.", pd.DataFrame({"a": ["1"]})), out)]
        ['t.md', 't.tex']
    """
    directory = out / "tables"
    directory.mkdir(parents=True, exist_ok=True)
    md = directory / f"{table.stem}.md"
    md.write_text(f"{table.caption}\n\n{markdown_table(table.frame, table.bold)}\n")
    tex = directory / f"{table.stem}.tex"
    tex.write_text(latex_table(table))
    written = [md, tex]
    if table.data is not None:
        csv = directory / f"{table.stem}.csv"
        table.data.to_csv(csv, index=False)
        written.append(csv)
    return written
