"""Optuna studies over an algorithm's hyperparameters, behind one module.

A study is created or resumed from a :class:`~harness.configs.study.StudyConfig`. Each trial
suggests the searched parameters, runs the algorithm on the task (SP reports its
faithfulness after every epoch so the pruner can stop it), scores the result against
every ground truth, appends a :class:`~harness.records.schema.TrialRecord` and tells Optuna.

Budget: ``n_trials`` counts the study's finished trials (COMPLETE, PRUNED, FAIL), across
every worker and every resume; a trial cut short by Ctrl-C is not a result and does not
count. Trials are admitted in the order of their numbers, so
several workers never overshoot; a trial a dead worker left RUNNING is failed by the
heartbeat check (RDB storages) or by its worker's released file lock (journal files, see
:mod:`harness.study.runtime.liveness`) and run again with the same parameters and seed,
occupying its original slot (up to 3 attempts, see :mod:`harness.study.runtime.retries`).
A trial cut short by Ctrl-C or by a record that could not be written runs again the same
way. Before a run, :func:`prepare_study` checks the study against its config and its records.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.configs.study import StudyConfig
from harness.study.runtime.storage_urls import check_storage_url, hide_secrets, mask_password
from harness.study.trials import (
    NOT_RESULTS,
    SURPLUS,
    retried_trial_number,
)
from harness.util.did_you_mean import did_you_mean

RUNS_DIR = Path(os.environ.get("HARNESS_RUNS_DIR", "runs"))
HEARTBEAT_SECONDS = int(os.environ.get("HARNESS_HEARTBEAT_SECONDS", "10"))


class _Surplus(Exception):
    """A trial created after the budget was filled by trials with lower numbers."""


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
    return (runs_dir or RUNS_DIR) / config.name / "trials.jsonl"


def open_storage(url: str):
    """An Optuna storage for a URL: ``sqlite:///...`` (default), ``journal:///path`` (a
    journal file for several processes on one machine) or ``postgresql://...``.

    Raises:
        ValueError: One line, password masked, if the storage cannot be opened.
    """
    shown = mask_password(url)
    check_storage_url(url)
    for attempt in range(4):
        try:
            return _open_storage(url)
        except Exception as error:  # sqlalchemy, psycopg2, os errors: one line each
            # Workers that start together race to create the schema of a fresh database:
            # the losers see a unique violation and simply try again.
            racing = "UniqueViolation" in repr(error) or "already exists" in str(error)
            if racing and attempt < 3:
                time.sleep(0.2 * (attempt + 1))
                continue
            text = str(error).strip()
            reason = text.splitlines()[0] if text else type(error).__name__
            reason = hide_secrets(reason, url)
            raise ValueError(f"cannot open storage {shown!r}: {reason}") from None
    raise AssertionError("unreachable")


def _open_storage(url: str):
    import optuna

    from harness.study.runtime.liveness import journal_path
    from harness.study.runtime.retries import RetryDeadTrial

    path = journal_path(url)
    if path is not None:
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    if url.startswith(("postgresql://", "postgres://")):
        # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; we ship psycopg2
        url = "postgresql+psycopg2://" + url.split("://", 1)[1]
    sqlite = _sqlite_path(url)
    if sqlite is not None:
        sqlite.parent.mkdir(parents=True, exist_ok=True)
        engine: dict[str, Any] = {"connect_args": {"timeout": 60}}
    else:
        engine = {"pool_pre_ping": True}
        if url.startswith("postgresql"):
            engine["connect_args"] = {"connect_timeout": 10}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # heartbeats are marked experimental
        return optuna.storages.RDBStorage(
            url,
            engine_kwargs=engine,
            heartbeat_interval=HEARTBEAT_SECONDS,
            grace_period=3 * HEARTBEAT_SECONDS,
            heartbeat_stale_trial_callback=RetryDeadTrial(),
        )


def create_sampler(config: StudyConfig, seed: int | None = None):
    """The config's sampler, seeded with ``seed`` (default: the study's seed)."""
    import optuna

    s = config.sampler
    seed = config.seed if seed is None else seed
    if s.type == "tpe":
        return optuna.samplers.TPESampler(
            seed=seed,
            multivariate=s.multivariate,
            constant_liar=s.constant_liar,
            n_startup_trials=s.n_startup_trials,
        )
    if s.type == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if s.type == "grid":
        grid = {name: list(d.choices) for name, d in config.search_space.items()}
        return optuna.samplers.GridSampler(grid, seed=seed)
    return optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=s.n_startup_trials)


def create_pruner(config: StudyConfig):
    import optuna

    p = config.pruner
    if p.type == "median" and not config.objective.multi:
        return optuna.pruners.MedianPruner(
            n_startup_trials=p.n_startup_trials, n_warmup_steps=p.n_warmup_steps
        )
    if p.type == "hyperband" and not config.objective.multi:
        return optuna.pruners.HyperbandPruner()
    return optuna.pruners.NopPruner()


def directions(config: StudyConfig) -> list[str]:
    first = "maximize" if config.objective.maximize else "minimize"
    return [first, "minimize"] if config.objective.multi else [first]


def _sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL, else None."""
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None


