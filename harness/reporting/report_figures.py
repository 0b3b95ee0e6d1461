"""Which figures a report draws, each with a caption that states what a reader needs to
use it: the AUC convention, the ground truth, the ablation, the seeds and the intervals.

A comparison gives one ROC grid and one faithfulness grid (up to a few tasks) and, over a
suite of tasks, the AUC per task; a study gives its history, parameter importances,
slices, parallel coordinates, contour, Pareto front, best trial's training and held-out
result. The drawing is in :mod:`~harness.reporting.comparison_grids`,
:mod:`~harness.reporting.suite_figure`, :mod:`~harness.reporting.study_plots`,
:mod:`~harness.reporting.parallel_coordinates` and :mod:`~harness.reporting.heldout_figure`.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.configs.figure import FigureConfig
from harness.evaluation.roc import SCORE_TRAPEZOID, SWEEP_PESSIMISTIC
from harness.reporting.comparison_grids import (
    faithfulness_grid,
    faithfulness_rows,
    roc_columns,
    roc_grid,
)
from harness.reporting.conventions import CONVENTION_NOTES
from harness.reporting.figures import (
    MEASURE_LABELS,
    Figure,
    MethodRuns,
    faithfulness_measure,
    optuna_study_from_records,
)
from harness.reporting.heldout_figure import heldout_figure
from harness.reporting.parallel_coordinates import parallel_figure
from harness.reporting.pareto import colour_ground_truth, pareto_records
from harness.reporting.sources import Source, best_trial
from harness.reporting.study_plots import (
    contour_figure,
    history_figure,
    importance_figure,
    pareto_figure,
    slice_figure,
    training_figure,
)
from harness.reporting.suite_figure import suite_figure
from harness.reporting.tables import slug
from harness.tasks.ablation_ground_truths import ABLATION_GROUND_TRUTHS

__all__ = ["Figure", "comparison_figures", "seeds_note", "study_figures", "suite_figures"]


def seeds_note(runs: Sequence[MethodRuns]) -> str:
    """How many seeds each method's values average: one number when all agree.

    Example:
        >>> two, one = MethodRuns("sp", "t", "zero", [{}, {}]), MethodRuns("eap", "t", "zero", [{}])
        >>> seeds_note([two, one]), seeds_note([two])
        ('seeds per method: sp: 2, eap: 1', '2 seeds per method')
    """
    counts: dict[str, set[int]] = {}
    for run in runs:
        counts.setdefault(run.label, set()).add(len(run.records))
    if len({n for ns in counts.values() for n in ns}) == 1:
        n = next(iter(next(iter(counts.values()))))
        return f"{n} seed{'s' if n != 1 else ''} per method"
    parts = [f"{label}: {'–'.join(map(str, sorted(ns)))}" for label, ns in counts.items()]
    return "seeds per method: " + ", ".join(parts)


def _tuned_note(runs: Sequence[MethodRuns]) -> str:
    if not any(" tuned (" in run.label for run in runs):
        return ""
    return (
        " A tuned row (open markers, dashed): a study's best settings run again on held-out "
        "seeds, never its selection value."
    )


def comparison_figures(runs: list[MethodRuns], config: FigureConfig) -> list[Figure]:
    """The ROC grid and the faithfulness grid of the report's method runs."""
    figures = []
    tasks = ", ".join(dict.fromkeys(run.task for run in runs))
    roc = roc_grid(runs, config)
    if roc is not None:
        columns = roc_columns(runs)
        ablations = ", ".join(dict.fromkeys(a for a, _ in columns))
        gts = ", ".join(dict.fromkeys(gt for _, gt in columns))
        caption = (
            f"ROC curves on {tasks} (rows) under each ablation ({ablations}) against each "
            f"ground truth ({gts}) (columns). Solid lines: each seed's ranking of all "
            f"edges ({SCORE_TRAPEZOID}: "
            f"{CONVENTION_NOTES[SCORE_TRAPEZOID]}); dashed steps through markers: each "
            f"seed's sweep, for the methods that sweep ({SWEEP_PESSIMISTIC}: "
            f"{CONVENTION_NOTES[SWEEP_PESSIMISTIC]}). Numbers in each panel: each method's "
            f"AUC, {SCORE_TRAPEZOID} | {SWEEP_PESSIMISTIC}, mean over seeds "
            f"({seeds_note(runs)}); no intervals drawn (the tables auc-<ground truth>-"
            "<convention> give the 95% percentile-bootstrap interval over seeds)."
            + _tuned_note(runs)
        )
        figures.append(Figure("roc", caption, roc))
    faithfulness = faithfulness_grid(runs, config)
    if faithfulness is not None:
        rows = faithfulness_rows(runs)
        members = [run for run in runs if (run.task, run.ablation) in rows]
        measures = {
            faithfulness_measure([r for run in members if run.task == t for r in run.records])
            for t, _ in rows
        }
        measured = "; ".join(MEASURE_LABELS.get(m, m) for m in sorted(measures))
        caption = (
            f"Faithfulness against circuit size, a row per task and ablation (the ablation "
            f"of the runs; no ground truth involved; test batches). Left: the divergence of "
            f"the circuit of the top-k edges by |score| from the full model ({measured}), "
            f"against k (log scale; k = 0 left out). Right: MIB's normalised faithfulness "
            f"f = (m(C) − m(∅)) / (m(M) − m(∅)) of the top fraction of edges by |score| (the "
            f"ranking of MIB's CMD; m: the task's metric), at MIB's ten fractions (log "
            f"scale). Lines: means over seeds ({seeds_note(members)}); no intervals drawn."
            + _tuned_note(members)
        )
        figures.append(Figure("faithfulness", caption, faithfulness))
    return figures


