"""A suite comparison's AUC per task, all its ablations and conventions in one figure.

A row per task, its name written whole on the left; a panel per ablation × convention,
AUC on the x axis. Within a row each method has its own line (dodged), its marker at the
mean over seeds and a bar across the 95% percentile-bootstrap interval. Tasks are ordered
by how much the methods differ on them: the gap between the best and the worst
non-random method's mean, averaged over the panels, largest at the top (the order of
``tables/suite-separating``).
"""

from __future__ import annotations

from typing import Any

from harness.configs.figure import FigureConfig
from harness.reporting.figure_checks import text_width
from harness.reporting.figure_style import (
    PX_PER_IN,
    SMALL_PT,
    figure_width,
    font_px,
    legend_traces,
    method_style,
)
from harness.reporting.panel_grid import PanelGrid

METHOD_PX = 3.2  # of a task's row, per method (25 tasks, 6 methods: a page tall)
DODGE = 0.7  # of a row's height, shared by the methods


def task_order(tasks) -> list[str]:
    """The tasks of a :func:`~harness.reporting.suite.task_frame`, largest mean gap between
    the best and the worst non-random method first (ties: by name).

    Example:
        >>> import pandas as pd
        >>> rows = [("a", "sp", 0.9), ("a", "eap", 0.8), ("b", "sp", 0.9), ("b", "eap", 0.4),
        ...         ("b", "random", 0.1), ("c", "sp", 0.5)]
        >>> frame = pd.DataFrame(rows, columns=["task", "method", "mean"])
        >>> task_order(frame.assign(ablation="resample", convention="score-trapezoid"))
        ['b', 'a', 'c']
    """
    methods = tasks[tasks["method"] != "random"]
    grouped = methods.groupby(["task", "ablation", "convention"])["mean"]
    gaps = (grouped.max() - grouped.min()).groupby(level="task").mean()
    names = sorted(set(tasks["task"]))
    return sorted(names, key=lambda t: (-float(gaps.get(t, 0.0)), t))


def suite_figure(tasks, config: FigureConfig) -> Any:
    """AUC per task, method, ablation and convention (see the module docstring), from the
    rows of :func:`~harness.reporting.suite.task_frame`; None without rows."""
    import plotly.graph_objects as go

    if tasks.empty:
        return None
    panels = list(dict.fromkeys(zip(tasks["ablation"], tasks["convention"], strict=True)))
    order = task_order(tasks)
    methods = list(dict.fromkeys(tasks["method"]))
    width = figure_width(config, multi_panel=len(panels) > 1)
    left = max(text_width(task, font_px(SMALL_PT)) for task in order) + 12
    cols = min(len(panels), max(1, int((width * PX_PER_IN - left) // 120)))
    rows = -(-len(panels) // cols)
    grid = PanelGrid(
        rows,
        cols,
        width,
        left=left,
        right=8,
        gap=16,
        row_gap=64,
        panel_px=max(14.0, METHOD_PX * len(methods) / DODGE) * len(order),
    )
    fig = grid.figure(shared_yaxes=True)
    legend_traces(fig, methods)
    position = {task: len(order) - 1 - i for i, task in enumerate(order)}  # first on top
    for i, (ablation, convention) in enumerate(panels):
        row, col = i // cols + 1, i % cols + 1
        part = tasks[(tasks["ablation"] == ablation) & (tasks["convention"] == convention)]
        present = [m for m in methods if m in set(part["method"])]
        for j, method in enumerate(present):
            offset = (len(present) - 1) / 2 - j
            rows_of = part[part["method"] == method]
            style = method_style(method)
            fig.add_trace(
                go.Scatter(
                    x=list(rows_of["mean"]),
                    y=[
                        position[t] + offset * DODGE / max(len(present), 1) for t in rows_of["task"]
                    ],
                    error_x={
                        "type": "data",
                        "symmetric": False,
                        "array": list(rows_of["ci high"] - rows_of["mean"]),
                        "arrayminus": list(rows_of["mean"] - rows_of["ci low"]),
                        "thickness": 0.75,
                        "width": 0,
                        "color": style.colour,
                    },
                    mode="markers",
                    marker={"symbol": style.symbol, "size": 4, "color": style.colour},
                    name=method,
                    legendgroup=method,
                    showlegend=False,
                    cliponaxis=False,
                    text=[
                        f"{t}: {m:.3f}"
                        for t, m in zip(rows_of["task"], rows_of["mean"], strict=True)
                    ],
                    hoverinfo="text",
                ),
                row=row,
                col=col,
            )
        x0, x1 = fig.get_subplot(row, col).xaxis.domain
        fig.add_annotation(
            text=f"{ablation} ablation<br>{convention}",
            x=(x0 + x1) / 2,
            y=fig.get_subplot(row, col).yaxis.domain[1],
            xref="paper",
            yref="paper",
            xanchor="center",
            yanchor="bottom",
            yshift=3,
            showarrow=False,
        )
        fig.update_xaxes(title_text="AUC", row=row, col=col)
    fig.update_xaxes(range=[-0.03, 1.03], tickvals=[0, 0.5, 1], ticktext=["0", "0.5", "1"])
    fig.update_yaxes(
        tickvals=list(position.values()),
        ticktext=list(position),
        range=[-0.6, len(order) - 0.4],
        showgrid=True,
        gridcolor="#e5e5e5",
        gridwidth=0.5,
        ticks="",
    )
    return grid.style(fig, methods)