def load_existing_study(config: StudyConfig, storage_url: str):
    """The study as it is in storage, creating nothing (for read-only commands).

    Raises:
        ValueError: One line, if the storage or the study in it does not exist yet.
    """
    import optuna

    from harness.study.runtime.liveness import journal_path

    shown = mask_password(storage_url)
    local = journal_path(storage_url) or _sqlite_path(storage_url)
    if local is not None and not local.exists():
        raise ValueError(f"no study {config.name!r} yet: {local} does not exist")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = open_storage(storage_url)
    try:
        return optuna.load_study(study_name=config.name, storage=storage)
    except KeyError:
        raise ValueError(f"no study {config.name!r} in {shown} yet") from None


def load_or_create_study(config: StudyConfig, storage_url: str):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # failures are in our records
    storage = open_storage(storage_url)
    study = optuna.create_study(
        study_name=config.name,
        storage=storage,
        sampler=create_sampler(config),
        pruner=create_pruner(config),
        directions=directions(config),
        load_if_exists=True,
    )
    if not study.trials and not study.user_attrs.get("config"):
        study.set_user_attr("config", config.model_dump(mode="json", exclude={"storage"}))
        study.set_user_attr("config_hash", config.config_hash())
        for params in config.enqueue:
            study.enqueue_trial(params, skip_if_exists=True)
    return study


@dataclass(frozen=True)
class _Budget:
    """The study's trials as the budget sees them."""

    finished: int  # COMPLETE, PRUNED or FAIL, not superseded by a retry, not surplus
    in_flight: int  # RUNNING, not superseded
    waiting: int  # WAITING (enqueued, e.g. a retry or the paper defaults)
    slots: dict[int, int]  # trial number -> budget slot (a retry takes its original's)


def _budget(study) -> _Budget:
    from harness.study.runtime.retries import retried_numbers

    trials = study.get_trials(deepcopy=False)
    retried = retried_numbers(trials)  # each attempt that a later one runs again
    slots, finished, in_flight, waiting = {}, 0, 0, 0
    for t in trials:
        if any(t.user_attrs.get(key) for key in NOT_RESULTS) or t.number in retried:
            continue
        original = retried_trial_number(t)
        slots[t.number] = original if original is not None else t.number
        if t.state.is_finished():
            finished += 1
        elif t.state.name == "RUNNING":
            in_flight += 1
        else:
            waiting += 1
    return _Budget(finished, in_flight, waiting, slots)


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
    :mod:`harness.algorithms.sp_batched`), each with its heartbeat (RDB storages) or its
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
    from harness.study.runtime.failures import storage_failures
    from harness.study.runtime.interrupts import catching_interrupts

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
    from optuna.storages import fail_stale_trials

    from harness.records.store import RecordWriteError, read_records
    from harness.study.objective import TrialRunner
    from harness.study.runtime import retries
    from harness.study.runtime.failures import record_given_up
    from harness.study.runtime.interrupts import check, interruptible
    from harness.study.runtime.liveness import claim, reap_dead_trials, settle_recorded_trials

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
        slots = _budget(study).slots
        mine = slots.get(trial.number, trial.number)
        if sum(1 for slot in slots.values() if slot < mine) >= budget:
            trial.set_user_attr(SURPLUS, True)
            raise _Surplus(f"trial {trial.number} is beyond the budget of {budget}")
        claim(trial, storage_url)
        try:
            return runner(trial)
        except RecordWriteError as error:  # not the algorithm's failure: no result at all
            halted.append(error)
            trial.set_user_attr("record_error", str(error))
            raise

    if batch_trials > 1:
        check_batchable(config)
    while limit is None or time.monotonic() - start < limit:
        check()  # a Ctrl-C held during the last trial's storage calls
        settle_dead()
        state = _budget(study)
        if state.finished >= budget:
            break
        if batch_trials > 1:
            room = budget - state.finished - state.in_flight
            if room > 0:
                _run_batch(study, runner, min(batch_trials, room), budget, on_trial, storage_url)
                continue
        if not state.waiting and state.finished + state.in_flight >= budget:
            # a dead worker's trial becomes a WAITING retry: heartbeats (RDB), locks (journal)
            retries.fail_stale_trials(study)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # marked experimental
                fail_stale_trials(study)
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


