"""Cross-task transfer: tune SP on some tasks, score it on others.

The question a researcher has on a task without a known circuit is "which SP settings
should I use here?". A transfer config (``kind: transfer``) answers it the honest way:

1. **Search** on ``train_tasks`` only: a multi-task study (``<name>-search``, with every
   fault-tolerance property of a study) whose objective is the mean (or worst) over the
   train tasks — by default a faithfulness objective, which needs no ground truth.
2. **Score** on ``test_tasks`` (disjoint from the train tasks), over ``seeds``, against
   the ground truth made for the ablation: ``sp-default`` (SP with the reference's
   default hyperparameters, under the transfer's fixed ``params`` and ablation),
   ``sp-transfer`` (the best train settings), the baselines (``acdc``, ``eap``,
   ``random``...), and with ``oracle: true`` also ``sp-oracle`` (the same search run on
   that test task alone, against its ground truth: the ceiling).

With ``folds: k`` the train/test split is k-fold over the listed tasks: fold i's tasks
are the test tasks and the others the train tasks, each fold with its own search.

Every scored run is one :class:`~harness.records.schema.TrialRecord` in
``runs/<name>/transfer.jsonl`` (``method`` names it; ``fold``, seed and split in it), so a
transfer resumes like a comparison and ``harness report`` tabulates it like a suite
comparison (per test task and method, and the suite mean).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.algorithms import get_algorithm
from harness.algorithms.params import check_seed
from harness.benchmark.cell_runner import records_mark, run_missing
from harness.benchmark.cells import Cell, check_changes, in_shard, loaded_task
from harness.configs.study import Heldout, Objective, StudyConfig, Wandb
from harness.configs.transfer import TransferConfig
from harness.engine.ablation import check_ablation
from harness.evaluation.roc import SCORE_TRAPEZOID
from harness.evaluation.run_one import algorithm_parameters, check_parameters, run_algorithm
from harness.records.check import check_records_file
from harness.records.kinds import STUDY, TRANSFER, check_kind, claim_kind
from harness.records.schema import TrialRecord, git_commit, package_versions
from harness.records.store import read_records
from harness.study.driver import preflight, records_path, run_study
from harness.study.heldout import selected_trial
from harness.study.objective import score_outcome
from harness.study.trials import failure_reason
from harness.tasks import task_specs
from harness.tasks.ablation_ground_truths import made_for

TRANSFER_FILE = "transfer.jsonl"
SP_METHODS = ("sp-default", "sp-transfer", "sp-oracle")


def splits(config: TransferConfig) -> list[tuple[int | None, list[str], list[str]]]:
    """(fold, train tasks, test tasks) of every split: one, or ``folds`` of them (tasks
    dealt to folds in their listed order: task i goes to fold i mod k).

    Example:
        >>> config = TransferConfig(kind="transfer", name="t", train_tasks=list("abcd"),
        ...     folds=2, search_space={"epochs": {"type": "int", "low": 1, "high": 2}})
        >>> splits(config)
        [(0, ['b', 'd'], ['a', 'c']), (1, ['a', 'c'], ['b', 'd'])]
    """
    if config.folds is None:
        return [(None, list(config.train_tasks), list(config.test_tasks))]
    out = []
    for fold in range(config.folds):
        test = [t for i, t in enumerate(config.train_tasks) if i % config.folds == fold]
        train = [t for t in config.train_tasks if t not in test]
        out.append((fold, train, test))
    return out


def search_config(
    config: TransferConfig, name: str, tasks: list[str], ground_truth: str | None = None
) -> StudyConfig:
    """The study that searches SP's settings on ``tasks`` (the transfer's search, or an
    oracle's on one test task, then with ``roc_auc`` against ``ground_truth``)."""
    objective = config.objective
    if ground_truth is not None:
        objective = Objective(metric="roc_auc", k=config.objective.k)
    return StudyConfig(
        name=name,
        task=tasks if len(tasks) > 1 else tasks[0],
        task_options=config.task_options,
        aggregate=config.aggregate,
        ground_truth=ground_truth or _ground_truth(config, tasks),
        algorithm="sp",
        params={**config.params, "ablation": config.ablation},
        search_space=config.search_space,
        objective=objective,
        sampler=config.sampler,
        pruner=config.pruner,
        n_trials=config.n_trials,
        seed=config.seed,
        wandb=Wandb(mode="disabled"),
        heldout=Heldout(seeds=0),  # scored on the test tasks instead
    )


