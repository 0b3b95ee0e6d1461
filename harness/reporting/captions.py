"""Each figure's caption beside it: ``figures/<stem>.caption.md`` and a LaTeX figure,
``figures/<stem>.tex``, that includes the PDF at its print width with the caption and a
label (``\\input{figures/<stem>}`` from the report's directory).

A figure as wide as the page goes in a ``figure*`` (both columns of a two-column paper)
at ``\\textwidth``, one as wide as a column in a ``figure`` at ``\\columnwidth``.
"""

from __future__ import annotations

from pathlib import Path

from harness.reporting.figure_style import COLUMN_IN, PX_PER_IN
from harness.reporting.figures import Figure

LATEX_SYMBOLS = {
    "λ": r"$\lambda$",
    "×": r"$\times$",
    "·": r"$\cdot$",
    "∅": r"$\emptyset$",
    "−": r"$-$",
    "²": r"$^2$",
    "|": r"$|$",
    "–": "--",
    "—": "---",
    "≥": r"$\geq$",
    "≤": r"$\leq$",
    "…": r"\ldots{}",
    "<": r"$<$",
    ">": r"$>$",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "\\": r"\textbackslash{}",
}


def latex_text(text: str) -> str:
    """``text`` as LaTeX that pdflatex sets without extra packages.

    Example:
        >>> print(latex_text("AUC | 95% [a_b] λ × 2 & f(∅)"))
        AUC $|$ 95\\% [a\\_b] $\\lambda$ $\\times$ 2 \\& f($\\emptyset$)
    """
    return "".join("\\" + c if c in "&%#_{}$" else LATEX_SYMBOLS.get(c, c) for c in text)


def latex_figure(figure: Figure, image: str) -> str:
    """A LaTeX figure of ``figure`` including ``image`` (a path from the report's
    directory), with its caption and the label ``fig:<stem>``.

    Example:
        >>> import plotly.graph_objects as go
        >>> fig = Figure("roc", "ROC curves.", go.Figure(layout={"width": 662}))
        >>> print(latex_figure(fig, "figures/roc.pdf"))
        \\begin{figure*}[t]
          \\centering
          \\includegraphics[width=\\textwidth]{figures/roc.pdf}
          \\caption{ROC curves.}
          \\label{fig:roc}
        \\end{figure*}
        <BLANKLINE>
    """
    wide = (figure.figure.layout.width or 0) > COLUMN_IN * PX_PER_IN + 1
    environment = "figure*" if wide else "figure"
    width = r"\textwidth" if wide else r"\columnwidth"
    return (
        f"\\begin{{{environment}}}[t]\n"
        "  \\centering\n"
        f"  \\includegraphics[width={width}]{{{image}}}\n"
        f"  \\caption{{{latex_text(figure.caption)}}}\n"
        f"  \\label{{fig:{figure.stem}}}\n"
        f"\\end{{{environment}}}\n"
    )


def write_captions(figures: list[Figure], out_dir: Path, image_format: str = "pdf") -> dict:
    """``<stem>.caption.md`` and ``<stem>.tex`` of each figure under ``out_dir``.

    Returns:
        Stem -> {``caption``: file name, ``tex``: file name}.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for figure in figures:
        caption = out_dir / f"{figure.stem}.caption.md"
        caption.write_text(figure.caption + "\n")
        tex = out_dir / f"{figure.stem}.tex"
        tex.write_text(latex_figure(figure, f"figures/{figure.stem}.{image_format}"))
        written[figure.stem] = {"caption": caption.name, "tex": tex.name}
    return written
