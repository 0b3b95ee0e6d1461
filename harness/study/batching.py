"""Batched SP trials (``--batch-trials K``): K trials of a study trained in one pass.

The trials of a pass share every SP setting but the per-trial ones
(:data:`~harness.algorithms.sp_batched.PER_TRIAL`), so a batchable study searches only
those (:func:`check_batchable`). Each trial of a pass is asked of Optuna, admitted by the
budget (:mod:`harness.study.budget`), tagged with its worker's lock (journal files) and
kept beating (RDB storages) while the pass trains, so a killed pass's trials are retried
on resume; then each is scored, recorded and told as a trial run alone would be.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from typing import Any

from harness.algorithms.params import check_batched
from harness.algorithms.sp_batched import PER_TRIAL, subnetwork_probing_batched
from harness.configs.study import StudyConfig
from harness.records.store import RecordWriteError
from harness.study.budget import beyond_budget
from harness.study.objective import INTERRUPTED, TrialRunner
from harness.study.runtime.failures import OUT_OF_MEMORY, OutOfMemory
from harness.study.runtime.heartbeats import heartbeat_thread
from harness.study.runtime.interrupts import interruptible
from harness.study.runtime.liveness import claim
from harness.study.runtime.retries import run_again
from harness.study.trials import SURPLUS

# SP settings that the trials of one pass share (the study fixes them, none is searched)
BATCH_SHARED = (
    "mask_fn",
    "dropout_p",
    "circuit_size",
    "tree_optimisation",
    "faithfulness_target",
    "ablation",
    "restore_clean",
)


def check_batchable(config: StudyConfig) -> None:
    """Batch mode trains SP only, varying only the per-trial settings.

    Raises:
        ValueError: One line, if the study cannot run in batches.

    Example:
        >>> config = StudyConfig.model_validate(
        ...     {"name": "s", "task": "tracr-reverse", "algorithm": "acdc"})
        >>> check_batchable(config)
        Traceback (most recent call last):
        ...
        ValueError: --batch-trials trains SP only, not 'acdc'
    """
    if len(config.task_names()) > 1:
        raise ValueError("--batch-trials trains on one task; this study has several")
    if config.algorithm != "sp":
        raise ValueError(f"--batch-trials trains SP only, not {config.algorithm!r}")
    varying = [k for k in config.search_space if k not in PER_TRIAL]
    if varying:
        raise ValueError(
            f"--batch-trials cannot search {varying[0]!r}: trials in one pass share it "
            f"(searchable: {', '.join(p for p in PER_TRIAL if p != 'seed')})"
        )
    other = [k for k in config.params if k not in PER_TRIAL and k not in BATCH_SHARED]
    if other:
        raise ValueError(f"--batch-trials does not support the SP parameter {other[0]!r}")


def run_batch(
    study: Any, runner: TrialRunner, n: int, budget: int, on_trial, storage_url: str
) -> None:
    """Ask up to ``n`` trials within ``budget`` (a surplus one is failed as such), train
    them in one pass, then score, record and tell each (``on_trial`` after each)."""
    import optuna

    trials = []
    for _ in range(n):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "heartbeats are for Study.optimize": ours follow
            trial = study.ask()
        if beyond_budget(study, trial.number, budget):
            trial.set_user_attr(SURPLUS, True)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        claim(trial, storage_url)
        trials.append(trial)
    if not trials:
        return
    with contextlib.ExitStack() as beating:  # RDB storages: a live batch's trials stay fresh
        for trial in trials:
            beating.enter_context(heartbeat_thread(trial._trial_id, study._storage))
        _train_and_tell(study, runner, trials, on_trial)


def _train_and_tell(study, runner: TrialRunner, trials: list, on_trial) -> None:
    import optuna

    task = runner.task
    settings, histories, callbacks, shared = [], [], [], {}
    for trial in trials:
        params, seed, _ = runner.settings(trial)
        settings.append({**{k: params[k] for k in PER_TRIAL if k in params}, "seed": seed})
        shared = {k: v for k, v in params.items() if k in BATCH_SHARED}
        history: dict[str, list[float]] = {"epoch_loss": [], "epoch_faithfulness": []}
        histories.append(history)
        callbacks.append(runner.reporter(trial, history))
    shared.setdefault("faithfulness_target", task.faithfulness_target)
    start = time.perf_counter()
    try:
        with interruptible():  # no storage calls in here but the reporters'
            check_batched([{k: v for k, v in s.items() if k != "seed"} for s in settings], shared)
            results: list[Any] = subnetwork_probing_batched(
                task.patchable, task.train, settings, callbacks=callbacks, **shared
            )
    except Exception as error:  # the whole pass failed: every trial fails with the reason
        results = [error] * len(trials)
    except KeyboardInterrupt:  # not results: they run again, with the same parameters
        _cut_short(study, trials, INTERRUPTED, True)
        raise
    share = (time.perf_counter() - start) / len(trials)
    for i, (trial, result, history) in enumerate(zip(trials, results, histories, strict=True)):
        try:
            value = runner(trial, precomputed=result, history=history, shared_seconds=share)
            study.tell(trial, value)
        except optuna.TrialPruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        except RecordWriteError as error:  # no result: the run stops, these run again
            _cut_short(study, trials[i:], "record_error", str(error))
            raise
        except OutOfMemory as error:  # the same: the machine's limit, not the trial's
            _cut_short(study, trials[i:], OUT_OF_MEMORY, str(error))
            raise
        except Exception:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        if on_trial is not None:
            on_trial(trial)


def _cut_short(study, trials: list, attr: str, value: Any) -> None:
    """Fail ``trials`` as no result (``attr``) and enqueue each again, same parameters."""
    import optuna

    for trial in trials:
        trial.set_user_attr(attr, value)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        run_again(study, study._storage.get_trial(trial._trial_id), died=False)
