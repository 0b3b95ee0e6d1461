"""One Optuna trial: run the algorithm, score it, record it.

Algorithms know nothing of Optuna: the trial's pruning hook is the algorithm's
per-epoch ``callback``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.algorithms import get_algorithm
from harness.configs.study import StudyConfig
from harness.evaluation.faithfulness_curve import circuit_faithfulness
from harness.evaluation.mib import MIB_FRACTIONS, mib_metrics
from harness.evaluation.roc import SCORE_TRAPEZOID, SWEEP_PESSIMISTIC, sweep_roc
from harness.evaluation.run_one import algorithm_parameters, evaluate_scores, run_algorithm
from harness.records.schema import TrialRecord, thin_curve
from harness.records.store import append_record
from harness.study.runtime.failures import OutOfMemory, is_out_of_memory, storage_cause
from harness.study.runtime.heartbeats import record_heartbeat
from harness.study.runtime.interrupts import interruptible, uninterruptible
from harness.study.trials import (
    failure_reason,
    retried_trial_number,
    study_trial_record,
    suggest,
)
from harness.tasks import load

INTERRUPTED = "interrupted"

OnRecord = Callable[[TrialRecord, StudyConfig], None]


class TrialRunner:
    """The objective of a study, holding its task(s) loaded once per worker.

    A study over several tasks (``task: [a, b]`` or a suite) runs every trial on each
    task with the same parameters and seed; its objective is the mean (or, with
    ``aggregate: worst``, the worst) of the per-task objectives, its record's AUC the
    per-ground-truth mean, and ``per_task`` keeps every task's numbers. Such trials
    report no intermediate values (nothing to prune on across tasks).

    Args:
        config: The study.
        records_file: Where finished trials are appended.
        on_epoch: Called with ``(trial number, epoch, faithfulness)`` for progress bars.
        on_record: Called with every record written (W&B logging).
    """

    def __init__(
        self,
        config: StudyConfig,
        records_file: Path,
        on_epoch: Callable[[int, int, float], None] | None = None,
        on_record: OnRecord | None = None,
    ) -> None:
        self.config = config
        self.records_file = records_file
        self.on_epoch = on_epoch
        self.on_record = on_record
        self._tasks: dict[str, Any] | None = None

    @property
    def tasks(self) -> dict[str, Any]:
        """Task name -> the loaded task, every task of the study."""
        if self._tasks is None:
            options = self.config.task_options
            self._tasks = {name: load(name, **options) for name in self.config.task_names()}
        return self._tasks

    @property
    def task(self):
        """The study's one task (batch mode and single-task studies)."""
        (task,) = self.tasks.values()
        return task

    def settings(self, trial) -> tuple[dict[str, Any], int, int | None]:
        """The trial's parameters (fixed and suggested), its seed and the trial it retries.

        Suggesting twice returns the same values, so batch mode can ask before training.
        """
        retry_of = _retried_number(trial)
        slot = retry_of if retry_of is not None else trial.number
        return (
            {**self.config.params, **suggest(trial, self.config)},
            self.config.seed + slot,
            retry_of,
        )

    def reporter(self, trial, history: dict[str, list[float]]):
        """The per-epoch callback of a trial: history, progress, Optuna report and pruning."""
        import optuna

        config = self.config
        maximize = config.objective.maximize

        def report(epoch: int, loss: float, faithfulness: float) -> None:
            history["epoch_loss"].append(loss)
            history["epoch_faithfulness"].append(faithfulness)
            if self.on_epoch is not None:
                self.on_epoch(trial.number, epoch, faithfulness)
            if config.objective.multi:
                return  # Optuna prunes single-objective studies only
            with uninterruptible():  # storage calls: a Ctrl-C waits for them
                trial.report(-faithfulness if maximize else faithfulness, epoch)
                prune = trial.should_prune()
            if prune:
                raise optuna.TrialPruned(f"pruned after epoch {epoch}")

        return report

    def __call__(
        self, trial, precomputed=None, history=None, shared_seconds: float = 0.0
    ) -> float | list[float]:
        """Run (or, in batch mode, take ``precomputed`` scores or exception), score, record."""
        import optuna

        config = self.config
        record_heartbeat(trial)
        params, seed, retry_of = self.settings(trial)
        trial.set_user_attr("seed", seed)
        history = history if history is not None else {"epoch_loss": [], "epoch_faithfulness": []}
        report = self.reporter(trial, history)
        start = time.perf_counter() - shared_seconds

        record = study_trial_record(
            config, trial.number, "RUNNING", _jsonable(params), seed, retry_of
        )
        try:
            with interruptible():  # no storage calls in here but the reporter's
                value = self._evaluate(params, seed, report, record, precomputed)
            record.state = "COMPLETE"
            record.objective = value
            return value
        except optuna.TrialPruned:
            record.state = "PRUNED"
            raise
        except KeyboardInterrupt:
            trial.set_user_attr(INTERRUPTED, True)  # not a result: resuming runs it anew
            raise
        except Exception as error:
            if is_out_of_memory(error):  # the machine's limit: no record, the run stops
                where = f"trial {trial.number} ran out of memory"
                raise OutOfMemory(f"{where}: {failure_reason(error)}") from None
            if storage_cause(error) is not None:  # the storage failed, not the trial: the
                raise  # run stops in one line; no record, so the trial runs again on resume
            record.state = "FAIL"
            record.fail_reason = failure_reason(error)
            trial.set_user_attr("fail_reason", record.fail_reason)
            raise
        finally:
            record.seconds = round(time.perf_counter() - start, 4)
            record.history = {**history, **record.history}
            if record.state != "RUNNING":  # a stop or a storage failure leaves no record
                append_record(self.records_file, record)
                if self.on_record is not None:
                    self.on_record(record, config)

    def _evaluate(
        self, params, seed, report, record: TrialRecord, precomputed=None
    ) -> float | list[float]:
        config = self.config
        if isinstance(precomputed, BaseException):
            raise precomputed
        if len(self.tasks) > 1:
            return self._evaluate_tasks(params, seed, record)
        task = self.task
        record.device = str(task.patchable.device)
        record.n_edges_total = task.patchable.n_edges
        if precomputed is not None:
            scores, rocs = precomputed, evaluate_scores(task, precomputed)
        else:
            run = run_algorithm(task, config.algorithm, params, seed, config.ground_truth, report)
            scores, rocs = run.scores, run.rocs
            record.peak_memory_mb = run.peak_memory_mb
            record.peak_memory_kind = run.peak_memory_kind
        record.history.update({k: v for k, v in scores.history.items() if v})
        record.semantics = scores.semantics
        batches, split = selection_batches(task)
        outcome = score_outcome(config, task, scores, rocs, params, batches, split)
        record.auc, record.roc = outcome.auc, outcome.roc
        if scores.circuit is not None:
            record.circuit_size = len(scores.circuit)
            record.circuit_edges = sorted(scores.circuit)
        record.faithfulness, record.mib = outcome.faithfulness, outcome.mib
        return outcome.objective

    def _evaluate_tasks(self, params, seed, record: TrialRecord) -> float | list[float]:
        result = evaluate_tasks(self.config, self.tasks, params, seed)
        record.per_task, record.auc = result.per_task, result.auc
        record.circuit_size, record.semantics = result.circuit_size, result.semantics
        record.n_edges_total = sum(t.patchable.n_edges for t in self.tasks.values())
        record.device = str(next(iter(self.tasks.values())).patchable.device)
        return result.objective


