"""Methods compared side by side: tasks × ground truths × ablations × seeds.

A comparison config (``kind: compare``) names the methods and their parameters. Every
(method, task, ablation, seed) run is one :class:`~harness.records.schema.TrialRecord`, so a
comparison resumes like a study: runs already recorded are not repeated.

Two AUCs per run and ground truth, each named by its convention:

- ``score-trapezoid`` from the method's one ranking of all edges;
- ``sweep-pessimistic`` from a sweep of circuits, one per run of the sweep: ACDC's
  threshold sweep, or SP's λ sweep (``sweep: {regularize_lambda: [...]}``; each λ trains
  SP once and contributes its final circuit). Methods without a sweep have none.

Tables give the mean over seeds with a 95% percentile-bootstrap interval, and wall time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.algorithms import get_algorithm
from harness.algorithms.params import check_seed, check_value
from harness.algorithms.sp_batched import PER_TRIAL, subnetwork_probing_batched
from harness.benchmark.cell_runner import records_mark, run_missing
from harness.benchmark.cells import Cell, check_changes, in_shard, loaded_task
from harness.configs.compare import CompareConfig
from harness.engine.ablation import check_ablation
from harness.evaluation.faithfulness_curve import faithfulness_curve
from harness.evaluation.mib import mib_metrics
from harness.evaluation.roc import SCORE_TRAPEZOID, SWEEP_PESSIMISTIC, sweep_roc
from harness.evaluation.run_one import algorithm_parameters, check_parameters, run_algorithm
from harness.evaluation.stats import bootstrap_interval
from harness.records.check import check_records_file
from harness.records.kinds import COMPARE, STUDY, check_kind, claim_kind
from harness.records.schema import TrialRecord, git_commit, package_versions, thin_curve
from harness.records.selection import best_complete_record, method_label, one_per_cell
from harness.records.store import read_records
from harness.study.driver import BATCH_SHARED
from harness.study.trials import failure_reason
from harness.tasks import get_task_spec
from harness.tasks.base import check_metric_supported, check_task_options

# The ACDC paper (Conmy et al. 2023), edge-level ROC AUC on tracr against its own
# zero-ablation circuits, sweep-based with the pessimistic staircase.
PAPER_AUC = {
    ("tracr-reverse", "zero", "acdc"): 1.000,
    ("tracr-proportion", "zero", "acdc"): 1.000,
    ("tracr-reverse", "zero", "sp"): 0.801,
    ("tracr-proportion", "zero", "sp"): 0.829,
    ("tracr-reverse", "resample", "acdc"): 0.200,
    ("tracr-proportion", "resample", "acdc"): 0.679,
    ("tracr-reverse", "resample", "sp"): 0.193,
    ("tracr-proportion", "resample", "sp"): 0.525,
}
PAPER_GROUND_TRUTH = "acdc-zero"


def preflight_compare(config: CompareConfig) -> None:
    """Names and parameters against the registries, before anything runs."""
    specs = [get_task_spec(task) for task in config.tasks]
    for task_spec in specs:
        check_task_options(task_spec, config.task_options)
    for ablation in config.ablations:
        check_ablation(ablation)
    for seed in config.seeds:
        check_seed(seed, "seeds")
    for slug, method in config.methods.items():
        algorithm = algorithm_of(config, slug)
        spec = get_algorithm(algorithm)
        where = f"methods.{slug}: "
        thresholds = method.params.get("thresholds")
        if isinstance(thresholds, list):  # a single number, or a bad type: checked below
            if not thresholds:
                raise ValueError(f"method {slug!r}: the threshold sweep is empty")
            bad = [t for t in thresholds if not isinstance(t, (int, float)) or t <= 0]
            if bad:
                raise ValueError(f"method {slug!r}: thresholds must be positive, got {bad[0]!r}")
        check_parameters(spec, method.params, where=where)
        check_parameters(spec, method.sweep, values=False, where=where)
        for name, values in method.sweep.items():
            for value in values:
                check_value(algorithm, name, value, f"{where}sweep: ")
        for task, params in method.per_task.items():
            if task not in config.tasks:
                raise ValueError(f"method {slug!r} has parameters for {task!r}, not a task here")
            check_parameters(spec, params, where=where)
        for task_spec in specs:
            params = {**method.params, **method.per_task.get(task_spec.slug, {})}
            check_metric_supported(task_spec, params)


def algorithm_of(config: CompareConfig, slug: str) -> str:
    """The registered method a comparison's entry ``slug`` runs (its ``algorithm``, else
    its name).

    Example:
        >>> config = CompareConfig.model_validate({"kind": "compare", "name": "c",
        ...     "tasks": ["t"], "methods": {"sp": {}, "sp-tuned": {"algorithm": "sp"}}})
        >>> algorithm_of(config, "sp-tuned"), algorithm_of(config, "sp")
        ('sp', 'sp')
    """
    return config.methods[slug].algorithm or slug


def _runs(config: CompareConfig) -> Iterator[tuple[str, str, str, int]]:
    for task in config.tasks:
        for ablation in config.ablations:
            for slug in config.methods:
                for seed in config.seeds:
                    yield slug, task, ablation, seed


def compare_cells(config: CompareConfig) -> list[Cell]:
    """Every (method, task, ablation, seed) cell of ``config``, task by task, each defined
    by the method's parameters (``per_task`` ones merged), sweep and study, and the task's
    options (see :mod:`harness.benchmark.cells`).

    Example:
        >>> config = CompareConfig.model_validate({"kind": "compare", "name": "c",
        ...     "tasks": ["t"], "seeds": [0, 1], "methods": {"eap": {}}})
        >>> [(c.number, c.key) for c in compare_cells(config)]
        [(0, ('eap', 't', 'resample', 0, None)), (1, ('eap', 't', 'resample', 1, None))]
    """
    cells = []
    for number, (slug, task, ablation, seed) in enumerate(_runs(config)):
        method = config.methods[slug]
        spec = {
            "params": {**method.params, **method.per_task.get(task, {})},
            **({"algorithm": method.algorithm} if method.algorithm else {}),
            "sweep": method.sweep,
            "from_study": method.from_study and method.from_study.format(task=task),
            "task_options": config.task_options,
        }
        cells.append(Cell((slug, task, ablation, seed, None), number, spec))
    return cells


def run_compare(
    config: CompareConfig,
    runs_dir: Path,
    progress: bool = True,
    jobs: int | None = None,
    shard: tuple[int, int] | None = None,
    allow_config_change: bool = False,
) -> list[dict[str, Any]]:
    """Run every cell of ``config`` (of ``shard`` only, if given) that has no COMPLETE
    record, in ``jobs`` processes (default: the config's), and return the records of
    every cell, one per cell (see :mod:`harness.benchmark.cell_runner`).

    Raises:
        ValueError: One line: the name belongs to a study or transfer, or a cell's
            definition changed since its record and ``allow_config_change`` is not set.
    """
    place = runs_dir / config.name
    path = place / "trials.jsonl"
    check_kind(place, COMPARE)  # before reading: another kind's records are not ours
    check_records_file(path)
    since = records_mark(path)
    records = read_records(path)
    cells = compare_cells(config)
    mine = [cell for cell in cells if in_shard(cell, shard)]
    check_changes(mine, records, f"comparison {config.name!r}", allow_config_change)
    studied = {  # read once, and a missing study refused before anything is written
        (slug, task_name): study_params(config, slug, task_name, runs_dir)
        for slug, task_name in dict.fromkeys(cell.key[:2] for cell in mine)
    }
    claim_kind(place, COMPARE)

    def runner(todo: list[Cell]) -> CompareCell:
        return CompareCell(config, studied)

    jobs = jobs or config.jobs
    return run_missing(cells, runner, path, since, jobs, progress, shard, config.name)


@dataclass(frozen=True)
class CompareCell:
    """Runs one cell of a comparison (picklable, for worker processes).

    Attributes:
        config: The comparison.
        studied: (method, task) -> the parameters its ``from_study`` gave.
    """

    config: CompareConfig
    studied: dict[tuple[str, str], dict[str, Any]]

    def __call__(self, cell: Cell) -> TrialRecord:
        slug, task_name, ablation, seed, _ = cell.key
        task = loaded_task(task_name, self.config.task_options)
        from_study = self.studied[slug, task_name]
        return _run_one(self.config, task, slug, ablation, seed, cell.number, from_study)


def study_params(config: CompareConfig, slug: str, task_name: str, runs_dir: Path):
    """The parameters method ``slug`` takes from its ``from_study`` on ``task_name`` (none
    without one); a one-line ValueError naming the method where that study has no result."""
    method = config.methods[slug]
    if not method.from_study:
        return {}
    try:
        return best_params(method.from_study.format(task=task_name), runs_dir)
    except ValueError as error:
        raise ValueError(f"methods.{slug}.from_study: {error}") from None


def _method_params(config: CompareConfig, slug: str, task, ablation: str, from_study: dict):
    method = config.methods[slug]
    params: dict[str, Any] = dict(from_study)
    params.update(method.params)
    params.update(method.per_task.get(task.slug, {}))
    if "ablation" in algorithm_parameters(get_algorithm(algorithm_of(config, slug))):
        params["ablation"] = ablation
    return params


def best_params(study: str, runs_dir: Path) -> dict[str, Any]:
    """The parameters of a study's best COMPLETE trial, from its records: the direction
    its records carry (records older than that field: the one in its SQLite storage under
    ``runs_dir``, else the largest objective, with a warning).

    Example:
        >>> import tempfile
        >>> from harness.records.schema import TrialRecord
        >>> from harness.records.store import append_record
        >>> runs = Path(tempfile.mkdtemp())
        >>> for i, cmd in enumerate([0.4, 0.1, 0.7]):  # CMD: lower is better
        ...     _ = append_record(runs / "s" / "trials.jsonl", TrialRecord(
        ...         "s", i, "COMPLETE", "sp", "t", None, {"epochs": i}, 0, objective=cmd,
        ...         direction="minimize"))
        >>> best_params("s", runs)
        {'epochs': 1}
    """
    check_kind(runs_dir / study, STUDY)
    records = read_records(runs_dir / study / "trials.jsonl")
    complete = [r for r in records if r.get("state") == "COMPLETE"]
    best = (
        best_complete_record(complete, _maximizes(study, records, runs_dir)) if complete else None
    )
    if best is None:
        raise ValueError(
            f"study {study!r} has no complete trials with an objective under {runs_dir} to "
            "take parameters from"
        )
    return {k: v for k, v in best["params"].items() if k != "ablation"}


def _maximizes(study: str, records: list[dict[str, Any]], runs_dir: Path) -> bool:
    directions = {r["direction"] for r in records if r.get("direction")}
    if len(directions) == 1:
        return directions == {"maximize"}
    if len(directions) > 1:
        raise ValueError(f"study {study!r}: its records disagree on the objective's direction")
    database = runs_dir / study / "study.db"
    if database.exists():
        import optuna

        loaded = optuna.load_study(study_name=study, storage=f"sqlite:///{database}")
        return loaded.directions[0] == optuna.study.StudyDirection.MAXIMIZE
    import warnings

    warnings.warn(
        f"study {study!r}: its records do not say the objective's direction and it has no "
        "study.db; taking the trial with the largest objective",
        stacklevel=2,
    )
    return True


def _run_one(config, task, slug, ablation, seed, number, from_study) -> TrialRecord:
    params = _method_params(config, slug, task, ablation, from_study)
    algorithm = algorithm_of(config, slug)
    record = TrialRecord(  # the ablation is recorded for every method, to group the table
        study=config.name,
        trial=number,
        state="RUNNING",
        algorithm=algorithm,
        method=slug if slug != algorithm else None,
        task=task.slug,
        ground_truth=None,
        params={**params, "ablation": ablation},
        seed=seed,
        versions=package_versions(),
        git_commit=git_commit(),
        n_edges_total=task.patchable.n_edges,
        device=str(task.patchable.device),
    )
    start = time.perf_counter()
    try:
        run = run_algorithm(task, algorithm, params, seed)
        circuits = list(getattr(run.scores, "sweep", ()) or ())
        for name, values in config.methods[slug].sweep.items():
            circuits += _sweep_circuits(task, algorithm, params, name, values, seed)
        record.history = {k: v for k, v in run.scores.history.items() if v}
        record.semantics = run.scores.semantics
        for gt, roc in run.rocs.items():
            record.auc[gt] = {SCORE_TRAPEZOID: roc.auc}
            record.roc[gt] = thin_curve(list(roc.fpr), list(roc.tpr))
            if circuits:
                swept_roc = sweep_roc(
                    [c for _, c in circuits], task.official_edges(gt), run.scores.edge_names
                )
                record.auc[gt][SWEEP_PESSIMISTIC] = swept_roc.auc
                record.sweep_roc[gt] = {"fpr": list(swept_roc.fpr), "tpr": list(swept_roc.tpr)}
        if circuits:
            record.sweep = [{"value": v, "n_edges": len(c)} for v, c in circuits]
        if run.scores.circuit is not None:
            record.circuit_size = len(run.scores.circuit)
        record.faithfulness_curve = faithfulness_curve(
            task.patchable, task.test, run.scores, edge_counts(task.patchable.n_edges), ablation
        )
        record.mib = mib_metrics(task.patchable, task.test, run.scores, ablation).as_record()
        record.peak_memory_mb, record.peak_memory_kind = run.peak_memory_mb, run.peak_memory_kind
        record.state = "COMPLETE"
    except Exception as error:
        record.state = "FAIL"
        record.fail_reason = failure_reason(error)
    record.seconds = round(time.perf_counter() - start, 4)
    return record


def edge_counts(n_edges: int, per_decade: int = 6) -> list[int]:
    """Log-spaced circuit sizes from 1 to ``n_edges`` (0 and ``n_edges`` included).

    Example:
        >>> edge_counts(23)
        [0, 1, 2, 3, 5, 7, 11, 16, 23]
    """
    import numpy as np

    decades = np.log10(n_edges)
    points = np.unique(
        np.round(10 ** np.linspace(0, decades, max(2, int(decades * per_decade) + 1)))
    )
    return sorted({0, n_edges, *(int(p) for p in points if 1 <= p <= n_edges)})


def _sweep_circuits(task, slug, params, name, values, seed) -> list[tuple[Any, frozenset[str]]]:
    """One circuit per swept value; SP's per-trial settings train in one batched pass."""
    batchable = (
        slug == "sp"
        and name in PER_TRIAL
        and all(k in PER_TRIAL or k in BATCH_SHARED for k in params)
    )
    if not batchable:
        runs = [run_algorithm(task, slug, {**params, name: v}, seed).scores for v in values]
    else:
        shared = {k: v for k, v in params.items() if k in BATCH_SHARED}
        shared.setdefault("faithfulness_target", task.faithfulness_target)
        per_trial = {k: v for k, v in params.items() if k in PER_TRIAL}
        trials = [{**per_trial, "seed": seed, name: value} for value in values]
        runs = subnetwork_probing_batched(task.patchable, task.train, trials, **shared)
    return [(v, s.circuit) for v, s in zip(values, runs, strict=True) if s.circuit is not None]


def comparison_table(records: list[dict[str, Any]], samples: int = 10000):
    """One row per task × ground truth × ablation × method (a pandas DataFrame); a cell
    recorded twice counts once (see :func:`harness.records.selection.one_per_cell`)."""
    import pandas as pd

    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in one_per_cell(records):
        if r["state"] != "COMPLETE":
            continue
        for gt in r["auc"]:
            ablation = r["params"].get("ablation", "–")
            key = (r["task"], gt, ablation, method_label(r), r["algorithm"])
            groups.setdefault(key, []).append(r)
    rows = []
    for (task, gt, ablation, method, algorithm), runs in sorted(groups.items()):
        row: dict[str, Any] = {
            "task": task,
            "ground truth": gt,
            "ablation": ablation,
            "method": method,
            "seeds": len(runs),
        }
        for convention in (SCORE_TRAPEZOID, SWEEP_PESSIMISTIC):
            values = [r["auc"][gt][convention] for r in runs if convention in r["auc"][gt]]
            if values:
                low, high = bootstrap_interval(values, samples)
                row[f"AUC {convention}"] = sum(values) / len(values)
                row[f"CI {convention}"] = (low, high)
            else:
                row[f"AUC {convention}"] = None
                row[f"CI {convention}"] = None
        for name in ("cpr", "cmd"):  # MIB's, signed / absolute ranking (not per ground truth)
            values = [r["mib"][name] for r in runs if r.get("mib", {}).get(name) is not None]
            row[name.upper()] = sum(values) / len(values) if values else None
        row["seconds"] = sum(r["seconds"] for r in runs) / len(runs)
        paper = PAPER_AUC.get((task, ablation, algorithm)) if gt == PAPER_GROUND_TRUTH else None
        row["paper AUC (sweep-pessimistic)"] = paper
        rows.append(row)
    return pd.DataFrame(rows)


def comparison_markdown(name: str, table) -> str:
    """The table as Markdown, conventions named in the header."""
    lines = [
        f"# Comparison {name}",
        "",
        "AUC conventions: **score-trapezoid** (one ranking of all edges by |score|, ties "
        "together, trapezoid rule) and **sweep-pessimistic** (the ACDC paper's: one circuit per "
        "sweep run — ACDC thresholds, SP λ values — dominated points dropped, "
        "Σ (1 − FPR_i)(TPR_i − TPR_{i−1})). Mean over seeds [95% bootstrap interval]. "
        "Paper: Conmy et al. 2023 against their zero-ablation tracr circuits (`acdc-zero`). "
        "CPR and CMD: MIB's faithfulness areas over its ten circuit sizes (test batches, the "
        "run's ablation), edges ranked by signed score for CPR and by |score| for CMD; mean "
        "over seeds.",
        "",
        "| task | ground truth | ablation | method | seeds | AUC score-trapezoid | "
        "AUC sweep-pessimistic | paper (sweep) | CPR (signed) | CMD (absolute) | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, row in table.iterrows():
        cells = []
        for convention in (SCORE_TRAPEZOID, SWEEP_PESSIMISTIC):
            mean, ci = row[f"AUC {convention}"], row[f"CI {convention}"]
            cells.append(
                "–" if mean is None or mean != mean else f"{mean:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"
            )
        paper = row["paper AUC (sweep-pessimistic)"]
        paper_cell = "–" if paper is None or paper != paper else f"{paper:.3f}"
        mib = ["–" if v is None or v != v else f"{v:.3f}" for v in (row["CPR"], row["CMD"])]
        lines.append(
            f"| {row['task']} | {row['ground truth']} | {row['ablation']} | {row['method']} | "
            f"{row['seeds']} | {cells[0]} | {cells[1]} | {paper_cell} | {mib[0]} | {mib[1]} | "
            f"{row['seconds']:.2f} |"
        )
    return "\n".join(lines) + "\n"