def _ground_truth(config: TransferConfig, tasks: list[str]) -> str | None:
    """The ground truth made for the transfer's ablation, the same on every one of
    ``tasks`` (``None``: each task's default, where none is made for it); a one-line
    ValueError where the tasks differ."""
    specs = task_specs()
    found = {task: made_for(config.ablation, specs[task].ground_truths) for task in tasks}
    names = set(found.values())
    if len(names) != 1:
        listed = ", ".join(f"{task}: {name}" for task, name in found.items())
        raise ValueError(
            f"the tasks of one search need one ground truth made for {config.ablation} "
            f"ablation ({listed})"
        )
    return names.pop()


def preflight_transfer(config: TransferConfig) -> None:
    """Names and parameters against the registries, before anything runs."""
    check_ablation(config.ablation)
    for seed in config.seeds:
        check_seed(seed, "seeds")
    for _, train, test in splits(config):
        preflight(search_config(config, f"{config.name}-search", train))
        for task in test:
            preflight(search_config(config, f"{config.name}-check", [task]))
    for slug, params in config.baselines.items():
        check_parameters(get_algorithm(slug), params, where=f"baselines.{slug}: ")


def transfer_cells(config: TransferConfig) -> list[Cell]:
    """Every (method, test task, seed, fold) cell of ``config``, in order, each defined by
    what decides its run: the method's fixed parameters, and for the searched SP methods
    the search (space, objective, sampler, train tasks), not its outcome.

    Example:
        >>> config = TransferConfig(kind="transfer", name="t", train_tasks=["a"],
        ...     test_tasks=["b"], seeds=[0], baselines={"random": {}},
        ...     search_space={"epochs": {"type": "int", "low": 1, "high": 2}})
        >>> [c.key for c in transfer_cells(config)]  # doctest: +NORMALIZE_WHITESPACE
        [('sp-default', 'b', 'resample', 0, None), ('sp-transfer', 'b', 'resample', 0, None),
         ('random', 'b', 'resample', 0, None)]
    """
    search = config.model_dump(
        mode="json", include={"search_space", "objective", "aggregate", "sampler", "pruner", "seed"}
    )
    common = {"task_options": config.task_options, "params": config.params}
    cells: list[Cell] = []
    for fold, train, test in splits(config):
        for task in test:
            specs = {
                "sp-default": {"slug": "sp", **common},
                "sp-transfer": {"slug": "sp", **common, "search": search, "train": train},
            }
            if config.oracle:
                specs["sp-oracle"] = {"slug": "sp", **common, "search": search}
            for slug, params in config.baselines.items():
                specs[slug] = {"slug": slug, "task_options": config.task_options, "params": params}
            for method, spec in specs.items():
                for seed in config.seeds:
                    key = (method, task, config.ablation, seed, fold)
                    cells.append(Cell(key, len(cells), spec))
    return cells


def run_transfer(
    config: TransferConfig,
    runs_dir: Path,
    progress: bool = True,
    jobs: int | None = None,
    shard: tuple[int, int] | None = None,
    allow_config_change: bool = False,
) -> list[dict[str, Any]]:
    """Search on the train tasks, then score every cell (of ``shard`` only, if given)
    not yet recorded, in ``jobs`` processes (default: the config's); return the records
    of every cell of ``transfer.jsonl``, one per cell.

    Raises:
        ValueError: One line: the name (or a search's) belongs to another kind, or a
            cell's definition or a search's config changed and ``allow_config_change``
            is not set.
    """
    place = runs_dir / config.name
    path = place / TRANSFER_FILE
    check_kind(place, TRANSFER)
    check_records_file(path)
    cells = transfer_cells(config)
    mine = [cell for cell in cells if in_shard(cell, shard)]
    check_changes(mine, read_records(path), f"transfer {config.name!r}", allow_config_change)
    claim_kind(place, TRANSFER)
    chosen = _searched_params(config, runs_dir, progress, allow_config_change)
    since = records_mark(path)
    jobs = jobs or config.jobs

    def runner(todo: list[Cell]) -> TransferCell:
        return TransferCell(config, chosen)

    return run_missing(cells, runner, path, since, jobs, progress, shard, config.name)


