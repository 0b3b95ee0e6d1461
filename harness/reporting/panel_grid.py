"""A grid of equal panels at print size: titles above the columns, labels right of the rows,
one legend for the whole grid above it (see :func:`~harness.reporting.figure_style.paper_layout`).

The panels' size follows from the figure's width, so the grid knows where each panel lies
in layout pixels; figures use that to place things inside a panel at a size in pixels
(the numbers in a ROC panel) whatever the panel's data range.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from harness.reporting.figure_style import FONT_PT, PX_PER_IN, fit_lines, font_px, paper_layout

LINE_PX = font_px(FONT_PT) * 1.25  # one line of an 8 pt title


@dataclass(frozen=True)
class PanelGrid:
    """Where the panels of a grid go.

    Attributes:
        rows, cols: The grid's shape.
        width_in: The figure's print width (inches).
        aspect: A panel's height over its width.
        title_lines: Lines of the column titles (0: none).
        left, right, bottom: Margins (px) for the y-axis labels, the row labels and the
            x-axis labels.
        gap: Space (px) between columns of panels.
        row_gap: Space (px) between rows of panels (``gap`` if None).
        max_panel_px: The largest panel height (px), whatever the width.
        panel_px: The panels' height (px), whatever the width and aspect.

    Example:
        >>> grid = PanelGrid(2, 4, 6.9)
        >>> round(grid.panel_w), round(grid.panel_h), round(grid.height)
        (140, 140, 357)
    """

    rows: int
    cols: int
    width_in: float
    aspect: float = 1.0
    title_lines: int = 2
    left: float = 44.0
    right: float = 16.0
    bottom: float = 30.0
    gap: float = 14.0
    row_gap: float | None = None
    max_panel_px: float = 400.0
    panel_px: float | None = None

    @property
    def top(self) -> float:
        return self.title_lines * LINE_PX + 6

    @property
    def panel_w(self) -> float:
        inner = self.width_in * PX_PER_IN - self.left - self.right
        return (inner - (self.cols - 1) * self.gap) / self.cols

    @property
    def panel_h(self) -> float:
        if self.panel_px is not None:
            return self.panel_px
        return min(self.panel_w * self.aspect, self.max_panel_px)

    @property
    def vgap(self) -> float:
        return self.gap if self.row_gap is None else self.row_gap

    @property
    def height(self) -> float:
        """The figure's height without its legend (px)."""
        return self.top + self.bottom + self.rows * self.panel_h + (self.rows - 1) * self.vgap

    def figure(
        self,
        column_titles: list[str] | None = None,
        row_titles: list[str] | None = None,
        shared_xaxes: bool | str = False,
        shared_yaxes: bool | str = False,
    ):
        """An empty plotly figure of the grid, its titles placed."""
        from plotly.subplots import make_subplots

        plot_w = self.cols * self.panel_w + (self.cols - 1) * self.gap
        plot_h = self.rows * self.panel_h + (self.rows - 1) * self.vgap
        fig = make_subplots(
            rows=self.rows,
            cols=self.cols,
            horizontal_spacing=self.gap / plot_w if self.cols > 1 else 0.0,
            vertical_spacing=self.vgap / plot_h if self.rows > 1 else 0.0,
            shared_xaxes=shared_xaxes,
            shared_yaxes=shared_yaxes,
        )
        for col, title in enumerate(column_titles or [], start=1):
            x0, x1 = fig.get_subplot(1, col).xaxis.domain
            fig.add_annotation(
                text=title,
                x=(x0 + x1) / 2,
                y=1.0,
                xref="paper",
                yref="paper",
                xanchor="center",
                yanchor="bottom",
                yshift=3,
                showarrow=False,
            )
        for row, title in enumerate(row_titles or [], start=1):
            y0, y1 = fig.get_subplot(row, self.cols).yaxis.domain
            fig.add_annotation(
                text=title,
                x=1.0,
                y=(y0 + y1) / 2,
                xref="paper",
                yref="paper",
                xanchor="left",
                yanchor="middle",
                xshift=3,
                textangle=90,
                showarrow=False,
            )
        return fig

    def columns_that_fit(self, panel_px: float) -> int:
        """How many panels at least ``panel_px`` wide fit side by side.

        Example:
            >>> PanelGrid(1, 1, 3.3).columns_that_fit(88)
            2
        """
        inner = self.width_in * PX_PER_IN - self.left - self.right
        return int((inner + self.gap) // (panel_px + self.gap))

    def panel_titles(self, fig, titles: list[str]) -> None:
        """A title above each panel, in reading order."""
        for i, title in enumerate(titles):
            axes = fig.get_subplot(i // self.cols + 1, i % self.cols + 1)
            fig.add_annotation(
                text=title,
                x=sum(axes.xaxis.domain) / 2,
                y=axes.yaxis.domain[1],
                xref="paper",
                yref="paper",
                xanchor="center",
                yanchor="bottom",
                yshift=3,
                showarrow=False,
            )

    def titled(self, titles: list[str]) -> tuple[PanelGrid, list[str]]:
        """This grid with room for ``titles`` above its columns, each broken into lines
        no wider than a panel (at spaces, and at the ``<br>`` it has), and the titles.

        Example:
            >>> title = "zero ablation<br>ground truth acdc-zero"
            >>> grid, titles = PanelGrid(1, 6, 6.9).titled([title])
            >>> grid.title_lines, titles
            (3, ['zero ablation<br>ground truth<br>acdc-zero'])
        """
        fitted = [fit_lines(title, self.panel_w) for title in titles]
        lines = max((title.count("<br>") + 1 for title in fitted), default=0)
        return replace(self, title_lines=lines), fitted

    def style(self, fig, legend: list[str] | None = None, legend_title: str | None = None):
        """The report's style and the grid's margins on ``fig`` (see ``paper_layout``)."""
        margin = {"l": self.left, "r": self.right, "t": self.top, "b": self.bottom}
        return paper_layout(fig, self.width_in, self.height, legend, legend_title, margin)
