"""Plotly figures of a report, in one colour-blind-safe style, and their export.

Every figure is built from trial records alone. Sizes fit a two-column paper: a
single-column figure is 340 px wide (3.4 in at 100 px per inch; PNGs are written at
scale 3), a double-column one 700 px, and no text is smaller than 13 px (9.4 pt at that
width). Colours are the Okabe–Ito palette, the same method in the same colour everywhere.

Static files (PDF, SVG, PNG) go through kaleido, which needs a Chrome or Chromium; without
one, or with one that does not answer in time, only the interactive HTML and the figure's
JSON are written (see :mod:`harness.reporting.static_export`). plotly, kaleido and optuna are
imported when a figure is built, never at import time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.evaluation.roc import SCORE_TRAPEZOID, SWEEP_PESSIMISTIC
from harness.reporting.static_export import StaticJob, render_static

# Okabe & Ito (2008), "Color Universal Design"; black last, for the random baseline.
OKABE_ITO = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
    "#000000",  # black
)
SINGLE_COLUMN = (340, 260)
DOUBLE_COLUMN = (700, 300)
FONT_PX = 13
LEGEND_ROW_PX = 20
PNG_SCALE = 3
STATIC_FORMATS = ("pdf", "svg", "png")
STATIC_SCALES = (1, 1, PNG_SCALE)
AXIS_LABELS = {
    "learning_rate": "learning rate",
    "regularize_lambda": "λ, regularisation weight",
}
MEASURE_LABELS = {
    "kl_div": "KL to full model (nats)",
    "mse": "MSE to full model (output²)",
}


@dataclass
class MethodRuns:
    """One method's runs on one task and ablation: the seeds of a comparison, or a study's
    best trial.

    Attributes:
        label: The name in legends and tables.
        task: The task's slug.
        ablation: The ablation the runs used.
        records: The COMPLETE records (one per seed).
        colour: The line colour (set by :func:`assign_colours`).
    """

    label: str
    task: str
    ablation: str
    records: list[dict[str, Any]] = field(default_factory=list)
    colour: str = OKABE_ITO[0]


def record_auc(record: dict[str, Any], ground_truth: str | None, convention: str) -> float | None:
    """A trial record's AUC against ``ground_truth`` in ``convention``, None if absent.

    Example:
        >>> record_auc({"auc": {"resample": {"score-trapezoid": 0.9}}}, "resample",
        ...            "score-trapezoid"), record_auc({}, "resample", "score-trapezoid")
        (0.9, None)
    """
    if ground_truth is None:
        return None
    return record.get("auc", {}).get(ground_truth, {}).get(convention)


def assign_colours(labels: Sequence[str]) -> dict[str, str]:
    """One Okabe–Ito colour per label, in order; ``random`` is always black.

    Example:
        >>> assign_colours(["sp", "random", "acdc"])
        {'sp': '#0072B2', 'random': '#000000', 'acdc': '#E69F00'}
    """
    colours: dict[str, str] = {}
    palette = iter(OKABE_ITO[:-1] * (len(labels) // 7 + 1))
    for label in labels:
        if label not in colours:
            colours[label] = OKABE_ITO[-1] if label == "random" else next(palette)
    return colours


def styled(fig, title: str, size: tuple[int, int] = SINGLE_COLUMN, legend_rows: int = 0):
    """The report's style: fonts, margins, white background, legend below the plot."""
    width, height = size
    fig.update_layout(
        template="simple_white",
        title={"text": title, "font": {"size": FONT_PX}, "x": 0.02, "xanchor": "left"},
        font={"family": "Helvetica, Arial, sans-serif", "size": FONT_PX, "color": "#000"},
        width=width,
        height=height + LEGEND_ROW_PX * legend_rows,
        margin={"l": 58, "r": 12, "t": 44, "b": 56 + LEGEND_ROW_PX * legend_rows},
        legend={
            "orientation": "v",
            "x": 0,
            "xanchor": "left",
            "y": -0.2 - 10 / max(height, 1),
            "yanchor": "top",
            "font": {"size": FONT_PX},
            "tracegroupgap": 0,
            "title_font": {"size": FONT_PX},
        },
        showlegend=legend_rows > 0,
    )
    axes = {
        "title_font": {"size": FONT_PX},
        "tickfont": {"size": FONT_PX},
        "showgrid": False,
        "minorloglabels": "none",  # plotly's small digits would be under 9 pt
    }
    fig.update_xaxes(**axes)
    fig.update_yaxes(**axes)
    fig.update_traces(colorbar={"title": {"font": {"size": FONT_PX}}}, selector={"type": "contour"})
    if legend_rows:
        # below the x-axis title: the plot area keeps its height, the figure grows
        fig.update_layout(legend={"y": -58 / (height - 100)})
    return fig


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def roc_figure(title: str, ground_truth: str, runs: Sequence[MethodRuns]):
    """ROC curves of every method against one ground truth, overlaid.

    Score-based curves (``score-trapezoid``) are lines, one per seed, all seeds in the
    method's colour; sweeps (``sweep-pessimistic``) are their points as markers joined by
    the pessimistic staircase. The legend gives each AUC, mean over seeds, with its
    convention.
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            line={"color": "#999", "width": 1, "dash": "dot"},
            showlegend=False,
            hoverinfo="skip",
        )
    )
    entries = 0
    for run in runs:
        for convention, key, shape in (
            (SCORE_TRAPEZOID, "roc", "linear"),
            (SWEEP_PESSIMISTIC, "sweep_roc", "hv"),
        ):
            curves = [r[key][ground_truth] for r in run.records if ground_truth in r.get(key, {})]
            aucs = [
                r["auc"][ground_truth][convention]
                for r in run.records
                if convention in r.get("auc", {}).get(ground_truth, {})
            ]
            if not curves or not aucs:
                continue
            name = f"{run.label}: {_mean(aucs):.3f}"
            wrap = len(name) + len(convention) > 40  # 340 px hold about 45 characters
            name = f"{name}<br>{convention}" if wrap else f"{name} {convention}"
            for i, curve in enumerate(curves):
                fig.add_trace(
                    go.Scatter(
                        x=curve["fpr"],
                        y=curve["tpr"],
                        mode="lines+markers" if shape == "hv" else "lines",
                        line={
                            "color": run.colour,
                            "width": 1.5,
                            "shape": shape,
                            "dash": "dash" if shape == "hv" else "solid",
                        },
                        marker={"size": 6, "symbol": "circle-open"},
                        opacity=1.0 if i == 0 else 0.45,
                        name=name,
                        legendgroup=name,
                        showlegend=i == 0,
                    )
                )
            entries += 2 if wrap else 1
    fig.update_layout(legend_title_text="AUC (mean over seeds), convention")
    entries += 1 if entries else 0
    fig.update_xaxes(title_text="false-positive rate", range=[-0.02, 1.02], constrain="domain")
    fig.update_yaxes(title_text="true-positive rate", range=[-0.02, 1.02])
    return styled(fig, title, (SINGLE_COLUMN[0], 300), legend_rows=entries)


def faithfulness_measure(records: Sequence[dict[str, Any]]) -> str:
    """``kl_div`` for tasks with a next-token output, ``mse`` for numerical ones (whose
    records have no ``correct_percent``).

    Example:
        >>> faithfulness_measure([{"faithfulness_curve": [{"n_edges": 1, "mse": 0.1}]}])
        'mse'
    """
    points = [p for r in records for p in r.get("faithfulness_curve") or ()]
    return "kl_div" if any("correct_percent" in p for p in points) else "mse"


def faithfulness_figure(title: str, runs: Sequence[MethodRuns], measure: str):
    """Faithfulness of the top-k edges against k (log x axis), mean over seeds, per method.

    Circuits of 0 edges cannot be placed on a log axis and are left out.
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    entries = 0
    for run in runs:
        by_k: dict[int, list[float]] = {}
        for record in run.records:
            for point in record.get("faithfulness_curve") or ():
                value = point.get(measure)
                if point["n_edges"] > 0 and value is not None and math.isfinite(value):
                    by_k.setdefault(point["n_edges"], []).append(value)
        if not by_k:
            continue
        ks = sorted(by_k)
        seeds = len(run.records)
        fig.add_trace(
            go.Scatter(
                x=ks,
                y=[_mean(by_k[k]) for k in ks],
                mode="lines+markers",
                line={"color": run.colour, "width": 1.5},
                marker={"size": 5},
                name=f"{run.label}" + (f" (mean of {seeds} seeds)" if seeds > 1 else ""),
            )
        )
        entries += 1
    fig.update_xaxes(title_text="edges kept (count, log scale)", type="log")
    fig.update_yaxes(title_text=MEASURE_LABELS.get(measure, measure))
    return styled(fig, title, legend_rows=entries)


