"""Held-out evaluation of a study's best settings.

A study's best value is the maximum (or minimum) over its trials of a noisy number, so it
is biased toward luck: it *selected* on it. After the search, the best trial's parameters
run again on seeds the search never used (``heldout.seeds``, default 5, seeds
``seed + HELDOUT_OFFSET + i``) and are scored exactly as a trial is, with faithfulness on
the task's test split. Each run is one line of ``runs/<study>/heldout.jsonl``; a run
already there (same trial, same seed) is not repeated, so a resumed study only adds what
is missing, and a study whose best trial changed adds the new trial's runs.

Tables and summaries show the held-out mean with its 95% interval beside the selection
value, each labelled.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.configs.study import StudyConfig
from harness.evaluation.roc import SCORE_TRAPEZOID
from harness.evaluation.run_one import run_algorithm
from harness.evaluation.stats import bootstrap_interval
from harness.records.selection import best_complete_record
from harness.records.store import append_record, read_records
from harness.study.objective import evaluate_tasks, score_outcome
from harness.study.trials import failure_reason
from harness.tasks import load

HELDOUT_OFFSET = 1_000_000  # held-out seeds start here (search seeds are seed + trial)
HELDOUT_FILE = "heldout.jsonl"


@dataclass
class HeldoutRun:
    """One held-out run of a study's best settings (one line of ``heldout.jsonl``)."""

    study: str
    trial: int  # the selected trial whose parameters ran again
    seed: int
    split: str  # the batches faithfulness was measured on
    params: dict[str, Any]
    selection_value: float | list[float] | None  # the trial's objective in the search
    selection_auc: dict[str, dict[str, float]] = field(default_factory=dict)  # its AUCs
    objective: float | list[float] | None = None
    auc: dict[str, dict[str, float]] = field(default_factory=dict)
    roc: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    faithfulness: dict[str, Any] = field(default_factory=dict)
    mib: dict[str, Any] = field(default_factory=dict)
    semantics: str | None = None
    per_task: dict[str, Any] = field(default_factory=dict)  # multi-task studies
    seconds: float = 0.0
    config_hash: str | None = None
    state: str = "COMPLETE"
    fail_reason: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, allow_nan=True)


def heldout_seeds(config: StudyConfig) -> list[int]:
    """The seeds of the held-out runs: none of them is a search seed.

    Example:
        >>> config = StudyConfig.model_validate({"name": "s", "task": "tracr-reverse"})
        >>> heldout_seeds(config)
        [1000000, 1000001, 1000002, 1000003, 1000004]
    """
    return [config.seed + HELDOUT_OFFSET + i for i in range(config.heldout.seeds)]


def heldout_path(records_file: Path) -> Path:
    """``heldout.jsonl`` beside a study's ``trials.jsonl``."""
    return Path(records_file).with_name(HELDOUT_FILE)


