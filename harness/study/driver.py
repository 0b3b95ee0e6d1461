"""Optuna studies over an algorithm's hyperparameters, behind one module.

A study is created or resumed from a :class:`~harness.configs.study.StudyConfig`. Each trial
suggests the searched parameters, runs the algorithm on the task (SP reports its
faithfulness after every epoch so the pruner can stop it), scores the result against
every ground truth, appends a :class:`~harness.records.schema.TrialRecord` and tells Optuna.

Here is the orchestration; each concept has its own module beside it: storages and the
study in one (:mod:`~harness.study.storages`), samplers and pruners
(:mod:`~harness.study.samplers`), the budget (:mod:`~harness.study.budget`), batched SP
trials (:mod:`~harness.study.batching`), the progress bar (:mod:`~harness.study.progress`),
the checks before a run (:mod:`~harness.study.preflight`), one trial
(:mod:`~harness.study.objective`) and held-out runs (:mod:`~harness.study.heldout`).

Budget (see :mod:`harness.study.budget`): ``n_trials`` counts the study's finished trials
(COMPLETE, PRUNED, FAIL), across every worker and every resume; a trial cut short by Ctrl-C
is not a result and does not count. Trials are admitted in the order of their numbers, so
several workers never overshoot; a trial a dead worker left RUNNING is failed by the
heartbeat check (RDB storages) or by its worker's released file lock (journal files, see
:mod:`harness.study.runtime.liveness`) and run again with the same parameters and seed,
occupying its original slot (up to 3 attempts, see :mod:`harness.study.runtime.retries`).
A trial cut short by Ctrl-C or by a record that could not be written runs again the same
way. Before a run, :func:`prepare_study` checks the study against its config and its records.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.configs.study import StudyConfig
from harness.records.store import RecordWriteError, read_records, repair_torn_tail
from harness.study.batching import BATCH_SHARED, check_batchable, run_batch
from harness.study.budget import Surplus, beyond_budget, count_trials
from harness.study.heldout import run_heldout
from harness.study.objective import TrialRunner
from harness.study.preflight import preflight
from harness.study.progress import StudyProgress
from harness.study.runtime import retries
from harness.study.runtime.failures import OUT_OF_MEMORY, OutOfMemory, storage_failures
from harness.study.runtime.guard import bind_records, check_config
from harness.study.runtime.interrupts import catching_interrupts, check, interruptible
from harness.study.runtime.liveness import claim, reap_dead_trials, settle_recorded_trials
from harness.study.runtime.lost_records import rerun_lost_records
from harness.study.runtime.processes import run_workers
from harness.study.runtime.retries import record_given_up
from harness.study.runtime.seeding import process_seed, started_trials
from harness.study.runtime.storage_urls import mask_password
from harness.study.samplers import create_sampler
from harness.study.storages import load_existing_study, load_or_create_study, open_storage
from harness.study.trials import SURPLUS
from harness.study.wandb_mirror import log_study_summary, log_trial
from harness.util.notices import notice

__all__ = [  # the names below are imported from here (some live in the modules beside)
    "BATCH_SHARED",
    "RUNS_DIR",
    "StudyOutcome",
    "check_batchable",
    "load_existing_study",
    "load_or_create_study",
    "open_storage",
    "preflight",
    "prepare_study",
    "records_path",
    "run_study",
    "run_worker",
    "summarize",
    "wandb_dir",
]

RUNS_DIR = Path(os.environ.get("HARNESS_RUNS_DIR", "runs"))


@dataclass
class StudyOutcome:
    """What :func:`run_study` leaves behind."""

    name: str
    storage: str
    records_path: Path
    n_finished: int
    best_value: float | list[float] | None
    best_params: dict[str, Any] | None


def records_path(config: StudyConfig, runs_dir: Path | None = None) -> Path:
    """The study's records, ``<runs_dir>/<study>/trials.jsonl`` (default ``runs/``,
    ``HARNESS_RUNS_DIR``).

    Example:
        >>> config = StudyConfig.model_validate({"name": "s", "task": "tracr-reverse"})
        >>> records_path(config, Path("out")).as_posix()
        'out/s/trials.jsonl'
    """
    return (runs_dir or RUNS_DIR) / config.name / "trials.jsonl"


def wandb_dir(runs_dir: Path | None = None) -> Path:
    """Where offline W&B runs are written (``runs/wandb``; sync with ``wandb sync``).

    Example:
        >>> wandb_dir(Path("out")).as_posix()
        'out/wandb'
    """
    return (runs_dir or RUNS_DIR) / "wandb"


def run_worker(
    config: StudyConfig,
    storage_url: str,
    n_trials: int | None = None,
    timeout: float | None = None,
    runs_dir: Path | None = None,
    on_trial: Callable[[Any], None] | None = None,
    on_epoch: Callable[[int, int, float], None] | None = None,
    batch_trials: int = 1,
    alone: bool = False,
    allow_config_change: bool = False,
) -> None:
    """Run trials of the study until its budget (``n_trials``) or ``timeout`` is reached.

    Safe to run in several processes (or machines) against one storage. With
    ``batch_trials`` K > 1, SP trains K trials in one pass (see
    :mod:`harness.study.batching`), each with its heartbeat (RDB storages) or its
    worker's lock (journal files), so a killed batch's trials are retried on resume.
    ``alone``: no other process runs the study now (a fresh study then samples exactly
    from its seed; see :mod:`harness.study.runtime.seeding`).

    Raises:
        RecordWriteError: A record could not be written (the run stops; see
            :mod:`harness.records.store`).
        StorageError: The storage failed (one line).
        ValueError: The study was created with another config (unless
            ``allow_config_change``), or its records belong to another storage.
    """
    with catching_interrupts(), storage_failures(storage_url):
        _run_worker(
            config,
            storage_url,
            n_trials,
            timeout,
            runs_dir,
            on_trial,
            on_epoch,
            batch_trials,
            alone,
            allow_config_change,
        )


def _run_worker(
    config: StudyConfig,
    storage_url: str,
    n_trials: int | None,
    timeout: float | None,
    runs_dir: Path | None,
    on_trial: Callable[[Any], None] | None,
    on_epoch: Callable[[int, int, float], None] | None,
    batch_trials: int,
    alone: bool,
    allow_config_change: bool,
) -> None:
    budget = n_trials or config.n_trials
    limit = timeout if timeout is not None else config.timeout
    study = prepare_study(config, storage_url, runs_dir, allow_config_change, alone)
    runner = TrialRunner(
        config,
        records_path(config, runs_dir),
        on_epoch=on_epoch,
        on_record=_wandb_logger(config, runs_dir),
    )

    def settle_dead() -> None:
        """A dead worker's trial with its record on disk is finished from it (no rerun);
        the others fail with the reason and run again (before Optuna's own stale-trial
        check, which ``optimize`` runs first thing); one given up gets its FAIL record."""
        settle_recorded_trials(study, storage_url, lambda: read_records(runner.records_file))
        retries.fail_stale_trials(study)
        record_given_up(study, runner)

    settle_dead()
    reap_dead_trials(study, storage_url)  # trials of workers that died before this one
    start = time.monotonic()
    halted: list[RecordWriteError] = []
    ran: list[int] = []  # trial numbers this worker ran

    def objective(trial):
        ran.append(trial.number)
        if beyond_budget(study, trial.number, budget):
            trial.set_user_attr(SURPLUS, True)
            raise Surplus(f"trial {trial.number} is beyond the budget of {budget}")
        claim(trial, storage_url)
        try:
            return runner(trial)
        except (RecordWriteError, OutOfMemory) as error:  # the machine's: no result at all
            halted.append(error)
            trial.set_user_attr(_cut_attr(error), str(error))
            raise

    if batch_trials > 1:
        check_batchable(config)
    while limit is None or time.monotonic() - start < limit:
        check()  # a Ctrl-C held during the last trial's storage calls
        settle_dead()
        state = count_trials(study)
        if state.finished >= budget:
            break
        if batch_trials > 1:
            room = budget - state.finished - state.in_flight
            if room > 0:
                run_batch(study, runner, min(batch_trials, room), budget, on_trial, storage_url)
                continue
        if not state.waiting and state.finished + state.in_flight >= budget:
            # a dead worker's trial becomes a WAITING retry: heartbeats (RDB), locks (journal);
            # one whose record is written is finished from it first, as at the loop's top
            # (not Optuna's fail_stale_trials too: it would fail it without its reason)
            settle_dead()
            reap_dead_trials(study, storage_url)
            with interruptible():
                time.sleep(1.0)  # the rest of the budget is running in other workers
            continue
        before = len(study.get_trials(deepcopy=False))
        try:
            study.optimize(objective, n_trials=1, catch=(Exception,))
        finally:  # Ctrl-C or a record not written: the trial runs again on resume
            _run_again_cut(study, ran[-1:])
        if halted:
            raise halted[0]
        newest = study.get_trials(deepcopy=False)[before:]
        if on_trial is not None:
            for trial in newest:
                if not trial.user_attrs.get(SURPLUS):
                    on_trial(trial)


def _cut_attr(error: Exception) -> str:
    """The user attribute that marks a trial cut short by ``error`` (no result)."""
    return OUT_OF_MEMORY if isinstance(error, OutOfMemory) else "record_error"


def _run_again_cut(study, numbers: list[int]) -> None:
    """Enqueue again, with the same parameters, those of the trials ``numbers`` that were
    cut short (Ctrl-C, a record not written, memory run out): they are no result."""
    trials = study.get_trials(deepcopy=False)
    for trial in (t for t in trials if t.number in numbers):
        cut = any(trial.user_attrs.get(k) for k in ("interrupted", "record_error", OUT_OF_MEMORY))
        if cut and trial.state.name == "FAIL":
            retries.run_again(study, trial, died=False)


def prepare_study(
    config: StudyConfig,
    storage_url: str,
    runs_dir: Path | None,
    allow_config_change: bool = False,
    alone: bool = False,
):
    """The study, checked before it is run: a torn record repaired, the config and the
    records' storage checked (see :mod:`harness.study.runtime.guard`), finished trials whose
    record was lost enqueued to run again (see :mod:`harness.study.runtime.lost_records`),
    the sampler seeded for this process (see :mod:`harness.study.runtime.seeding`)."""
    study = load_or_create_study(config, storage_url)
    records = records_path(config, runs_dir)
    repair_torn_tail(records)  # says so in one line
    changed = check_config(study, config, allow_config_change)
    if changed:
        notice(f"study {config.name}: config changed ({', '.join(changed)}), recorded in the study")
    bind_records(study, records, mask_password(storage_url))
    copies = rerun_lost_records(study, records)
    if copies:
        shown = ", ".join(f"{lost} (runs again as trial {copy})" for lost, copy in copies.items())
        notice(f"finished trials without a record in {records}: {shown}")
    study.sampler = create_sampler(
        config, process_seed(config.seed, started_trials(study), alone=alone)
    )
    return study


def _wandb_logger(config: StudyConfig, runs_dir: Path | None):
    if config.wandb.mode == "disabled":
        return None
    directory = wandb_dir(runs_dir)
    return lambda record, cfg: log_trial(record, cfg, directory)


def run_study(
    config: StudyConfig,
    storage_url: str | None = None,
    n_trials: int | None = None,
    timeout: float | None = None,
    jobs: int = 1,
    runs_dir: Path | None = None,
    progress: bool = True,
    batch_trials: int = 1,
    allow_config_change: bool = False,
    heldout: bool = True,
) -> StudyOutcome:
    """Create or resume the study and run it to its budget, in ``jobs`` processes, then
    (with ``heldout``) run the best trial's settings on held-out seeds
    (:mod:`harness.study.heldout`).

    ``allow_config_change``: resume a study created with another config (the change is
    recorded in the study); without it that is refused (see :mod:`harness.study.runtime.guard`).
    """
    storage_url = storage_url or config.storage_url(runs_dir or RUNS_DIR)
    budget = n_trials or config.n_trials
    with storage_failures(storage_url):  # fail fast, in one line
        study = prepare_study(config, storage_url, runs_dir, allow_config_change)
    bar = StudyProgress(budget, enabled=progress, study=study)
    try:
        if jobs <= 1:
            run_worker(
                config,
                storage_url,
                budget,
                timeout,
                runs_dir,
                on_trial=bar.trial_done,
                on_epoch=bar.epoch,
                batch_trials=batch_trials,
                alone=True,
            )
        else:
            _run_processes(config, storage_url, budget, timeout, runs_dir, jobs, bar)
    finally:
        bar.close()
    if heldout:
        run_heldout(config, records_path(config, runs_dir))
    outcome = summarize(config, storage_url, runs_dir)
    if config.wandb.mode != "disabled":
        log_study_summary(config, read_records(outcome.records_path), wandb_dir(runs_dir))
    return outcome


def _run_processes(config, storage_url, budget, timeout, runs_dir, jobs, bar) -> None:
    args = (
        config.model_dump(mode="json"),
        storage_url,
        budget,
        timeout,
        str(runs_dir) if runs_dir else None,
    )
    run_workers(_process_worker, args, jobs, bar.refresh_from_storage, notice)


def _process_worker(config_data, storage_url, budget, timeout, runs_dir) -> None:
    """One ``--jobs`` worker process (see :mod:`harness.study.runtime.processes`)."""
    import torch

    torch.set_num_threads(1)
    config = StudyConfig.model_validate(config_data)
    run_worker(config, storage_url, budget, timeout, Path(runs_dir) if runs_dir else None)


def summarize(config: StudyConfig, storage_url: str, runs_dir: Path | None = None) -> StudyOutcome:
    """The study's outcome as it is in storage: finished trials, and the best value and
    parameters (single-objective studies with a COMPLETE trial)."""
    study = load_or_create_study(config, storage_url)
    finished = count_trials(study).finished
    best_value, best_params = None, None
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if complete and not config.objective.multi:
        best = study.best_trial
        best_value, best_params = best.value, best.params
    return StudyOutcome(
        config.name,
        mask_password(storage_url),
        records_path(config, runs_dir),
        finished,
        best_value,
        best_params,
    )