def training_figure(title: str, history: dict[str, list[float]]):
    """Loss, faithfulness and regularisation per training step, stacked."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = [
        (key, label)
        for key, label in (
            ("loss", "loss"),
            ("faithfulness", "faithfulness"),
            ("regularisation", "regularisation"),
        )
        if history.get(key)
    ]
    fig = make_subplots(rows=max(len(rows), 1), cols=1, shared_xaxes=True, vertical_spacing=0.06)
    for row, (key, label) in enumerate(rows, start=1):
        values = history[key]
        fig.add_trace(
            go.Scatter(
                x=list(range(1, len(values) + 1)),
                y=values,
                mode="lines",
                line={"color": OKABE_ITO[row - 1], "width": 1.5},
                name=label,
            ),
            row=row,
            col=1,
        )
        fig.update_yaxes(title_text=label, row=row, col=1)
    fig.update_xaxes(title_text="training step (count)", row=max(len(rows), 1), col=1)
    return styled(fig, title, (SINGLE_COLUMN[0], 120 + 130 * max(len(rows), 1)))


def optuna_history_figure(study, title: str, objective_name: str):
    """Each trial's objective and the best so far, from an in-memory Optuna study."""
    import optuna

    fig = optuna.visualization.plot_optimization_history(study, target_name=objective_name)
    _recolour(fig)
    fig.update_xaxes(title_text="trial (number)")
    fig.update_yaxes(title_text=objective_name)
    return styled(fig, title, legend_rows=2)