def suite_figures(tasks, runs: Sequence[MethodRuns], config: FigureConfig) -> list[Figure]:
    """The AUC per task of a suite comparison, from :func:`~harness.reporting.suite.task_frame`."""
    figure = suite_figure(tasks, config)
    if figure is None:
        return []
    matched = "; ".join(f"{a}: {' or '.join(gts)}" for a, gts in ABLATION_GROUND_TRUTHS.items())
    conventions = "; ".join(
        f"{c}: {CONVENTION_NOTES[c]}" for c in dict.fromkeys(tasks["convention"])
    )
    seeds = seeds_note([run for run in runs if " tuned (" not in run.label])
    caption = (
        f"AUC per task (rows) and method, one panel per ablation and AUC convention "
        f"({conventions}), each ablation against the ground truth made for it ({matched}). "
        f"Marker: mean over seeds ({seeds}); bar: 95% percentile-bootstrap interval over "
        "seeds. Tasks ordered by how much the methods differ: the gap between the best and "
        "the worst non-random method's means, averaged over the panels, largest at the top."
    )
    return [Figure("suite-auc", caption, figure)]


def study_figures(source: Source, config: FigureConfig) -> list[Figure]:
    """A study's figures (see the module docstring), each with its caption."""
    name, objective = source.name, source.objective_name
    study = optuna_study_from_records(source.records, source.direction, source.log_params)
    stem = slug(name)
    states = [r["state"] for r in source.records]
    counts = ", ".join(f"{states.count(s)} {s.lower()}" for s in dict.fromkeys(states))
    about = f"{name} ({counts}; objective: {objective}{_objective_convention(source)})"
    out: list[Figure] = []
    if study.trials:
        out.append(
            Figure(
                f"history-{stem}",
                f"Optimisation history of {about}: each complete trial's objective and the "
                "best so far (pruned and failed trials have no objective).",
                history_figure(study, objective, config),
            )
        )
    searched = set(study.trials[0].distributions) if study.trials else set()
    if len(study.trials) >= 2 and searched:
        importance = importance_figure(study, config)
        if importance is not None:
            out.append(
                Figure(
                    f"importance-{stem}",
                    f"Parameter importances in {about}, by PED-ANOVA over its complete trials.",
                    importance,
                )
            )
    out += _trial_figures(source, about, stem, config)
    if {"learning_rate", "regularize_lambda"} <= searched and len(study.trials) >= 2:
        out.append(
            Figure(
                f"contour-{stem}",
                f"The objective over learning rate and λ in {about}, interpolated between "
                "the complete trials (dots).",
                contour_figure(study, "learning_rate", "regularize_lambda", objective, config),
            )
        )
    return out + _result_figures(source, about, stem, config)


def _objective_convention(source: Source) -> str:
    return f", AUC convention {SCORE_TRAPEZOID}" if source.objective_name.startswith("AUC") else ""


def _trial_figures(source: Source, about: str, stem: str, config: FigureConfig) -> list[Figure]:
    """The slice and parallel-coordinate figures, drawn from the records."""
    out = []
    maximize = source.direction == "maximize"
    sliced = slice_figure(source.records, source.objective_name, source.log_params, config)
    if sliced is not None:
        out.append(
            Figure(
                f"slice-{stem}",
                f"The objective of each complete trial of {about} against each searched "
                "parameter (log scale where it was searched on one); colour: trial number.",
                sliced,
            )
        )
    parallel = parallel_figure(
        source.records, source.objective_name, maximize, source.log_params, config
    )
    if parallel is not None:
        out.append(
            Figure(
                f"parallel-{stem}",
                f"The trials of {about} in parallel coordinates: an axis per searched "
                "parameter, the last the objective. Complete trials are coloured by their "
                "objective; pruned (grey, dashed) and failed (vermillion, dotted) trials have "
                "none and stop at the last parameter; the best trial is black.",
                parallel,
            )
        )
    return out


def _result_figures(source: Source, about: str, stem: str, config: FigureConfig) -> list[Figure]:
    """The Pareto front, the best trial's training curves and its held-out result."""
    out = []
    objective = source.objective_name
    scored = pareto_records(source)
    if scored:
        gt = colour_ground_truth(source, [r for r, _ in scored])
        out.append(
            Figure(
                f"pareto-{stem}",
                f"{objective} against circuit size for every complete trial of {about}; "
                "ringed and joined: the Pareto front"
                + (f"; colour: AUC vs {gt} ({SCORE_TRAPEZOID}), not an objective." if gt else "."),
                pareto_figure(scored, objective, gt, config),
            )
        )
    best = best_trial(source)
    if best is not None and best.get("history", {}).get("loss"):
        out.append(
            Figure(
                f"training-{stem}",
                f"Training curves of the best trial ({best['trial']}) of {about}, per step.",
                training_figure(best["history"], config),
            )
        )
    lines = [r for r in source.heldout if best is not None and r["trial"] == best["trial"]]
    heldout = heldout_figure(lines, objective, source.bootstrap_samples, config)
    if heldout is not None:
        done = [r for r in lines if r.get("state") == "COMPLETE"]
        split = done[0].get("split", "test") if done else "test"
        out.append(
            Figure(
                f"heldout-{stem}",
                f"The choice of {about} on seeds the search never used: the selected trial's "
                f"settings run again on {len(done)} held-out seeds (faithfulness on the "
                f"{split} split). Per value, above: the selection, its value in the search "
                "(biased upward by the choice); below: each held-out seed (dots) and their "
                "mean with its 95% percentile-bootstrap interval. AUCs in the "
                f"{SCORE_TRAPEZOID} convention.",
                heldout,
            )
        )
    return out
