"""A study's figures: how the search went (history, parameter importances, slices, parallel
coordinates, the objective over two parameters, the Pareto front, the best trial's
training) and what its choice is worth on seeds it never saw (held-out beside selection).

Optuna draws the history, importances and contour from an in-memory study of the
complete trials (:func:`~harness.reporting.figures.optuna_study_from_records`); the slice,
parallel-coordinate and held-out figures are drawn here from the records, so that pruned
and failed trials show as such and every line is vector in SVG and PDF (plotly's own
parallel coordinates are WebGL, a picture in a PDF).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from harness.configs.figure import FigureConfig
from harness.evaluation.roc import SCORE_TRAPEZOID
from harness.reporting.figure_style import (
    BLACK,
    BLUE,
    SMALL_PT,
    VERMILLION,
    colorbar,
    figure_width,
    fit_lines,
    font_px,
    paper_layout,
)
from harness.reporting.figures import record_auc
from harness.reporting.panel_grid import PanelGrid

AXIS_LABELS = {
    "learning_rate": "learning rate",
    "regularize_lambda": "λ (regularisation)",
    "init_val": "initial logit",
    "target_sparsity": "target sparsity",
}
STATE_STYLES = {  # state -> (legend entry, colour, dash)
    "PRUNED": ("pruned", "#999999", "dash"),
    "FAIL": ("failed", VERMILLION, "dot"),
}
SCALE = "Cividis"  # a colour scale readable in colour-vision deficiency and greyscale
OPTUNA_ERRORS = (ValueError, RuntimeError, ZeroDivisionError)


def axis_label(name: str, log: bool = False) -> str:
    """A parameter's name on an axis, with its scale.

    Example:
        >>> axis_label("learning_rate", log=True), axis_label("epochs")
        ('learning rate (log scale)', 'epochs')
    """
    return AXIS_LABELS.get(name, name) + (" (log scale)" if log else "")


def history_figure(study, objective_name: str, config: FigureConfig):
    """Each complete trial's objective and the best so far (Optuna's history)."""
    import optuna

    fig = optuna.visualization.plot_optimization_history(study, target_name=objective_name)
    for trace in fig.data:
        if trace.name == "Best Value":
            trace.update(name="best so far", line={"color": VERMILLION, "width": 1.25})
        elif trace.type == "scatter":
            trace.update(name="trial", marker={"color": BLUE, "size": 5})
    fig.update_layout(title=None)
    fig.update_xaxes(title_text="trial (number)")
    fig.update_yaxes(title_text=objective_name)
    legend = [t.name for t in fig.data if t.showlegend is not False and t.name]
    return paper_layout(fig, figure_width(config, False), 190, legend)


def importance_figure(study, config: FigureConfig):
    """Parameter importances by PED-ANOVA (no scikit-learn needed); None when the study
    has too few trials for it."""
    import optuna
    from optuna.importance import PedAnovaImportanceEvaluator

    try:
        fig = optuna.visualization.plot_param_importances(
            study, evaluator=PedAnovaImportanceEvaluator()
        )
    except OPTUNA_ERRORS:
        return None
    bars = len(fig.data[0].y) if fig.data else 1
    fig.update_traces(
        marker_color=BLUE,
        textfont={"size": font_px(SMALL_PT)},
        cliponaxis=False,
        y=[axis_label(name) for name in fig.data[0].y] if fig.data else None,
    )
    fig.update_layout(title=None)
    fig.update_xaxes(title_text="importance (PED-ANOVA, fraction)")
    fig.update_yaxes(title_text="")
    return paper_layout(fig, figure_width(config, False), 60 + 22 * bars, margin={"r": 34})


def contour_figure(study, x: str, y: str, objective_name: str, config: FigureConfig):
    """The objective over two parameters, interpolated; dots: the trials."""
    import optuna

    fig = optuna.visualization.plot_contour(study, params=[x, y], target_name=objective_name)
    fig.update_traces(
        colorscale=SCALE,
        colorbar=colorbar(wrap_label(objective_name)),
        contours_coloring="fill",  # filled paths: optuna's "heatmap" would be a picture
        selector={"type": "contour"},
    )
    fig.update_traces(
        marker={"color": "#fff", "size": 5, "line": {"color": BLACK, "width": 0.75}},
        selector={"type": "scatter"},
    )
    for axis, name in ((fig.layout.xaxis, x), (fig.layout.yaxis, y)):
        axis.title.text = axis_label(name, axis.type == "log")
    fig.update_layout(title=None)
    return paper_layout(fig, figure_width(config, False), 250, margin={"r": 12})


def wrap_label(text: str, width: int = 16) -> str:
    """``text`` broken into lines of about ``width`` characters (``<br>``).

    Example:
        >>> wrap_label("smallest faithful circuit (fraction of edges)")
        'smallest<br>faithful circuit<br>(fraction of<br>edges)'
    """
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "<br>".join(lines)


def training_figure(history: dict[str, list[float]], config: FigureConfig):
    """Loss, faithfulness and regularisation per training step, one panel each."""
    import plotly.graph_objects as go

    rows = [key for key in ("loss", "faithfulness", "regularisation") if history.get(key)]
    grid = PanelGrid(
        max(len(rows), 1), 1, figure_width(config, False), aspect=0.3, title_lines=0, gap=8
    )
    fig = grid.figure(shared_xaxes=True)
    for row, key in enumerate(rows, start=1):
        values = history[key]
        fig.add_trace(
            go.Scatter(
                x=list(range(1, len(values) + 1)),
                y=values,
                mode="lines",
                line={"color": BLUE, "width": 1},
                name=key,
                showlegend=False,
            ),
            row=row,
            col=1,
        )
        fig.update_yaxes(title_text=key, row=row, col=1)
    fig.update_xaxes(title_text="training step (count)", row=max(len(rows), 1), col=1)
    return grid.style(fig)


def pareto_figure(
    scored: Sequence[tuple[dict[str, Any], bool]],
    objective_name: str,
    ground_truth: str | None,
    config: FigureConfig,
):
    """A two-objective study: its first objective against circuit size, one dot per
    complete trial coloured by its AUC (when every trial has one), the Pareto front
    ringed and joined as a staircase."""
    import plotly.graph_objects as go

    records = [r for r, _ in scored]
    colours = [record_auc(r, ground_truth, SCORE_TRAPEZOID) for r in records]
    marker: dict[str, Any] = {"size": 6, "line": {"color": BLACK, "width": 0.5}}
    if colours and all(c is not None for c in colours):
        title = f"AUC vs {ground_truth}<br>({SCORE_TRAPEZOID})"
        marker.update(color=colours, colorscale=SCALE, cmin=0, cmax=1, colorbar=colorbar(title))
    else:
        marker["color"] = BLUE
    front = sorted((r for r, on in scored if on), key=lambda r: r["objective"][1])
    fig = go.Figure(
        [
            go.Scatter(
                x=[r["objective"][1] for r in records],
                y=[r["objective"][0] for r in records],
                mode="markers",
                marker=marker,
                name="trials",
                text=[f"trial {r['trial']}" for r in records],
            ),
            go.Scatter(
                x=[r["objective"][1] for r in front],
                y=[r["objective"][0] for r in front],
                mode="lines+markers",
                line={"shape": "hv", "color": BLACK, "width": 1},
                marker={"size": 10, "color": "rgba(0,0,0,0)", "line": {"color": BLACK, "width": 1}},
                name="Pareto front",
            ),
        ]
    )
    fig.update_xaxes(title_text="circuit size (edges)")
    fig.update_yaxes(title_text=wrap_label(objective_name, 30))
    return paper_layout(fig, figure_width(config, False), 230, ["trials", "Pareto front"])


def searched_params(records: Sequence[dict[str, Any]]) -> list[str]:
    """The parameters that take two or more values across the study's trials (any state).

    Example:
        >>> searched_params([{"params": {"a": 1, "b": 2}}, {"params": {"a": 1, "b": 3}}])
        ['b']
    """
    values: dict[str, set[str]] = {}
    for record in records:
        for name, value in record.get("params", {}).items():
            values.setdefault(name, set()).add(repr(value))
    return [name for name, seen in values.items() if len(seen) > 1]


def finite_objective(record: dict[str, Any]) -> float | None:
    """A record's (first) objective when it is a finite number.

    Example:
        >>> finite_objective({"objective": [0.5, 3]}), finite_objective({"objective": None})
        (0.5, None)
    """
    value = record.get("objective")
    value = value[0] if isinstance(value, list) and value else value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def slice_figure(
    records: Sequence[dict[str, Any]],
    objective_name: str,
    log_params: Sequence[str],
    config: FigureConfig,
):
    """The objective against each searched parameter, one panel each, complete trials
    coloured by trial number (later trials lighter); None with nothing to draw."""
    import plotly.graph_objects as go

    complete = [r for r in records if finite_objective(r) is not None]
    names = searched_params(complete)
    if len(complete) < 2 or not names:
        return None
    width = figure_width(config, multi_panel=len(names) > 1)
    grid = PanelGrid(1, 1, width, aspect=0.8, title_lines=0, gap=24, right=56)
    cols = min(len(names), max(1, grid.columns_that_fit(90)))  # panels at least 90 px wide
    grid = replace(grid, rows=-(-len(names) // cols), cols=cols, row_gap=44)
    rows = grid.rows
    fig = grid.figure(shared_yaxes=True)
    trials = [r["trial"] for r in complete]
    for i, name in enumerate(names):
        row, col = i // cols + 1, i % cols + 1
        fig.add_trace(
            go.Scatter(
                x=[r["params"].get(name) for r in complete],
                y=[finite_objective(r) for r in complete],
                mode="markers",
                marker={
                    "size": 5,
                    "color": trials,
                    "colorscale": SCALE,
                    "line": {"color": BLACK, "width": 0.5},
                    "showscale": i == 0,
                    "colorbar": colorbar("trial"),
                },
                text=[f"trial {t}" for t in trials],
                showlegend=False,
            ),
            row=row,
            col=col,
        )
        log = name in log_params
        fig.update_xaxes(
            title_text=fit_lines(axis_label(name, log), grid.panel_w + grid.gap - 4),
            type="log" if log else None,
            row=row,
            col=col,
        )
    for row in range(1, rows + 1):
        fig.update_yaxes(title_text=wrap_label(objective_name, 24), row=row, col=1)
    return grid.style(fig)