def importance_figure(study, title: str):
    """Hyperparameter importances by PED-ANOVA (needs no scikit-learn); ``None`` when the
    study has too few trials for it."""
    import optuna
    from optuna.importance import PedAnovaImportanceEvaluator

    try:
        fig = optuna.visualization.plot_param_importances(
            study, evaluator=PedAnovaImportanceEvaluator()
        )
    except (ValueError, RuntimeError, ZeroDivisionError):
        return None
    fig.update_traces(marker_color=OKABE_ITO[0])
    fig.update_traces(textfont={"size": FONT_PX}, cliponaxis=False)
    fig.update_xaxes(title_text="importance (PED-ANOVA, fraction)")
    fig.update_yaxes(title_text="")
    fig = styled(fig, title)
    fig.update_layout(margin={"r": 44})
    return fig


def parallel_figure(study, title: str, objective_name: str):
    """A parallel-coordinate plot of the searched parameters and the objective."""
    import optuna

    fig = optuna.visualization.plot_parallel_coordinate(study, target_name=objective_name)
    fig.update_traces(
        line_colorscale="Cividis",
        line_colorbar={"title": {"font": {"size": FONT_PX}}},
        labelfont={"size": FONT_PX},
        tickfont={"size": FONT_PX},
        selector={"type": "parcoords"},
    )
    fig = styled(fig, title, DOUBLE_COLUMN)
    fig.update_layout(margin={"l": 70, "r": 70, "t": 60, "b": 30})
    return fig


