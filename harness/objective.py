"""One Optuna trial: run the algorithm, score it, record it.

Algorithms know nothing of Optuna: the trial's pruning hook is the algorithm's
per-epoch ``callback``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.config import StudyConfig
from harness.interrupts import interruptible, uninterruptible
from harness.metrics import SCORE_TRAPEZOID, SWEEP_PESSIMISTIC, circuit_faithfulness, sweep_roc
from harness.mib_metrics import mib_metrics
from harness.records import (
    TrialRecord,
    append_record,
    git_commit,
    package_versions,
    thin_curve,
)

INTERRUPTED = "interrupted"

OnRecord = Callable[[TrialRecord, StudyConfig], None]


class TrialRunner:
    """The objective of a study, holding the task loaded once per worker.

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
        self._task = None

    @property
    def task(self):
        if self._task is None:
            from harness.tasks import load

            self._task = load(self.config.task, **self.config.task_options)
        return self._task

    def settings(self, trial) -> tuple[dict[str, Any], int, int | None]:
        """The trial's parameters (fixed and suggested), its seed and the trial it retries.

        Suggesting twice returns the same values, so batch mode can ask before training.
        """
        from harness.study import suggest

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

        from harness.study import failure_reason

        config = self.config
        record_heartbeat(trial)
        params, seed, retry_of = self.settings(trial)
        trial.set_user_attr("seed", seed)
        history = history if history is not None else {"epoch_loss": [], "epoch_faithfulness": []}
        report = self.reporter(trial, history)
        start = time.perf_counter() - shared_seconds

        record = TrialRecord(
            study=config.name,
            trial=trial.number,
            state="RUNNING",
            algorithm=config.algorithm,
            task=config.task,
            ground_truth=config.ground_truth,
            params=_jsonable(params),
            seed=seed,
            versions=package_versions(),
            git_commit=git_commit(),
            config_hash=config.config_hash(),
            retry_of=retry_of,
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
            record.state = "FAIL"
            record.fail_reason = failure_reason(error)
            trial.set_user_attr("fail_reason", record.fail_reason)
            raise
        finally:
            record.seconds = round(time.perf_counter() - start, 4)
            record.history = {**history, **record.history}
            if record.state != "RUNNING":  # KeyboardInterrupt leaves no record
                append_record(self.records_file, record)
                if self.on_record is not None:
                    self.on_record(record, config)

    def _evaluate(
        self, params, seed, report, record: TrialRecord, precomputed=None
    ) -> float | list[float]:
        from harness.runner import evaluate_scores, run_algorithm

        config, task = self.config, self.task
        record.device = str(task.patchable.device)
        record.n_edges_total = task.patchable.n_edges
        if isinstance(precomputed, BaseException):
            raise precomputed
        if precomputed is not None:
            scores, rocs = precomputed, evaluate_scores(task, precomputed)
        else:
            run = run_algorithm(task, config.algorithm, params, seed, config.ground_truth, report)
            scores, rocs = run.scores, run.rocs
            record.peak_memory_mb = run.peak_memory_mb
            record.peak_memory_kind = run.peak_memory_kind
        record.history.update({k: v for k, v in scores.history.items() if v})
        record.semantics = scores.semantics
        for name, roc in rocs.items():
            record.auc[name] = {SCORE_TRAPEZOID: roc.auc}
            record.roc[name] = thin_curve(list(roc.fpr), list(roc.tpr))
            if scores.circuit is not None:
                point = sweep_roc([scores.circuit], task.official_edges(name), scores.edge_names)
                record.auc[name][SWEEP_PESSIMISTIC] = point.auc
        if scores.circuit is not None:
            record.circuit_size = len(scores.circuit)
            record.circuit_edges = sorted(scores.circuit)
        k = min(config.objective.k, len(scores))
        ablation = params.get("ablation") or default_ablation(config.algorithm)
        faith = circuit_faithfulness(task.patchable, task.test, scores.top(k), ablation)
        record.faithfulness = {"n_edges": k, "ablation": ablation, **faith}
        ground_truth = config.ground_truth or task.default_ground_truth
        # a single numerical output has KL 0 whatever the circuit: use MSE there
        measure = "mse" if task.train[0].is_regression else "kl_div"
        record.faithfulness["measure"] = measure
        mib = mib_metrics(task.patchable, task.test, scores, ablation)
        record.mib = mib.as_record()
        first = {
            "roc_auc": lambda: record.auc[ground_truth][SCORE_TRAPEZOID],
            "cpr": lambda: mib.cpr,
            "cmd": lambda: mib.cmd,
        }.get(config.objective.metric, lambda: faith[measure])()
        if config.objective.multi:
            size = record.circuit_size if record.circuit_size is not None else k
            return [first, float(size)]
        return first


def default_ablation(algorithm: str) -> str:
    """The ablation an algorithm uses when none is given (``resample`` for those that
    take none), which its circuit's faithfulness is then measured under.

    Example:
        >>> default_ablation("sp"), default_ablation("random")
        ('mean', 'resample')
    """
    from harness.algorithms import get_algorithm
    from harness.runner import algorithm_parameters

    default = algorithm_parameters(get_algorithm(algorithm)).get("ablation")
    return default if isinstance(default, str) else "resample"


def record_heartbeat(trial) -> None:
    """Beat once now, so a worker killed before its heartbeat thread's first beat still
    leaves a trial that goes stale (Optuna never fails a trial that has no heartbeat)."""
    from optuna.storages._heartbeat import is_heartbeat_enabled

    storage = trial.study._storage
    if is_heartbeat_enabled(storage):
        storage.record_heartbeat(trial._trial_id)


def _retried_number(trial) -> int | None:
    from harness.study import retried_trial_number

    for frozen in trial.study.get_trials(deepcopy=False):
        if frozen.number == trial.number:
            return retried_trial_number(frozen)
    return None


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: (sorted(v) if isinstance(v, (set, frozenset)) else v) for k, v in params.items()}