@dataclass
class TasksOutcome:
    """One setting run on every task of a multi-task study.

    Attributes:
        objective: The aggregate (mean or worst) of the per-task objectives.
        auc: Ground truth -> convention -> mean AUC over tasks.
        per_task: Task -> its AUC, faithfulness, objective and circuit size.
        circuit_size: Total circuit size, or None if an algorithm gives no circuit.
        semantics: The mask semantics the algorithm used.
    """

    objective: float | list[float]
    auc: dict[str, dict[str, float]]
    per_task: dict[str, dict[str, Any]]
    circuit_size: int | None
    semantics: str | None


def evaluate_tasks(
    config: StudyConfig, tasks: dict[str, Any], params, seed, final: bool = False
) -> TasksOutcome:
    """Run ``params`` with ``seed`` on every task and aggregate as the study says:
    faithfulness on each task's validation split while searching, on its test split for
    a ``final`` (held-out) evaluation."""
    outcomes: dict[str, Outcome] = {}
    sizes: dict[str, int | None] = {}
    semantics = None
    for name, task in tasks.items():
        run = run_algorithm(task, config.algorithm, params, seed, config.ground_truth)
        batches, split = (task.test, "test") if final else selection_batches(task)
        outcomes[name] = score_outcome(config, task, run.scores, run.rocs, params, batches, split)
        sizes[name] = None if run.scores.circuit is None else len(run.scores.circuit)
        semantics = run.scores.semantics
    per_task = {
        name: {
            "auc": o.auc,
            "faithfulness": o.faithfulness,
            "objective": o.objective,
            "mib": o.mib,
            "circuit_size": sizes[name],
        }
        for name, o in outcomes.items()
    }
    known = [size for size in sizes.values() if size is not None]
    multi = config.objective.multi
    firsts = [o.objective[0] if multi else o.objective for o in outcomes.values()]
    if config.aggregate == "mean":
        first = sum(firsts) / len(firsts)
    else:  # the worst task
        first = min(firsts) if config.objective.maximize else max(firsts)
    objective = [first, float(sum(o.objective[1] for o in outcomes.values()))] if multi else first
    return TasksOutcome(
        objective=objective,
        auc=mean_auc(tasks, outcomes),
        per_task=per_task,
        circuit_size=sum(known) if len(known) == len(sizes) else None,
        semantics=semantics,
    )