def _run_again_cut(study, numbers: list[int]) -> None:
    """Enqueue again, with the same parameters, those of the trials ``numbers`` that were
    cut short (Ctrl-C, a record not written): they are no result."""
    from harness.study.runtime.retries import run_again

    trials = study.get_trials(deepcopy=False)
    for trial in (t for t in trials if t.number in numbers):
        cut = trial.user_attrs.get("interrupted") or trial.user_attrs.get("record_error")
        if cut and trial.state.name == "FAIL":
            run_again(study, trial, died=False)


def prepare_study(
    config: StudyConfig,
    storage_url: str,
    runs_dir: Path | None,
    allow_config_change: bool = False,
    alone: bool = False,
):
    """The study, checked before it is run: a torn record repaired, the config and the
    records' storage checked (see :mod:`harness.study.runtime.guard`), the sampler seeded for
    this process (see :mod:`harness.study.runtime.seeding`)."""
    from harness.records.store import repair_torn_tail
    from harness.study.runtime.guard import bind_records, check_config
    from harness.study.runtime.seeding import process_seed, started_trials
    from harness.util.notices import notice

    study = load_or_create_study(config, storage_url)
    records = records_path(config, runs_dir)
    repair_torn_tail(records)  # says so in one line
    changed = check_config(study, config, allow_config_change)
    if changed:
        notice(f"study {config.name}: config changed ({', '.join(changed)}), recorded in the study")
    bind_records(study, records, mask_password(storage_url))
    study.sampler = create_sampler(
        config, process_seed(config.seed, started_trials(study), alone=alone)
    )
    return study


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
    """Batch mode trains SP only, varying only the per-trial settings."""
    from harness.algorithms.sp_batched import PER_TRIAL

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


def _run_batch(study, runner, n: int, budget: int, on_trial, storage_url: str) -> None:
    import optuna
    from optuna.storages._heartbeat import get_heartbeat_thread

    from harness.study.runtime.liveness import claim

    trials = []
    for _ in range(n):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "heartbeats are for Study.optimize": ours follow
            trial = study.ask()
        slots = _budget(study).slots
        mine = slots.get(trial.number, trial.number)
        if sum(1 for slot in slots.values() if slot < mine) >= budget:
            trial.set_user_attr(SURPLUS, True)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        claim(trial, storage_url)
        trials.append(trial)
    if not trials:
        return
    with contextlib.ExitStack() as beating:  # RDB storages: a live batch's trials stay fresh
        for trial in trials:
            beating.enter_context(get_heartbeat_thread(trial._trial_id, study._storage))
        _train_and_tell(study, runner, trials, on_trial)


def _train_and_tell(study, runner, trials: list, on_trial) -> None:
    import optuna

    from harness.algorithms.params import check_batched
    from harness.algorithms.sp_batched import PER_TRIAL, subnetwork_probing_batched
    from harness.records.store import RecordWriteError
    from harness.study.objective import INTERRUPTED
    from harness.study.runtime.interrupts import interruptible

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
        except Exception:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        if on_trial is not None:
            on_trial(trial)


def _cut_short(study, trials: list, attr: str, value: Any) -> None:
    """Fail ``trials`` as no result (``attr``) and enqueue each again, same parameters."""
    import optuna

    from harness.study.runtime.retries import run_again

    for trial in trials:
        trial.set_user_attr(attr, value)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        run_again(study, study._storage.get_trial(trial._trial_id), died=False)