def selected_trial(config: StudyConfig, records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The COMPLETE trial with the best objective (None for two-objective studies, whose
    best is a Pareto front, or before any trial completed).

    Example:
        >>> config = StudyConfig.model_validate({"name": "s", "task": "tracr-reverse"})
        >>> rows = [{"trial": 0, "state": "COMPLETE", "objective": 0.5},
        ...         {"trial": 1, "state": "COMPLETE", "objective": 0.9},
        ...         {"trial": 2, "state": "FAIL", "objective": None}]
        >>> selected_trial(config, rows)["trial"]
        1
    """
    if config.objective.multi:
        return None
    return best_complete_record(records, config.objective.maximize)


def run_heldout(
    config: StudyConfig, records_file: Path, tasks: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Run the best trial's parameters on every held-out seed not yet in
    ``heldout.jsonl``; return that trial's held-out lines (old and new).

    A run that raises is recorded with state FAIL and its reason, and the others go on.
    """
    best = selected_trial(config, read_records(records_file))
    if best is None or config.heldout.seeds == 0:
        return []
    path = heldout_path(records_file)
    done = {(r["trial"], r["seed"]) for r in read_records(path) if r.get("state") == "COMPLETE"}
    for seed in heldout_seeds(config):
        if (best["trial"], seed) in done:
            continue
        if tasks is None:
            tasks = {name: load(name, **config.task_options) for name in config.task_names()}
        run = HeldoutRun(
            study=config.name,
            trial=best["trial"],
            seed=seed,
            split="test",
            params=best["params"],
            selection_value=best["objective"],
            selection_auc=best.get("auc", {}),
            config_hash=config.config_hash(),
        )
        start = time.perf_counter()
        try:
            if len(tasks) > 1:
                several = evaluate_tasks(config, tasks, best["params"], seed, final=True)
                run.objective, run.auc = several.objective, several.auc
                run.per_task, run.semantics = several.per_task, several.semantics
            else:
                (task,) = tasks.values()
                result = run_algorithm(
                    task, config.algorithm, best["params"], seed, config.ground_truth
                )
                outcome = score_outcome(
                    config, task, result.scores, result.rocs, best["params"], task.test
                )
                run.objective, run.auc, run.roc = outcome.objective, outcome.auc, outcome.roc
                run.faithfulness, run.semantics = outcome.faithfulness, result.scores.semantics
                run.mib = outcome.mib
        except Exception as error:  # recorded, and the other seeds still run
            run.state, run.fail_reason = "FAIL", failure_reason(error)
        run.seconds = round(time.perf_counter() - start, 4)
        append_record(path, run)
    return [r for r in read_records(path) if r["trial"] == best["trial"]]


@dataclass
class HeldoutSummary:
    """The held-out runs of a selected trial, summarised.

    Attributes:
        trial: The selected trial.
        selection_value: Its objective in the search (selected on: biased upward).
        runs: COMPLETE held-out runs.
        failed: FAIL held-out runs.
        objective: Mean held-out objective and its 95% bootstrap interval.
        auc: Ground truth -> (mean, low, high) of the held-out score-trapezoid AUC.
        selection_auc: Ground truth -> the selected trial's score-trapezoid AUC.
    """

    trial: int
    selection_value: float | None
    runs: int
    failed: int
    objective: tuple[float, float, float] | None
    auc: dict[str, tuple[float, float, float]]
    selection_auc: dict[str, float] = field(default_factory=dict)


def summarize_heldout(lines: list[dict[str, Any]], samples: int = 10000) -> HeldoutSummary | None:
    """Means and 95% percentile-bootstrap intervals over the held-out seeds.

    Example:
        >>> lines = [{"trial": 3, "state": "COMPLETE", "selection_value": 0.9,
        ...           "objective": v, "auc": {"resample": {"score-trapezoid": v}}}
        ...          for v in (0.6, 0.8)]
        >>> summary = summarize_heldout(lines, samples=200)
        >>> summary.trial, summary.runs, round(summary.objective[0], 3)
        (3, 2, 0.7)
    """
    if not lines:
        return None
    complete = [r for r in lines if r.get("state") == "COMPLETE"]

    def interval(values: list[float]) -> tuple[float, float, float] | None:
        values = [v for v in values if isinstance(v, (int, float)) and v == v]
        if not values:
            return None
        low, high = bootstrap_interval(values, samples)
        return sum(values) / len(values), low, high

    ground_truths = list(dict.fromkeys(gt for r in complete for gt in r["auc"]))
    auc = {
        gt: interval([r["auc"].get(gt, {}).get(SCORE_TRAPEZOID) for r in complete])
        for gt in ground_truths
    }
    selection = lines[0].get("selection_value")
    return HeldoutSummary(
        trial=lines[0]["trial"],
        selection_value=selection if isinstance(selection, (int, float)) else None,
        runs=len(complete),
        failed=len(lines) - len(complete),
        objective=interval([r.get("objective") for r in complete]),
        auc={gt: value for gt, value in auc.items() if value is not None},
        selection_auc={
            gt: conventions[SCORE_TRAPEZOID]
            for gt, conventions in (lines[0].get("selection_auc") or {}).items()
            if SCORE_TRAPEZOID in conventions
        },
    )


def format_interval(value: tuple[float, float, float] | None) -> str:
    """``mean [low, high]`` with three decimals.

    Example:
        >>> format_interval((0.5, 0.25, 0.75))
        '0.500 [0.250, 0.750]'
    """
    if value is None:
        return "–"
    return f"{value[0]:.3f} [{value[1]:.3f}, {value[2]:.3f}]"


def heldout_lines(config: StudyConfig, records_file: Path) -> list[dict[str, Any]]:
    """The held-out lines of the study's current best trial (empty when none ran)."""
    best = selected_trial(config, read_records(records_file))
    if best is None:
        return []
    return [r for r in read_records(heldout_path(records_file)) if r["trial"] == best["trial"]]


def heldout_line(lines: list[dict[str, Any]], samples: int = 10000) -> str | None:
    """One line for the terminal: held-out mean [interval] beside the selection value.

    Example:
        >>> lines = [{"trial": 3, "state": "COMPLETE", "selection_value": 1.0, "objective": v,
        ...           "split": "test", "auc": {}} for v in (0.6, 0.8)]
        >>> heldout_line(lines, samples=200)  # doctest: +ELLIPSIS
        'held-out objective (2 seeds, test split): 0.700 [0.600, 0.800]; selection value ...'
    """
    summary = summarize_heldout(lines, samples)
    if summary is None or summary.objective is None:
        return None
    selection = summary.selection_value
    failed = f"; {summary.failed} failed" if summary.failed else ""
    return (
        f"held-out objective ({summary.runs} seeds, {lines[0].get('split', 'test')} split): "
        f"{format_interval(summary.objective)}; selection value "
        f"{'–' if selection is None else f'{selection:.3f}'} (trial {summary.trial}, the "
        f"maximum of the search: biased){failed}"
    )