def mean_auc(tasks: dict[str, Any], outcomes: dict[str, Outcome]) -> dict[str, dict[str, float]]:
    """Per ground truth and convention, the mean AUC over tasks, for the ground-truth
    names every task answers to (its own or an alias, e.g. ``zero`` for ``acdc-zero``)."""
    names: set[str] | None = None
    for task in tasks.values():
        answers = set(task.circuits) | set(task.aliases)
        names = answers if names is None else names & answers
    groups: dict[tuple[str, ...], list[str]] = {}  # names that mean the same circuits
    for name in sorted(names or ()):
        resolved = tuple(task.aliases.get(name, name) for task in tasks.values())
        groups.setdefault(resolved, []).append(name)
    chosen = [  # one name per group: one every task has under that name, else the first
        next((n for n in group if all(n in t.circuits for t in tasks.values())), group[0])
        for group in groups.values()
    ]
    out: dict[str, dict[str, float]] = {}
    for name in chosen:
        per_task = [
            outcomes[slug].auc.get(task.aliases.get(name, name), {}) for slug, task in tasks.items()
        ]
        for convention in per_task[0]:
            values = [auc[convention] for auc in per_task if convention in auc]
            if len(values) == len(per_task):
                out.setdefault(name, {})[convention] = sum(values) / len(values)
    return out


@dataclass
class Outcome:
    """How one run of the algorithm scores.

    Attributes:
        auc: Ground truth -> convention -> AUC (``sweep-pessimistic`` from the run's one
            circuit where the algorithm gives one).
        roc: Ground truth -> thinned score-based ROC points.
        faithfulness: The top-``k`` circuit's faithfulness on ``batches`` (its size, the
            ablation, the measure the objective reads, every measure).
        objective: The study's objective value(s).
    """

    auc: dict[str, dict[str, float]]
    roc: dict[str, dict[str, list[float]]]
    faithfulness: dict[str, Any]
    objective: float | list[float]
    mib: dict[str, Any]


