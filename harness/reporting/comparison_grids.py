"""A comparison's two grids: ROC curves, and faithfulness against circuit size.

- ROC (:func:`roc_grid`): a row per task, a column per ablation × ground truth. Solid
  lines are each seed's ranking of all edges (``score-trapezoid``); dashed steps through
  markers are each seed's sweep (``sweep-pessimistic``, for methods that sweep). In the
  lower right of each panel, each method's AUC, mean over seeds, in both conventions.
- Faithfulness (:func:`faithfulness_grid`): a row per task × ablation; on the left the
  KL divergence (MSE for numerical outputs) to the full model of the top-k edges by
  |score| against k, on the right MIB's normalised faithfulness f of the top fraction of
  edges ranked by |score| (the curve whose distance to 1 is CMD), both means over seeds.

Every method keeps its colour and marker (:func:`~harness.reporting.figure_style.method_style`)
and the legend, above the grid, is the only one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from harness.configs.figure import FigureConfig
from harness.evaluation.roc import SCORE_TRAPEZOID, SWEEP_PESSIMISTIC
from harness.reporting.figure_checks import text_width
from harness.reporting.figure_style import (
    PX_PER_IN,
    SMALL_PT,
    figure_width,
    fit_lines,
    font_px,
    legend_traces,
    method_style,
)
from harness.reporting.figures import MEASURE_SHORT, MethodRuns, faithfulness_measure
from harness.reporting.panel_grid import LINE_PX, PanelGrid

ROC_RANGE = (-0.03, 1.03)
MIN_PANEL_PX = 88  # a ROC panel narrower than this has no room for its AUC numbers
PAGE_HEIGHT_PX = 8.5 * PX_PER_IN  # the faithfulness grid's panels shrink to keep it this tall
AUC_LINE_PX = font_px(SMALL_PT) * 1.3  # one line of a panel's AUC numbers
AUC_LEGEND_TITLE = "AUC in each panel, mean over seeds: score-trapezoid | sweep-pessimistic"


def _mean(values: Sequence[float]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else None


def _joined(curves: list[tuple[list[float], list[float]]]) -> tuple[list, list]:
    """Several curves as one trace: their points with a gap (None) between curves."""
    xs: list[float | None] = []
    ys: list[float | None] = []
    for x, y in curves:
        xs += [*x, None]
        ys += [*y, None]
    return xs, ys


def roc_columns(runs: Sequence[MethodRuns]) -> list[tuple[str, str]]:
    """The (ablation, ground truth) pairs some run has a ROC curve for, in order.

    Example:
        >>> run = MethodRuns("eap", "t", "zero", [{"roc": {"zero": {}, "resample": {}}}])
        >>> roc_columns([run])
        [('zero', 'zero'), ('zero', 'resample')]
    """
    return list(
        dict.fromkeys(
            (run.ablation, gt) for run in runs for r in run.records for gt in r.get("roc", {})
        )
    )


def roc_grid(runs: Sequence[MethodRuns], config: FigureConfig):
    """The ROC grid of ``runs`` (see the module docstring); None without ROC curves.

    Where the columns do not fit the width at :data:`MIN_PANEL_PX` a panel, the panels
    that have curves wrap in reading order instead, each titled with its task, ablation
    and ground truth.
    """
    import plotly.graph_objects as go

    columns = roc_columns(runs)
    drawn = [run for run in runs if any(r.get("roc") for r in run.records)]
    if not columns or not drawn:
        return None
    tasks = list(dict.fromkeys(run.task for run in drawn))
    methods = list(dict.fromkeys(run.label for run in drawn))
    fig, grid, cells = _roc_layout(drawn, tasks, columns, figure_width(config, True))
    legend_traces(fig, methods)
    for row, col, task, ablation, gt in cells:
        fig.add_trace(
            go.Scatter(
                x=[0, 1],
                y=[0, 1],
                mode="lines",
                line={"color": "#999", "width": 0.75, "dash": "dot"},
                showlegend=False,
                hoverinfo="skip",
            ),
            row=row,
            col=col,
        )
        members = [r for r in drawn if r.task == task and r.ablation == ablation]
        numbers = [n for run in members if (n := _roc_traces(fig, run, gt, row, col))]
        _auc_numbers(fig, grid, row, col, numbers)
    fig.update_xaxes(range=ROC_RANGE, tickvals=[0, 0.5, 1], ticktext=["0", "0.5", "1"])
    fig.update_yaxes(range=ROC_RANGE, tickvals=[0, 0.5, 1], ticktext=["0", "0.5", "1"])
    bottom = {col: max(r for r, c, *_ in cells if c == col) for _, col, *_ in cells}
    for col, row in bottom.items():
        fig.update_xaxes(title_text="false-positive rate", row=row, col=col)
    for i in range(len(cells), grid.rows * grid.cols):  # the wrapped grid's empty cells
        fig.update_xaxes(visible=False, row=i // grid.cols + 1, col=i % grid.cols + 1)
        fig.update_yaxes(visible=False, row=i // grid.cols + 1, col=i % grid.cols + 1)
    for row in range(1, grid.rows + 1):
        fig.update_yaxes(title_text="true-positive rate", row=row, col=1)
    return grid.style(fig, methods, AUC_LEGEND_TITLE)


def _roc_layout(drawn, tasks: list[str], columns: list[tuple[str, str]], width: float):
    """The ROC figure's grid: tasks × columns where they fit, else the scored panels
    wrapped; returns the figure, its grid and its cells (row, col, task, ablation, gt)."""
    grid = PanelGrid(len(tasks), len(columns), width)
    if grid.panel_w >= MIN_PANEL_PX:
        grid, titles = grid.titled(
            [f"{ablation} ablation<br>ground truth {gt}" for ablation, gt in columns]
        )
        fig = grid.figure(titles, tasks, shared_xaxes=True, shared_yaxes=True)
        cells = [
            (row, col, task, ablation, gt)
            for row, task in enumerate(tasks, start=1)
            for col, (ablation, gt) in enumerate(columns, start=1)
        ]
        return fig, grid, cells
    scored = [
        (task, ablation, gt)
        for task in tasks
        for ablation, gt in columns
        if any(
            gt in r.get("roc", {})
            for run in drawn
            if run.task == task and run.ablation == ablation
            for r in run.records
        )
    ]
    cols = max(1, grid.columns_that_fit(MIN_PANEL_PX))
    grid = replace(grid, rows=-(-len(scored) // cols), cols=cols, title_lines=0)
    titles = [
        fit_lines(f"{t}<br>{a} ablation, ground truth {g}", grid.panel_w) for t, a, g in scored
    ]
    lines = max(title.count("<br>") + 1 for title in titles)
    grid = replace(grid, title_lines=lines, row_gap=lines * LINE_PX + 24)
    fig = grid.figure(shared_yaxes=True)
    cells = [(i // cols + 1, i % cols + 1, *panel) for i, panel in enumerate(scored)]
    grid.panel_titles(fig, titles)
    return fig, grid, cells


def _roc_traces(fig, run: MethodRuns, gt: str, row: int, col: int):
    """``run``'s curves against ``gt`` in one panel; its label, style and mean AUCs (score,
    sweep or None), or None when it has no curve there."""
    import plotly.graph_objects as go

    style = method_style(run.label)
    faint = run.label == "random"  # a baseline: its curves stay behind the methods'
    score = [r["roc"][gt] for r in run.records if gt in r.get("roc", {})]
    sweep = [r["sweep_roc"][gt] for r in run.records if gt in (r.get("sweep_roc") or {})]
    if not score and not sweep:
        return None
    common = {"showlegend": False, "legendgroup": run.label, "name": run.label}
    if score:
        xs, ys = _joined([(c["fpr"], c["tpr"]) for c in score])
        line = {"color": style.colour, "width": 1, "dash": style.dash}
        fig.add_trace(
            go.Scatter(
                x=xs, y=ys, mode="lines", line=line, opacity=0.3 if faint else 0.7, **common
            ),
            row=row,
            col=col,
        )
    if sweep:
        xs, ys = _joined([(c["fpr"], c["tpr"]) for c in sweep])
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines+markers",
                line={"color": style.colour, "width": 1, "dash": "dash", "shape": "hv"},
                marker={"symbol": style.symbol, "size": 5, "color": style.colour},
                **common,
            ),
            row=row,
            col=col,
        )
    aucs = [r.get("auc", {}).get(gt, {}) for r in run.records]
    return (
        run.label,
        _mean([a.get(SCORE_TRAPEZOID) for a in aucs]),
        _mean([a.get(SWEEP_PESSIMISTIC) for a in aucs]),
    )


def _auc_numbers(fig, grid: PanelGrid, row: int, col: int, numbers: list[tuple]) -> None:
    """Each method's mean AUCs in the panel's lower right, one line per method after its
    marker, on a white ground."""
    import plotly.graph_objects as go

    axis = fig.get_subplot(row, col)
    xref = axis.xaxis.plotly_name.replace("axis", "")
    yref = axis.yaxis.plotly_name.replace("axis", "")
    size = font_px(SMALL_PT)
    if not numbers:  # no run has this ground truth on this task
        fig.add_annotation(
            text="not scored",
            x=0.5,
            y=0.25,
            xref=xref,
            yref=yref,
            showarrow=False,
            font={"size": size, "color": "#666666"},
        )
        return
    texts = [
        " | ".join("–" if v is None else f"{v:.3f}" for v in (score, sweep))
        if sweep is not None
        else ("–" if score is None else f"{score:.3f}")
        for _, score, sweep in numbers
    ]
    widest = max(text_width(t, size) for t in texts)
    span = ROC_RANGE[1] - ROC_RANGE[0]
    per_x, per_y = span / grid.panel_w, span / grid.panel_h
    left = ROC_RANGE[1] - (widest + 3) * per_x
    ys = [
        ROC_RANGE[0] + (2 + (len(texts) - i - 0.5) * AUC_LINE_PX) * per_y for i in range(len(texts))
    ]
    for text, y in zip(texts, ys, strict=True):
        fig.add_annotation(
            text=text,
            x=left,
            y=y,
            xref=xref,
            yref=yref,
            xanchor="left",
            yanchor="middle",
            showarrow=False,
            font={"size": size},
            bgcolor="rgba(255,255,255,0.85)",
            borderpad=0,
        )
    for (label, _, _), y in zip(numbers, ys, strict=True):
        style = method_style(label)
        fig.add_trace(
            go.Scatter(
                x=[left - 6 * per_x],
                y=[y],
                mode="markers",
                marker={"symbol": style.symbol, "size": 5, "color": style.colour},
                showlegend=False,
                legendgroup=label,
                hoverinfo="skip",
            ),
            row=row,
            col=col,
        )


def faithfulness_rows(runs: Sequence[MethodRuns]) -> list[tuple[str, str]]:
    """The (task, ablation) pairs with a faithfulness curve or MIB's f, in order.

    Example:
        >>> run = MethodRuns("eap", "t", "zero", [{"faithfulness_curve": [{"n_edges": 1}]}])
        >>> faithfulness_rows([run, MethodRuns("eap", "u", "zero", [{}])])
        [('t', 'zero')]
    """
    return list(
        dict.fromkeys(
            (run.task, run.ablation)
            for run in runs
            if any(r.get("faithfulness_curve") or _mib_curve(r) for r in run.records)
        )
    )


def _mib_curve(record: dict[str, Any]) -> tuple[list[float], list[float]] | None:
    mib = record.get("mib") or {}
    if mib.get("fractions") and mib.get("cmd_faithfulness"):
        return mib["fractions"], mib["cmd_faithfulness"]
    return None


def _curve_means(points: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
    """The mean y at each x (finite values, x > 0 for a log axis), by x."""
    by_x: dict[float, list[float]] = {}
    for x, y in points:
        if x > 0 and y is not None and math.isfinite(y):
            by_x.setdefault(x, []).append(y)
    xs = sorted(by_x)
    return xs, [sum(by_x[x]) / len(by_x[x]) for x in xs]


def faithfulness_grid(runs: Sequence[MethodRuns], config: FigureConfig):
    """The faithfulness grid of ``runs`` (see the module docstring); None without curves."""
    import plotly.graph_objects as go

    rows = faithfulness_rows(runs)
    if not rows:
        return None
    drawn = [run for run in runs if (run.task, run.ablation) in rows]
    methods = list(dict.fromkeys(run.label for run in drawn))
    width = figure_width(config, multi_panel=True)
    grid = PanelGrid(len(rows), 2, width, right=30.0, gap=20.0)
    fitting = (PAGE_HEIGHT_PX - grid.top - grid.bottom) / len(rows) - grid.gap  # a page tall
    panel_px = max(min(grid.panel_w * 0.4, 130.0, fitting), 60.0)
    grid = replace(grid, panel_px=panel_px)
    grid, titles = grid.titled(["top-k edges by |score|", "MIB's normalised f, |score| ranking"])
    fig = grid.figure(
        titles,
        [f"{task}<br>{ablation} ablation" for task, ablation in rows],
        shared_xaxes="columns",
    )
    legend_traces(fig, methods)
    for row, (task, ablation) in enumerate(rows, start=1):
        members = [run for run in drawn if run.task == task and run.ablation == ablation]
        measure = faithfulness_measure([r for run in members for r in run.records])
        for run in members:
            style = method_style(run.label)
            curve = [
                (p["n_edges"], p.get(measure))
                for r in run.records
                for p in r.get("faithfulness_curve") or ()
            ]
            mib = [
                pair for r in run.records if (c := _mib_curve(r)) for pair in zip(*c, strict=True)
            ]
            for col, points in ((1, curve), (2, mib)):
                xs, ys = _curve_means(points)
                if not xs:
                    continue
                fig.add_trace(
                    go.Scatter(
                        x=xs,
                        y=ys,
                        mode="lines+markers",
                        line={"color": style.colour, "width": 1, "dash": style.dash},
                        marker={"symbol": style.symbol, "size": 4, "color": style.colour},
                        name=run.label,
                        legendgroup=run.label,
                        showlegend=False,
                    ),
                    row=row,
                    col=col,
                )
        fig.update_yaxes(title_text=MEASURE_SHORT.get(measure, measure), row=row, col=1)
        fig.update_yaxes(title_text="f", row=row, col=2)
    fig.update_xaxes(type="log", dtick=1)
    fig.update_xaxes(title_text="edges kept (log scale)", row=len(rows), col=1)
    fig.update_xaxes(title_text="fraction of edges (log scale)", row=len(rows), col=2)
    return grid.style(fig, methods)
