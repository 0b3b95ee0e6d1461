"""A study's trials as parallel coordinates, every trial state told apart.

One vertical axis per searched parameter (log where it was searched on a log scale,
categories evenly spaced) and one for the objective; each trial is a polyline across
them. Complete trials are coloured by their objective and reach its axis; pruned trials
(grey, dashed) and failed ones (vermillion, dotted) have no objective and stop at the
last parameter; the best trial is drawn black on top. Drawn with plain lines and text,
so SVG and PDF stay vector.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.configs.figure import FigureConfig
from harness.reporting.figure_checks import text_width
from harness.reporting.figure_style import (
    BLACK,
    SMALL_PT,
    colorbar,
    figure_width,
    font_px,
    paper_layout,
)
from harness.reporting.study_plots import (
    SCALE,
    STATE_STYLES,
    axis_label,
    finite_objective,
    searched_params,
    wrap_label,
)

STATES = ("COMPLETE", "PRUNED", "FAIL")
COMPLETE = "complete (colour: objective)"


@dataclass(frozen=True)
class Axis:
    """One vertical axis: where a value lies on it (0 at the bottom, 1 at the top).

    Attributes:
        label: The name under it.
        values: The values it spans (numbers, or categories in order).
        log: Numbers placed on a log scale.
        categorical: The values are categories.

    Example:
        >>> axis = Axis.of("lr", [0.001, 0.1, 0.01], log=True)
        >>> [round(axis.position(v), 2) for v in (0.001, 0.01, 0.1)]
        [0.0, 0.5, 1.0]
        >>> axis.ticks()
        [(0.0, '0.001'), (0.5, '0.01'), (1.0, '0.1')]
    """

    label: str
    values: tuple[Any, ...]
    log: bool = False
    categorical: bool = False

    @classmethod
    def of(cls, label: str, seen: Sequence[Any], log: bool = False) -> Axis:
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in seen)
        if not numbers:
            return cls(label, tuple(sorted(set(seen), key=repr)), categorical=True)
        return cls(label, (min(seen), max(seen)), log=log and min(seen) > 0)

    def _scaled(self, value: float) -> float:
        return math.log10(value) if self.log else float(value)

    def position(self, value: Any) -> float:
        if self.categorical:
            return self.values.index(value) / max(len(self.values) - 1, 1)
        low, high = (self._scaled(v) for v in self.values)
        return 0.5 if high == low else (self._scaled(value) - low) / (high - low)

    def ticks(self) -> list[tuple[float, str]]:
        if self.categorical:
            return [(self.position(v), str(v)) for v in self.values]
        low, high = (self._scaled(v) for v in self.values)
        if high == low:
            return [(0.5, f"{self.values[0]:.3g}")]
        middle = (low + high) / 2
        return [
            (t, f"{(10**v if self.log else v):.3g}")
            for t, v in ((0.0, low), (0.5, middle), (1.0, high))
        ]


def parallel_figure(
    records: Sequence[dict[str, Any]],
    objective_name: str,
    maximize: bool,
    log_params: Sequence[str],
    config: FigureConfig,
):
    """Parallel coordinates of a study's finished trials (see the module docstring);
    None with fewer than two trials or nothing searched."""
    import plotly.graph_objects as go
    from plotly.colors import sample_colorscale

    finished = [r for r in records if r.get("state") in STATES]
    names = searched_params(finished)
    complete = [r for r in finished if r["state"] == "COMPLETE" and finite_objective(r) is not None]
    if len(finished) < 2 or not names:
        return None
    axes = [
        Axis.of(
            axis_label(n), [r["params"][n] for r in finished if n in r["params"]], n in log_params
        )
        for n in names
    ]
    objectives = [finite_objective(r) for r in complete]
    if objectives:
        axes.append(Axis.of(wrap_label(objective_name, 18), objectives))
    fig = go.Figure()
    _draw_axes(fig, axes)
    legend = []
    if objectives:
        lowest, highest = min(objectives), max(objectives)
        middle = sample_colorscale(SCALE, [0.5])[0]
        fig.add_trace(
            go.Scatter(x=[None], y=[None], mode="lines", name=COMPLETE, line={"color": middle})
        )
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                showlegend=False,
                marker={
                    "color": [lowest],
                    "colorscale": SCALE,
                    "cmin": lowest,
                    "cmax": highest,
                    "showscale": True,
                    "colorbar": colorbar(wrap_label(objective_name)),
                },
            )
        )
        legend.append(COMPLETE)
    sign = 1.0 if maximize else -1.0
    best = max(complete, key=lambda r: sign * finite_objective(r), default=None)
    legend += _draw_trials(fig, finished, names, axes, best, sign)
    first = max((text_width(label, font_px(SMALL_PT)) for _, label in axes[0].ticks()), default=0)
    fig.update_xaxes(
        tickvals=list(range(len(axes))),
        ticktext=[a.label + (" (log)" if a.log else "") for a in axes],
        range=[-0.08, len(axes) - 1 + 0.08],
        showline=False,
        ticks="",
    )
    fig.update_yaxes(visible=False, range=[-0.06, 1.06])
    return paper_layout(fig, figure_width(config, True), 240, legend, margin={"l": first + 14})


def _draw_axes(fig, axes: list[Axis]) -> None:
    """The vertical axes and their value labels, left of each axis."""
    import plotly.graph_objects as go

    xs: list[float | None] = []
    ys: list[float | None] = []
    for i in range(len(axes)):
        xs += [i, i, None]
        ys += [0, 1, None]
    fig.add_trace(
        go.Scatter(x=xs, y=ys, mode="lines", line={"color": BLACK, "width": 0.75}, showlegend=False)
    )
    ticks = [(i, t, label) for i, axis in enumerate(axes) for t, label in axis.ticks()]
    fig.add_trace(
        go.Scatter(
            x=[i for i, _, _ in ticks],
            y=[t for _, t, _ in ticks],
            text=[f"{label} " for _, _, label in ticks],
            mode="text+markers",
            marker={"symbol": "line-ew", "size": 5, "line": {"width": 0.75, "color": BLACK}},
            textposition="middle left",
            textfont={"size": font_px(SMALL_PT)},
            cliponaxis=False,
            showlegend=False,
            hoverinfo="skip",
        )
    )


def _draw_trials(fig, finished, names: list[str], axes: list[Axis], best, sign: float):
    """One polyline per trial, pruned and failed ones under the complete ones and better
    over worse (``sign``: 1 to maximise, -1 to minimise); returns the legend's entries."""
    import plotly.graph_objects as go
    from plotly.colors import sample_colorscale

    legend: list[str] = []
    objective_axis = axes[len(names)] if len(axes) > len(names) else None
    order = sorted(
        finished, key=lambda r: (r["state"] == "COMPLETE", sign * (finite_objective(r) or 0.0))
    )
    for record in order:
        ys = [
            axis.position(record["params"][name]) if name in record["params"] else None
            for name, axis in zip(names, axes, strict=False)
        ]
        value = finite_objective(record) if record["state"] == "COMPLETE" else None
        if value is not None and objective_axis is not None:
            t = objective_axis.position(value)
            entry, colour, dash, width = COMPLETE, sample_colorscale(SCALE, [t])[0], "solid", 1.0
            ys.append(t)
        else:
            entry, colour, dash = STATE_STYLES.get(record["state"], STATE_STYLES["FAIL"])
            width = 1.0
        if record is best:
            entry, colour, width = f"best trial ({record['trial']})", BLACK, 2.0
        fig.add_trace(
            go.Scatter(
                x=list(range(len(ys))),
                y=ys,
                mode="lines",
                line={"color": colour, "width": width, "dash": dash},
                opacity=1.0 if record is best else 0.8,
                name=entry,
                legendgroup=entry,
                showlegend=entry not in legend and entry != COMPLETE,
                text=f"trial {record['trial']} ({record['state'].lower()})",
                hoverinfo="text",
            )
        )
        if entry not in legend and entry != COMPLETE:
            legend.append(entry)
    return legend
