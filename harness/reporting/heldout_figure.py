"""A study's choice on seeds it never saw, beside the value it was chosen on.

The best trial's objective (and its AUC against each ground truth) in the search is the
maximum of many noisy values, so it is biased upward: it is drawn as an open diamond on
its own line, ``selection``. The same settings run again on held-out seeds are drawn on
the line below, ``held-out``: each seed as a small dot and their mean with its 95%
percentile-bootstrap interval. One panel per value (the objective, then the AUC against
each ground truth, ``score-trapezoid``); the two are never merged into one number.
"""

from __future__ import annotations

from typing import Any

from harness.configs.figure import FigureConfig
from harness.evaluation.roc import SCORE_TRAPEZOID
from harness.evaluation.stats import bootstrap_interval
from harness.reporting.figure_style import BLACK, BLUE, figure_width
from harness.reporting.panel_grid import PanelGrid
from harness.reporting.study_plots import finite_objective

SELECTION = "selection: the best trial in the search"
HELDOUT = "held-out: mean and 95% interval over seeds"
SEEDS = "held-out: one seed"


def heldout_values(heldout: list[dict[str, Any]], objective_name: str, samples: int = 10000):
    """Per value (the objective, then the AUC against each ground truth): its name, the
    selection value, the held-out seeds' values and their mean with its 95% percentile-
    bootstrap interval (mean, low, high); None without complete held-out runs. An objective
    that is the AUC against a ground truth is shown once. ``heldout``: the lines of one
    selected trial.

    Example:
        >>> lines = [{"trial": 3, "state": "COMPLETE", "selection_value": 0.1, "objective": v,
        ...           "selection_auc": {"g": {"score-trapezoid": 0.9}},
        ...           "auc": {"g": {"score-trapezoid": 1 - v}}} for v in (0.2, 0.4)]
        >>> [(name, sel, seeds) for name, sel, seeds, _ in heldout_values(lines, "KL", 200)]
        [('KL (objective)', 0.1, [0.2, 0.4]), ('AUC vs g (score-trapezoid)', 0.9, [0.8, 0.6])]
        >>> [name for name, *_ in heldout_values(lines, "AUC vs g", 200)]
        ['AUC vs g (score-trapezoid, the objective)']
    """
    complete = [r for r in heldout if r.get("state") == "COMPLETE"]
    if not complete:
        return None
    first = complete[0]
    gts = list(dict.fromkeys(gt for r in complete for gt in r.get("auc", {})))
    values = []
    if objective_name not in {f"AUC vs {gt}" for gt in gts}:
        seeds = [v for r in complete if (v := finite_objective(r)) is not None]
        selection = finite_objective({"objective": first.get("selection_value")})
        values.append((f"{objective_name} (objective)", selection, seeds))
    for gt in gts:
        seeds = [r["auc"].get(gt, {}).get(SCORE_TRAPEZOID) for r in complete]
        selection = (first.get("selection_auc") or {}).get(gt, {}).get(SCORE_TRAPEZOID)
        the = ", the objective" if objective_name == f"AUC vs {gt}" else ""
        name = f"AUC vs {gt} ({SCORE_TRAPEZOID}{the})"
        values.append((name, selection, [v for v in seeds if v is not None and v == v]))
    return [
        (name, selection, seeds, (sum(seeds) / len(seeds), *bootstrap_interval(seeds, samples)))
        for name, selection, seeds in values
        if seeds
    ] or None


def heldout_figure(
    heldout: list[dict[str, Any]], objective_name: str, samples: int, config: FigureConfig
):
    """The held-out figure (see the module docstring); None without held-out runs."""
    import plotly.graph_objects as go

    values = heldout_values(heldout, objective_name, samples)
    if values is None:
        return None
    grid = PanelGrid(
        len(values), 1, figure_width(config, False), title_lines=1, gap=34, left=64, panel_px=44
    )
    fig = grid.figure()
    for row, (name, selection, seeds, (mean, low, high)) in enumerate(values, start=1):
        points = [
            (SEEDS, seeds, 0, {"size": 4, "color": "#999999"}, None),
            (HELDOUT, [mean], 0, {"size": 7, "color": BLUE}, (low, high)),
        ]
        if selection is not None:
            marker = {"size": 8, "symbol": "diamond-open", "color": BLACK, "line": {"width": 1.25}}
            points.append((SELECTION, [selection], 1, marker, None))
        for label, xs, y, marker, interval in points:
            error = None
            if interval is not None:
                error = {
                    "type": "data",
                    "symmetric": False,
                    "array": [interval[1] - xs[0]],
                    "arrayminus": [xs[0] - interval[0]],
                    "thickness": 1,
                    "width": 3,
                    "color": BLUE,
                }
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=[y] * len(xs),
                    mode="markers",
                    marker=marker,
                    error_x=error,
                    name=label,
                    legendgroup=label,
                    showlegend=row == 1,
                    cliponaxis=False,
                ),
                row=row,
                col=1,
            )
        axis = fig.get_subplot(row, 1)
        fig.update_yaxes(
            tickvals=[0, 1], ticktext=["held-out", "selection"], range=[-0.6, 1.6], row=row, col=1
        )
        fig.add_annotation(
            text=name,
            x=axis.xaxis.domain[0],
            y=axis.yaxis.domain[1],
            xref="paper",
            yref="paper",
            xanchor="left",
            yanchor="bottom",
            yshift=2,
            showarrow=False,
        )
        if name.startswith("AUC"):
            fig.update_xaxes(range=[-0.02, 1.02], row=row, col=1)
    return grid.style(fig, [SELECTION, HELDOUT, SEEDS])
