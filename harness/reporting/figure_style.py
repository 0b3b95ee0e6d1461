"""One look for every figure of every report, at the size it is printed.

Sizes are set in inches for a two-column paper: a column is :data:`COLUMN_IN` wide, the
page :data:`PAGE_IN`. A figure's layout is in CSS pixels at :data:`PX_PER_IN` per inch,
which is the scale at which kaleido's browser prints a PDF, so a PDF comes out at its
print size and a ``\\includegraphics[width=\\columnwidth]`` keeps the fonts at the sizes
set here: 8 pt for axis titles, legends and panel titles, 7 pt for tick labels and
numbers inside panels (:data:`FONT_PT`, :data:`SMALL_PT`). PNGs are written at
:data:`PNG_SCALE` times the layout, 288 dpi.

Each method has one colour and one marker in every figure of every report
(:func:`method_style`), from the Okabe–Ito palette (Okabe & Ito 2008, "Color Universal
Design"), which readers with any common colour-vision deficiency tell apart; markers tell
methods apart in greyscale too.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from harness.configs.figure import FigureConfig
from harness.reporting.figure_checks import text_width

PX_PER_IN = 96
COLUMN_IN = 3.3
PAGE_IN = 6.9
PNG_SCALE = 3
FONT_PT = 8  # axis titles, legend, panel titles
SMALL_PT = 7  # tick labels, numbers inside panels
FONT_FAMILY = "Helvetica, Arial, sans-serif"
LEGEND_ROW_PX = 19  # one row of a horizontal legend at FONT_PT
LEGEND_ENTRY_PX = 48  # what plotly puts around an entry's text: symbol 40, gap 5, and spare
LEGEND_SPARE_PX = 16  # of a row's width, should an axis margin grow

BLUE, ORANGE, GREEN, VERMILLION = "#0072B2", "#E69F00", "#009E73", "#D55E00"
PURPLE, SKY_BLUE, YELLOW, BLACK = "#CC79A7", "#56B4E9", "#F0E442", "#000000"
OKABE_ITO = (BLUE, ORANGE, GREEN, VERMILLION, PURPLE, SKY_BLUE, YELLOW, BLACK)


@dataclass(frozen=True)
class MethodStyle:
    """How a method is drawn.

    Attributes:
        colour: Its line and marker colour.
        symbol: Its plotly marker symbol.
        dash: Its line dash (variants of one method differ here).
    """

    colour: str
    symbol: str
    dash: str = "solid"


METHOD_STYLES = {
    "sp": MethodStyle(BLUE, "circle"),
    "sp-default": MethodStyle(BLUE, "circle"),
    "sp-transfer": MethodStyle(SKY_BLUE, "hexagon"),
    "sp-oracle": MethodStyle(SKY_BLUE, "star"),
    "acdc": MethodStyle(ORANGE, "square"),
    "eap": MethodStyle(GREEN, "diamond"),
    "eap-ig": MethodStyle(VERMILLION, "triangle-up"),
    "edge-pruning": MethodStyle(PURPLE, "triangle-down"),
    "random": MethodStyle(BLACK, "x"),
    "oracle": MethodStyle(YELLOW, "star"),
}
"""Each known method's style, by its name (a label's first word)."""
OTHER_COLOURS = (BLUE, ORANGE, GREEN, VERMILLION, PURPLE, SKY_BLUE)
OTHER_SYMBOLS = ("pentagon", "cross", "star-square", "hourglass", "bowtie", "circle-x")
PLAIN_MODES = ("tree",)  # SP's usual mask semantics: drawn plain


def method_style(label: str) -> MethodStyle:
    """The style of a method label (``sp (tree)``, ``acdc``, ``sp (tree) tuned (study),
    held-out``...), the same wherever the label appears.

    The colour and marker come from the method's name; a study's tuned row keeps them
    with an open marker and a dashed line, and SP's other mask semantics draw dotted. A
    name not in :data:`METHOD_STYLES` gets a colour and marker from a hash of the name.

    Example:
        >>> method_style("sp (tree)") == method_style("sp") == METHOD_STYLES["sp"]
        True
        >>> method_style("sp (tree) tuned (sp-tracr-reverse), held-out")
        MethodStyle(colour='#0072B2', symbol='circle-open', dash='dash')
        >>> method_style("random").symbol, method_style("eap").colour
        ('x', '#009E73')
    """
    method, tuned, _ = label.partition(" tuned (")
    name, _, mode = method.partition(" (")
    mode = mode.rstrip(")")
    style = METHOD_STYLES.get(name)
    if style is None:
        digest = zlib.crc32(name.encode())
        colour = OTHER_COLOURS[digest % len(OTHER_COLOURS)]
        style = MethodStyle(colour, OTHER_SYMBOLS[(digest // 7) % len(OTHER_SYMBOLS)])
    dotted = bool(mode) and mode not in PLAIN_MODES
    if tuned:
        dash = "dashdot" if dotted else "dash"
        return MethodStyle(style.colour, f"{style.symbol}-open", dash)
    return MethodStyle(style.colour, style.symbol, "dot" if dotted else style.dash)


def font_px(points: float) -> float:
    """The layout size (px) of a font of ``points`` pt at print size.

    Example:
        >>> round(font_px(FONT_PT), 2), round(font_px(SMALL_PT), 2)
        (10.67, 9.33)
    """
    return points * PX_PER_IN / 72


def figure_width(config: FigureConfig, multi_panel: bool) -> float:
    """The print width in inches of a figure under ``config``.

    Example:
        >>> figure_width(FigureConfig(), True), figure_width(FigureConfig(), False)
        (6.9, 3.3)
        >>> figure_width(FigureConfig(width="column"), True)
        3.3
    """
    if config.width == "column":
        return COLUMN_IN
    if config.width == "page":
        return PAGE_IN
    return PAGE_IN if multi_panel else COLUMN_IN


def legend_rows(labels: list[str], width_px: float) -> list[list[str]]:
    """``labels`` packed into rows of a horizontal legend ``width_px`` wide, in order,
    each entry as wide as its own text (one plotly legend per row: plotly's own wrapping
    makes every entry as wide as the widest).

    Example:
        >>> legend_rows(["sp (tree)", "acdc", "eap", "random"], 662)
        [['sp (tree)', 'acdc', 'eap', 'random']]
        >>> legend_rows(["sp (tree) tuned (sp-tracr-reverse), held-out", "acdc", "eap"], 317)
        [['sp (tree) tuned (sp-tracr-reverse), held-out'], ['acdc', 'eap']]
    """
    rows: list[list[str]] = []
    used = 0.0
    for label in labels:
        width = text_width(label, font_px(FONT_PT)) + LEGEND_ENTRY_PX
        if rows and used + width <= width_px:
            rows[-1].append(label)
            used += width
        else:
            rows.append([label])
            used = width
    return rows


def fit_lines(text: str, width_px: float, points: float = FONT_PT) -> str:
    """``text`` with line breaks (``<br>``) at spaces so that no line is wider than
    ``width_px`` at ``points`` pt, where a word allows; breaks it has are kept.

    Example:
        >>> fit_lines("zero ablation<br>ground truth acdc-zero", 80)
        'zero ablation<br>ground truth<br>acdc-zero'
    """
    size = font_px(points)
    lines: list[str] = []
    for part in text.split("<br>"):
        line = ""
        for word in part.split(" "):
            wider = f"{line} {word}" if line else word
            if line and text_width(wider, size) > width_px:
                lines.append(line)
                line = word
            else:
                line = wider
        lines.append(line)
    return "<br>".join(lines)


def _legends(fig, rows: list[list[str]], title: str | None, height: float) -> None:
    """One horizontal plotly legend per row of entries across the figure's top, each
    trace named in a row shown in the legend of its row, every other trace in none."""
    key_of = {
        label: "legend" if i == 0 else f"legend{i + 1}"
        for i, row in enumerate(rows)
        for label in row
    }
    title_rows = title.count("<br>") + 1 if title and rows else 0
    for i in range(len(rows)):
        offset = 2 + (i + (title_rows if i else 0)) * LEGEND_ROW_PX
        fig.update_layout(
            {
                ("legend" if i == 0 else f"legend{i + 1}"): {
                    "orientation": "h",
                    "xref": "container",
                    "yref": "container",
                    "x": 0.0,
                    "xanchor": "left",
                    "y": 1 - offset / height,
                    "yanchor": "top",
                    "font": {"size": font_px(FONT_PT)},
                    "title": {
                        "text": title if title_rows and i == 0 else "",
                        "side": "top",
                        "font": {"size": font_px(FONT_PT)},
                    },
                    "tracegroupgap": 0,
                    "bgcolor": "rgba(0,0,0,0)",
                }
            }
        )
    for trace in fig.data:
        if trace.name in key_of and trace.showlegend is not False:
            trace.legend = key_of[trace.name]
            trace.showlegend = True
        else:
            trace.showlegend = False


def paper_layout(
    fig,
    width_in: float,
    height_px: float,
    legend: list[str] | None = None,
    legend_title: str | None = None,
    margin: dict[str, float] | None = None,
):
    """The report's style on ``fig``, called once its traces are in: its size, fonts,
    white background, axes, and a horizontal legend of ``legend`` (the names of the
    traces to list, each once) across the top, outside the panels. The legend's rows are
    added to the top margin and to the height, so the panels keep their size. Axis
    margins still grow to fit their labels (plotly's automargin) should ``margin`` be
    too small. Annotations without a font size get the report's.

    Args:
        fig: A plotly figure.
        width_in: Its print width (inches).
        height_px: Its height without the legend (layout px).
        legend: The legend's entries; none hides the legend.
        legend_title: A line above the entries.
        margin: Margins (px) to change: ``l``, ``r``, ``t``, ``b``.

    Returns:
        ``fig``, for chaining.
    """
    width = round(width_in * PX_PER_IN)
    margins = {"l": 40, "r": 8, "t": 8, "b": 32, **(margin or {})}
    plot_px = width - margins["l"] - margins["r"] - LEGEND_SPARE_PX
    rows = legend_rows(legend, plot_px) if legend else []
    legend_title = fit_lines(legend_title, plot_px) if legend_title and rows else None
    title_rows = legend_title.count("<br>") + 1 if legend_title else 0
    legend_px = (len(rows) + title_rows) * LEGEND_ROW_PX + (12 if rows else 0)
    height = round(height_px + legend_px)
    _legends(fig, rows, legend_title, height)
    margins["t"] += legend_px
    fig.update_layout(
        template="simple_white",
        width=width,
        height=height,
        font={"family": FONT_FAMILY, "size": font_px(FONT_PT), "color": BLACK},
        margin={**margins, "pad": 0, "autoexpand": True},
        showlegend=bool(rows),
        hoverlabel={"font": {"size": font_px(FONT_PT)}},
    )
    for annotation in fig.layout.annotations:
        if annotation.font.size is None:
            annotation.font.size = font_px(FONT_PT)
    for axis in (*fig.select_xaxes(), *fig.select_yaxes()):
        _axis_style(axis)
    return fig


AXIS_STYLE: dict[str, Any] = {
    "showgrid": False,
    "ticks": "outside",
    "ticklen": 3,
    "automargin": True,
    "minorloglabels": "none",  # plotly's small digits between decades would be under 7 pt
    "linewidth": 0.75,
    "tickwidth": 0.75,
}


def _axis_style(axis) -> None:
    """The report's axis style where the figure set nothing else."""
    for key, value in AXIS_STYLE.items():
        if axis[key] is None:
            axis[key] = value
    if axis.title.font.size is None:
        axis.title.font.size = font_px(FONT_PT)
    if axis.title.standoff is None:
        axis.title.standoff = 4
    if axis.tickfont.size is None:
        axis.tickfont.size = font_px(SMALL_PT)


def colorbar(title: str) -> dict[str, Any]:
    """A thin colour bar, its title along it on the right, fonts at print size."""
    return {
        "title": {"text": title, "side": "right", "font": {"size": font_px(SMALL_PT)}},
        "tickfont": {"size": font_px(SMALL_PT)},
        "thickness": 8,
        "outlinewidth": 0,
        "len": 0.9,
    }


def legend_traces(fig, labels: list[str]) -> None:
    """One legend entry per method label, its marker on its line, drawn nowhere: a
    grid's own traces stay out of the legend, so each method is listed once."""
    import plotly.graph_objects as go

    for label in labels:
        style = method_style(label)
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="lines+markers",
                name=label,
                legendgroup=label,
                line={"color": style.colour, "width": 1.25, "dash": style.dash},
                marker={"symbol": style.symbol, "size": 6, "color": style.colour},
                hoverinfo="skip",
            )
        )