def score_outcome(
    config: StudyConfig, task, scores, rocs, params, batches, split: str = "test"
) -> Outcome:
    """Score one run as a trial of ``config`` is scored, faithfulness on ``batches``
    (the task's ``split``, which the faithfulness entry names)."""
    auc: dict[str, dict[str, float]] = {}
    roc: dict[str, dict[str, list[float]]] = {}
    for name, curve in rocs.items():
        auc[name] = {SCORE_TRAPEZOID: curve.auc}
        roc[name] = thin_curve(list(curve.fpr), list(curve.tpr))
        if scores.circuit is not None:
            point = sweep_roc([scores.circuit], task.official_edges(name), scores.edge_names)
            auc[name][SWEEP_PESSIMISTIC] = point.auc
    k = min(config.objective.k, len(scores))
    ablation = params.get("ablation") or default_ablation(config.algorithm)
    faith = circuit_faithfulness(task.patchable, batches, scores.top(k), ablation)
    # a single numerical output has KL 0 whatever the circuit: use MSE there
    measure = "mse" if task.train[0].is_regression else "kl_div"
    faithfulness = {"n_edges": k, "ablation": ablation, **faith, "measure": measure, "split": split}
    mib = mib_metrics(task.patchable, batches, scores, ablation)
    ground_truth = config.ground_truth or task.default_ground_truth
    metric = config.objective.metric
    if metric == "roc_auc":
        first = auc[task.aliases.get(ground_truth, ground_truth)][SCORE_TRAPEZOID]
    elif metric in ("cpr", "cmd"):
        first = getattr(mib, metric)
    elif metric == "min_size":
        first = smallest_faithful_fraction(mib.cmd_curve.faithfulness, config.objective.target)
    else:
        first = faith[measure]
    if config.objective.multi:
        size = len(scores.circuit) if scores.circuit is not None else k
        return Outcome(auc, roc, faithfulness, [first, float(size)], mib.as_record())
    return Outcome(auc, roc, faithfulness, first, mib.as_record())


def smallest_faithful_fraction(faithfulness: tuple[float, ...], target: float) -> float:
    """The smallest of MIB's circuit sizes (fraction of edges) whose normalised
    faithfulness reaches ``target``; 1.0 when none does (the whole model).

    Example:
        >>> from harness.evaluation.mib import MIB_FRACTIONS
        >>> curve = tuple(0.5 if p < 0.05 else 0.95 for p in MIB_FRACTIONS)
        >>> smallest_faithful_fraction(curve, 0.9)
        0.05
    """
    for fraction, value in zip(MIB_FRACTIONS, faithfulness, strict=True):
        if value >= target:
            return float(fraction)
    return 1.0


def selection_batches(task) -> tuple[tuple, str]:
    """The batches a search measures faithfulness on, and their split's name: the task's
    validation split where it has one (the test split stays for held-out numbers), else
    its test split.

    Example:
        >>> from types import SimpleNamespace
        >>> selection_batches(SimpleNamespace(validation=("v",), test=("t",)))
        (('v',), 'validation')
    """
    if task.validation:
        return task.validation, "validation"
    return task.test, "test"


def default_ablation(algorithm: str) -> str:
    """The ablation an algorithm uses when none is given (``resample`` for those that
    take none), which its circuit's faithfulness is then measured under.

    Example:
        >>> default_ablation("sp"), default_ablation("random")
        ('mean', 'resample')
    """
    default = algorithm_parameters(get_algorithm(algorithm)).get("ablation")
    return default if isinstance(default, str) else "resample"


def _retried_number(trial) -> int | None:
    for frozen in trial.study.get_trials(deepcopy=False):
        if frozen.number == trial.number:
            return retried_trial_number(frozen)
    return None


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: (sorted(v) if isinstance(v, (set, frozenset)) else v) for k, v in params.items()}