def wandb_dir(runs_dir: Path | None = None) -> Path:
    """Where offline W&B runs are written (``runs/wandb``; sync with ``wandb sync``)."""
    return (runs_dir or RUNS_DIR) / "wandb"


def _wandb_logger(config: StudyConfig, runs_dir: Path | None):
    if config.wandb.mode == "disabled":
        return None
    from harness.study.wandb_mirror import log_trial

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
    from harness.study.runtime.failures import storage_failures

    storage_url = storage_url or config.storage_url(runs_dir or RUNS_DIR)
    budget = n_trials or config.n_trials
    with storage_failures(storage_url):  # fail fast, in one line
        study = prepare_study(config, storage_url, runs_dir, allow_config_change)
    bar = _StudyProgress(budget, enabled=progress, study=study)
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
        from harness.study.heldout import run_heldout

        run_heldout(config, records_path(config, runs_dir))
    outcome = summarize(config, storage_url, runs_dir)
    if config.wandb.mode != "disabled":
        from harness.records.store import read_records
        from harness.study.wandb_mirror import log_study_summary

        log_study_summary(config, read_records(outcome.records_path), wandb_dir(runs_dir))
    return outcome


def _run_processes(config, storage_url, budget, timeout, runs_dir, jobs, bar) -> None:
    from harness.study.runtime.processes import run_workers
    from harness.util.notices import notice

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
    study = load_or_create_study(config, storage_url)
    finished = _budget(study).finished
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


class _StudyProgress:
    """A tqdm bar of finished trials, the best value and the current trial's epoch."""

    def __init__(self, total: int, enabled: bool, study) -> None:
        from tqdm.auto import tqdm

        self.study = study
        finished = _budget(study).finished
        self.bar = tqdm(
            total=total,
            initial=min(finished, total),
            desc=study.study_name,
            disable=not enabled,
            unit="trial",
        )

    def trial_done(self, trial) -> None:
        self.refresh_from_storage()

    def epoch(self, trial_number: int, epoch: int, faithfulness: float) -> None:
        self.bar.set_postfix_str(self._best() + f" trial {trial_number} epoch {epoch}")

    def refresh_from_storage(self) -> None:
        finished = _budget(self.study).finished
        self.bar.n = min(finished, self.bar.total)
        self.bar.set_postfix_str(self._best())

    def _best(self) -> str:
        try:
            value = self.study.best_value
        except (ValueError, RuntimeError):
            return "best -"
        return (
            f"best {value:.4f}" if isinstance(value, float) and math.isfinite(value) else "best -"
        )

    def close(self) -> None:
        self.bar.close()


def preflight(config: StudyConfig) -> None:
    """Check names against the registries before anything runs (one-line ValueErrors)."""
    from harness.algorithms import get_algorithm
    from harness.algorithms.params import check_distribution, check_point
    from harness.evaluation.run_one import check_parameters
    from harness.tasks import get_task_spec
    from harness.tasks.base import check_task_options

    specs = [get_task_spec(name) for name in config.task_names()]
    for spec in specs:
        known = (*spec.ground_truths, *spec.ground_truth_aliases)
        if config.ground_truth is not None and config.ground_truth not in known:
            hint = did_you_mean(config.ground_truth, known)
            raise ValueError(
                f"task {spec.slug!r} has no ground truth {config.ground_truth!r} "
                f"(it has: {', '.join(spec.ground_truths)}){hint}"
            )
        check_task_options(spec, config.task_options, "task_options")
    if len(specs) > 1 and config.ground_truth is None and config.objective.metric == "roc_auc":
        raise ValueError(
            f"a study over {len(specs)} tasks optimising roc_auc needs a ground_truth that "
            "every task has (e.g. resample or zero)"
        )
    algorithm = get_algorithm(config.algorithm)
    check_parameters(algorithm, config.search_space, values=False, where="search_space: ")
    check_parameters(algorithm, config.params, where="params: ")
    for name, dist in config.search_space.items():
        check_distribution(config.algorithm, name, dist)
    from harness.tasks.base import check_metric_supported

    for spec in specs:
        check_metric_supported(spec, config.params)
    for i, params in enumerate(config.enqueue):
        check_point(config.algorithm, params, config.search_space, f"enqueue[{i}]: ")
