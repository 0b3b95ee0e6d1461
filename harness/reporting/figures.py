"""What a report's figures are made of, and how they are written.

Every figure is built from trial records alone (:class:`MethodRuns`: one method's runs on
one task and ablation), in one style at print size (:mod:`harness.reporting.figure_style`).
:func:`export_figures` writes each as interactive HTML and as the figure's JSON, and, with
a browser, in the static formats the report's ``figure`` section asks for (PDF, SVG, PNG);
without one, or with one that does not answer in time, only the HTML and JSON are written
(see :mod:`harness.reporting.static_export`). plotly, kaleido and optuna are imported when
a figure is built, never at import time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.reporting.figure_style import PNG_SCALE
from harness.reporting.static_export import StaticJob, render_static

STATIC_FORMATS = ("pdf", "svg", "png")
MEASURE_LABELS = {
    "kl_div": "KL to full model (nats)",
    "mse": "MSE to full model (output²)",
}
MEASURE_SHORT = {"kl_div": "KL (nats)", "mse": "MSE"}


@dataclass
class MethodRuns:
    """One method's runs on one task and ablation: the seeds of a comparison, or a study's
    best trial.

    Attributes:
        label: The name in legends and tables.
        task: The task's slug.
        ablation: The ablation the runs used.
        records: The COMPLETE records (one per seed).
    """

    label: str
    task: str
    ablation: str
    records: list[dict[str, Any]] = field(default_factory=list)


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


def faithfulness_measure(records: Sequence[dict[str, Any]]) -> str:
    """``kl_div`` for tasks with a next-token output, ``mse`` for numerical ones (whose
    records have no ``correct_percent``).

    Example:
        >>> faithfulness_measure([{"faithfulness_curve": [{"n_edges": 1, "mse": 0.1}]}])
        'mse'
    """
    points = [p for r in records for p in r.get("faithfulness_curve") or ()]
    return "kl_div" if any("correct_percent" in p for p in points) else "mse"


@dataclass
class Figure:
    """A report's figure, its file stem and its caption.

    Attributes:
        stem: The file name stem (``figures/<stem>.pdf``...).
        caption: What it shows: the convention, ground truth, ablation, seeds and
            intervals where they apply.
        figure: The plotly figure.
    """

    stem: str
    caption: str
    figure: Any


@dataclass
class ExportResult:
    """What :func:`export_figures` wrote.

    Attributes:
        files: Figure stem -> format -> path, relative to the output directory.
        static_error: Why static files are missing (one line), or ``None``.
        seconds_per_figure: Wall time of the static export per figure (all its formats,
            the browser's start shared out).
    """

    files: dict[str, dict[str, str]]
    static_error: str | None = None
    seconds_per_figure: float | None = None


def export_figures(
    figures: dict[str, Any],
    out_dir: Path,
    static: bool = True,
    timeout: float | None = None,
    formats: Sequence[str] = STATIC_FORMATS,
) -> ExportResult:
    """Write each figure as HTML (plotly.js once, beside it) and JSON, and, with a
    browser, in the static ``formats`` (one browser for the batch, bounded in time: see
    :mod:`harness.reporting.static_export`); PNGs at :data:`PNG_SCALE` times the layout.
    Static files come all or none.

    Args:
        figures: Stem (file name without extension) -> plotly figure.
        out_dir: The figures' directory.
        static: Also try the static formats.
        timeout: Seconds the browser may take to start and for each file; ``None``
            reads ``HARNESS_STATIC_TIMEOUT`` (default 60).
        formats: Which of ``pdf``, ``svg``, ``png``.

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
    if not static or not figures or not formats:
        return ExportResult(files)
    stems = [stem for stem in figures for _ in formats]
    jobs = [
        StaticJob(out_dir / f"{stem}.json", out_dir / f"{stem}.{fmt}", fmt, _scale(fmt))
        for stem in figures
        for fmt in formats
    ]
    result = render_static(jobs, timeout)
    if result.error is not None:
        for job in jobs:
            job.out.unlink(missing_ok=True)
        return ExportResult(files, result.error)
    for stem, job in zip(stems, jobs, strict=True):
        files[stem][job.fmt] = job.out.name
    return ExportResult(files, None, result.seconds / len(figures))


def _scale(fmt: str) -> float:
    return PNG_SCALE if fmt == "png" else 1.0


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