def contour_figure(study, title: str, x: str, y: str, objective_name: str):
    """The objective over two parameters (log axes where their search is log)."""
    import optuna

    fig = optuna.visualization.plot_contour(study, params=[x, y], target_name=objective_name)
    fig.update_traces(colorscale="Cividis", selector={"type": "contour"})
    fig.update_traces(
        marker={"color": "#fff", "line": {"color": "#000", "width": 1}},
        selector={"type": "scatter"},
    )
    for axis, name in ((fig.layout.xaxis, x), (fig.layout.yaxis, y)):
        log = " (log scale)" if axis.type == "log" else ""
        axis.title.text = AXIS_LABELS.get(name, name) + log
    return styled(fig, title, (SINGLE_COLUMN[0] + 60, 300))


def pareto_figure(
    title: str,
    scored: Sequence[tuple[dict[str, Any], bool]],
    objective_name: str,
    ground_truth: str | None,
):
    """A two-objective study: its first objective against circuit size, one dot per
    complete trial coloured by its AUC (when it has one), the Pareto front ringed and
    joined as a staircase."""
    import plotly.graph_objects as go

    records = [r for r, _ in scored]
    colours = [record_auc(r, ground_truth, SCORE_TRAPEZOID) for r in records]
    coloured = all(c is not None for c in colours) and bool(colours)
    marker: dict[str, Any] = {"size": 8, "line": {"color": "#000", "width": 0.5}}
    if coloured:
        marker.update(
            color=colours,
            colorscale="Cividis",
            cmin=0.0,
            cmax=1.0,
            colorbar={
                "title": {"text": f"AUC vs<br>{ground_truth}", "font": {"size": FONT_PX}},
                "thickness": 12,
            },
        )
    else:
        marker["color"] = OKABE_ITO[0]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[r["objective"][1] for r in records],
            y=[r["objective"][0] for r in records],
            mode="markers",
            marker=marker,
            name="trials",
            text=[f"trial {r['trial']}" for r in records],
            showlegend=False,
        )
    )
    front = sorted((r for r, on in scored if on), key=lambda r: r["objective"][1])
    fig.add_trace(
        go.Scatter(
            x=[r["objective"][1] for r in front],
            y=[r["objective"][0] for r in front],
            mode="lines+markers",
            line={"shape": "hv", "color": "#000", "width": 1},
            marker={"size": 13, "color": "rgba(0,0,0,0)", "line": {"color": "#000", "width": 1.5}},
            name="Pareto front",
            showlegend=False,
        )
    )
    fig.update_xaxes(title_text="circuit size (edges)")
    fig.update_yaxes(title_text=objective_name)
    fig = styled(fig, title)
    fig.update_layout(margin={"r": 20})
    return fig


def _recolour(fig) -> None:
    for i, trace in enumerate(fig.data):
        colour = OKABE_ITO[i % len(OKABE_ITO)]
        if trace.type == "scatter":
            trace.update(marker={"color": colour}, line={"color": colour})


@dataclass
class ExportResult:
    """What :func:`export_figures` wrote.

    Attributes:
        files: Figure stem -> format -> path, relative to the output directory.
        static_error: Why static files are missing (one line), or ``None``.
        seconds_per_figure: Wall time of the static export per figure (all three formats,
            the browser's start shared out).
    """

    files: dict[str, dict[str, str]]
    static_error: str | None = None
    seconds_per_figure: float | None = None


