"""Which figures a report draws, each with its caption: ROC and faithfulness per task and
ablation for comparisons, and per study its optimisation, importance, parallel-coordinate,
contour, Pareto and training plots (drawn by :mod:`harness.reporting.figures`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.evaluation.roc import SCORE_TRAPEZOID, SWEEP_PESSIMISTIC
from harness.reporting.figures import (
    MethodRuns,
    contour_figure,
    faithfulness_figure,
    faithfulness_measure,
    importance_figure,
    optuna_history_figure,
    optuna_study_from_records,
    parallel_figure,
    pareto_figure,
    roc_figure,
    training_figure,
)
from harness.reporting.pareto import colour_ground_truth, pareto_records
from harness.reporting.sources import Source, best_trial
from harness.reporting.tables import slug


@dataclass
class Figure:
    """A figure and its caption."""

    stem: str
    caption: str
    figure: Any


def comparison_figures(runs: list[MethodRuns]) -> list[Figure]:
    """ROC curves per task × ground truth × ablation and faithfulness per task × ablation."""
    figures = []
    groups: dict[tuple[str, str], list[MethodRuns]] = {}
    for run in runs:
        groups.setdefault((run.task, run.ablation), []).append(run)
    for (task, ablation), members in groups.items():
        records = [r for run in members for r in run.records]
        gts = list(dict.fromkeys(gt for r in records for gt in r.get("roc", {})))
        for gt in gts:
            caption = (
                f"ROC on {task} against ground truth {gt} ({ablation} ablation). Lines: "
                f"{SCORE_TRAPEZOID} (one per seed); dashed steps and markers: "
                f"{SWEEP_PESSIMISTIC} sweep points. AUC conventions in the legend."
            )
            figure = roc_figure(f"{task} · GT {gt} · {ablation} ablation", gt, members)
            figures.append(Figure(slug(f"roc-{task}-{gt}-{ablation}"), caption, figure))
        curved = [run for run in members if any(r.get("faithfulness_curve") for r in run.records)]
        if curved:
            measure = faithfulness_measure(records)
            caption = (
                f"Faithfulness of the top-k edges on {task} ({ablation} ablation, test "
                f"batches): {measure}, mean over seeds, against k on a log axis."
            )
            figure = faithfulness_figure(f"{task} · {ablation} ablation", curved, measure)
            figures.append(Figure(slug(f"faithfulness-{task}-{ablation}"), caption, figure))
    return figures


def study_figures(source: Source) -> list[Figure]:
    """A study's optimisation history, importances, parallel coordinates, learning rate ×
    λ contour, and the training curves of its best trial."""
    name, objective = source.name, source.objective_name
    study = optuna_study_from_records(source.records, source.direction, source.log_params)
    out: list[Figure] = []
    if not study.trials:
        return out
    stem = slug(name)
    out.append(
        Figure(
            f"history-{stem}",
            f"Optimisation history of {name}: {objective} per trial and the best so far.",
            optuna_history_figure(study, f"{name}: history", objective),
        )
    )
    searched = set(study.trials[0].distributions)
    if len(study.trials) >= 2 and searched:
        importance = importance_figure(study, f"{name}: importances")
        if importance is not None:
            out.append(
                Figure(
                    f"importance-{stem}",
                    f"Hyperparameter importances of {name} for {objective} (PED-ANOVA).",
                    importance,
                )
            )
        out.append(
            Figure(
                f"parallel-{stem}",
                f"Parallel coordinates of {name}: searched parameters and {objective}.",
                parallel_figure(study, f"{name}: parallel coordinates", objective),
            )
        )
    if {"learning_rate", "regularize_lambda"} <= searched and len(study.trials) >= 2:
        out.append(
            Figure(
                f"contour-{stem}",
                f"{objective} over learning rate and λ in {name} (interpolated; dots: trials).",
                contour_figure(
                    study, f"{name}: lr × λ", "learning_rate", "regularize_lambda", objective
                ),
            )
        )
    scored = pareto_records(source)
    if scored:
        gt = colour_ground_truth(source, [r for r, _ in scored])
        out.append(
            Figure(
                f"pareto-{stem}",
                f"{objective} against circuit size for every complete trial of {name}; ringed "
                f"and joined: the Pareto front"
                + (f"; colour: AUC vs {gt} ({SCORE_TRAPEZOID}), not an objective." if gt else "."),
                pareto_figure(f"{name}: Pareto front", scored, objective, gt),
            )
        )
    best = best_trial(source)
    if best is not None and best.get("history", {}).get("loss"):
        out.append(
            Figure(
                f"training-{stem}",
                f"Training curves of the best trial ({best['trial']}) of {name}, per step.",
                training_figure(f"{name}: trial {best['trial']}", best["history"]),
            )
        )
    return out
