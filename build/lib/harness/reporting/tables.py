"""The report's table: its display text, bold cells and the numbers behind it."""

from __future__ import annotations

from dataclasses import dataclass
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