def _searched_params(config: TransferConfig, runs_dir: Path, progress: bool, allow: bool):
    """(method, test task, fold) -> (algorithm, parameters or ``None``): the searches run
    (or resumed) first; ``None`` where a search finished no trial."""
    chosen: dict[tuple[str, str, int | None], tuple[str, dict[str, Any] | None]] = {}
    for fold, train, test in splits(config):
        suffix = "" if fold is None else f"-fold{fold}"
        search = search_config(config, f"{config.name}-search{suffix}", train)
        transferred = _best(search, runs_dir, progress, allow)
        for task_name in test:
            chosen["sp-default", task_name, fold] = (
                "sp",
                {**config.params, "ablation": config.ablation},
            )
            chosen["sp-transfer", task_name, fold] = ("sp", transferred)
            if config.oracle:
                oracle = search_config(
                    config,
                    f"{config.name}-oracle-{task_name}",
                    [task_name],
                    _ground_truth(config, [task_name]),
                )
                chosen["sp-oracle", task_name, fold] = (
                    "sp",
                    _best(oracle, runs_dir, progress, allow),
                )
            for slug, params in config.baselines.items():
                chosen[slug, task_name, fold] = (slug, params)
    return chosen


def _best(search: StudyConfig, runs_dir: Path, progress: bool, allow: bool):
    """Run (or resume) ``search``; the parameters of its selected trial, or ``None``."""
    check_kind(runs_dir / search.name, STUDY)
    run_study(search, runs_dir=runs_dir, progress=progress, allow_config_change=allow)
    best = selected_trial(search, read_records(records_path(search, runs_dir)))
    return None if best is None else best["params"]


@dataclass(frozen=True)
class TransferCell:
    """Scores one cell of a transfer (picklable, for worker processes).

    Attributes:
        config: The transfer.
        chosen: (method, test task, fold) -> (algorithm, parameters, or ``None`` where its
            search finished no trial).
    """

    config: TransferConfig
    chosen: dict[tuple[str, str, int | None], tuple[str, dict[str, Any] | None]]

    def __call__(self, cell: Cell) -> TrialRecord:
        method, task_name, _, seed, fold = cell.key
        slug, params = self.chosen[method, task_name, fold]
        task = loaded_task(task_name, self.config.task_options)
        run_params = dict(params or {})
        if "ablation" in algorithm_parameters(get_algorithm(slug)):
            run_params["ablation"] = self.config.ablation
        return _score_one(self.config, task, method, slug, run_params, seed, fold, params)


def _score_one(config, task, method, slug, params, seed, fold, chosen) -> TrialRecord:
    record = TrialRecord(
        study=config.name,
        trial=0,
        state="RUNNING",
        algorithm=slug,
        task=task.slug,
        ground_truth=None,
        params={**params, "ablation": config.ablation},
        seed=seed,
        versions=package_versions(),
        git_commit=git_commit(),
        n_edges_total=task.patchable.n_edges,
        device=str(task.patchable.device),
        method=method,
        fold=fold,
    )
    start = time.perf_counter()
    try:
        if chosen is None:
            raise ValueError(f"{method}: its search finished no trial to take settings from")
        run = run_algorithm(task, slug, params, seed)
        study = search_config(config, config.name, [task.slug])
        outcome = score_outcome(study, task, run.scores, run.rocs, params, task.test)
        # score-based AUC only: one circuit per run is no sweep (as in comparisons)
        record.auc = {
            gt: {SCORE_TRAPEZOID: auc[SCORE_TRAPEZOID]} for gt, auc in outcome.auc.items()
        }
        record.roc = outcome.roc
        record.faithfulness, record.semantics = outcome.faithfulness, run.scores.semantics
        record.mib = outcome.mib
        if run.scores.circuit is not None:
            record.circuit_size = len(run.scores.circuit)
        record.state = "COMPLETE"
    except Exception as error:  # recorded; the other runs go on
        record.state, record.fail_reason = "FAIL", failure_reason(error)
    record.seconds = round(time.perf_counter() - start, 4)
    return record