def export_figures(
    figures: dict[str, Any], out_dir: Path, static: bool = True, timeout: float | None = None
) -> ExportResult:
    """Write each figure as HTML (plotly.js once, beside it) and JSON, and, with a
    browser, as PDF, SVG and PNG (one browser for the batch, bounded in time: see
    :mod:`harness.reporting.static_export`). Static files come all or none.

    Args:
        figures: Stem (file name without extension) -> plotly figure.
        out_dir: The figures' directory.
        static: Also try the static formats.
        timeout: Seconds the browser may take to start and for each file; ``None``
            reads ``HARNESS_STATIC_TIMEOUT`` (default 60).

    Example:
        >>> import plotly.graph_objects as go, tempfile
        >>> out = Path(tempfile.mkdtemp())
        >>> export_figures({"f": go.Figure()}, out, static=False).files
        {'f': {'html': 'f.html', 'json': 'f.json'}}
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, dict[str, str]] = {}
    for stem, fig in figures.items():
        html = out_dir / f"{stem}.html"
        fig.write_html(html, include_plotlyjs="directory", full_html=True)
        (out_dir / f"{stem}.json").write_text(fig.to_json())
        files[stem] = {"html": html.name, "json": f"{stem}.json"}
    if not static or not figures:
        return ExportResult(files)
    stems = [stem for stem in figures for _ in STATIC_FORMATS]
    jobs = [
        StaticJob(out_dir / f"{stem}.json", out_dir / f"{stem}.{fmt}", fmt, scale)
        for stem in figures
        for fmt, scale in zip(STATIC_FORMATS, STATIC_SCALES, strict=True)
    ]
    result = render_static(jobs, timeout)
    if result.error is not None:
        for job in jobs:
            job.out.unlink(missing_ok=True)
        return ExportResult(files, result.error)
    for stem, job in zip(stems, jobs, strict=True):
        files[stem][job.fmt] = job.out.name
    return ExportResult(files, None, result.seconds / len(figures))


def optuna_study_from_records(
    records: Sequence[dict[str, Any]], direction: str, log_params: Sequence[str] = ()
):
    """An in-memory Optuna study of a study's COMPLETE trials, for Optuna's plots.

    The distributions are the ranges the records span; parameters with one value are
    left out. A multi-objective study contributes its first objective.

    Args:
        records: The study's records.
        direction: ``"maximize"`` or ``"minimize"`` (of the first objective).
        log_params: Parameters searched on a log scale.

    Example:
        >>> rs = [{"state": "COMPLETE", "objective": v, "params": {"lr": lr, "k": 1}}
        ...       for v, lr in ((0.5, 0.01), (0.9, 0.1))]
        >>> study = optuna_study_from_records(rs, "maximize", ["lr"])
        >>> study.best_trial.params
        {'lr': 0.1}
    """
    import optuna
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    complete = [
        r
        for r in records
        if r["state"] == "COMPLETE" and _first_objective(r.get("objective")) is not None
    ]
    values: dict[str, list[Any]] = {}
    for record in complete:
        for name, value in record["params"].items():
            values.setdefault(name, []).append(value)
    distributions: dict[str, Any] = {}
    for name, seen in values.items():
        if len(seen) != len(complete) or len({repr(v) for v in seen}) < 2:
            continue
        if all(isinstance(v, bool) or not isinstance(v, (int, float)) for v in seen):
            distributions[name] = CategoricalDistribution(sorted(set(seen), key=repr))
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in seen):
            log = name in log_params and min(seen) > 0
            distributions[name] = IntDistribution(min(seen), max(seen), log=log)
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in seen):
            log = name in log_params and min(seen) > 0
            distributions[name] = FloatDistribution(float(min(seen)), float(max(seen)), log=log)
    study = optuna.create_study(direction=direction)
    study.add_trials(
        [
            optuna.trial.create_trial(
                params={k: r["params"][k] for k in distributions},
                distributions=distributions,
                value=_first_objective(r["objective"]),
            )
            for r in complete
        ]
    )
    return study


def _first_objective(objective: Any) -> float | None:
    value = objective[0] if isinstance(objective, list) and objective else objective
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None
