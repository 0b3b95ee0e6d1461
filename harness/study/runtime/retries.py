"""Trials that gave no result run again, with the same parameters and seed.

A trial gives no result when its worker dies (a stale heartbeat on RDB storages, a
released lock on journal files, see :mod:`harness.study.runtime.liveness`), when Ctrl-C cuts
it short, or when its record cannot be written (a full disk). Such a trial is FAILed with the reason
in its ``fail_reason`` user attribute and a WAITING copy is enqueued: the copy carries the
parameters as fixed parameters (so a point outside the search space, e.g. an enqueued
one, runs again as it is) and Optuna's ``failed_trial`` system attribute, so the budget
in :mod:`harness.study.budget` gives it the original's slot and seed.

A worker that dies again and again is not retried for ever: after :data:`MAX_ATTEMPTS`
deaths the trial stays FAILed, with the reason, and counts as a finished trial; its FAIL
record is written by :func:`record_given_up`. Whether a trial was given up is read from its
own count of deaths (:func:`given_up`), never from its copy not being there yet: failing a
trial and enqueueing its copy are two storage calls (several through a storage proxy, slow
on a loaded machine), and a worker that looked in between would write a FAIL record for a
trial that runs again, one record more than the budget.
"""

from __future__ import annotations

import warnings
from typing import Any

from harness.records.store import append_record
from harness.study.runtime.heartbeats import heartbeat_enabled
from harness.study.trials import NOT_RESULTS, study_trial_record

MAX_ATTEMPTS = 3  # runs of one trial whose worker died, the original included
FAILED_TRIAL = "failed_trial"  # Optuna's system attribute: the original trial's number
RETRY_HISTORY = "retry_history"  # Optuna's: the numbers of the earlier attempts
DEATHS = "harness:worker_deaths"  # how many attempts of this trial lost their worker
REASON = "fail_reason"  # user attribute: why a trial failed (one line)
CAUSE = "harness:retry_cause"  # system attribute of a copy: why its predecessor gave no result
SEED = "seed"
STALE = "worker died (heartbeat stale)"
LOCK_RELEASED = "worker died (its lock was released)"


def death_reason(trial: Any, cause: str) -> str:
    """The ``fail_reason`` of a trial whose worker died, saying if it is the last try.

    Example:
        >>> from types import SimpleNamespace
        >>> death_reason(SimpleNamespace(system_attrs={}), STALE)
        'worker died (heartbeat stale); retried'
        >>> death_reason(SimpleNamespace(system_attrs={DEATHS: 2}), STALE)
        'worker died (heartbeat stale); given up after 3 attempts'
    """
    if given_up(trial):
        return f"{cause}; given up after {trial.system_attrs.get(DEATHS, 0) + 1} attempts"
    return f"{cause}; retried"


def given_up(trial: Any) -> bool:
    """Whether ``trial``, FAILed because its worker died, runs no more: it was the
    :data:`MAX_ATTEMPTS`-th death (:func:`run_again` enqueues no copy of it).

    Example:
        >>> from types import SimpleNamespace as Trial
        >>> given_up(Trial(system_attrs={})), given_up(Trial(system_attrs={DEATHS: 2}))
        (False, True)
    """
    return trial.system_attrs.get(DEATHS, 0) + 1 >= MAX_ATTEMPTS


def run_again(study: Any, trial: Any, died: bool, cause: str | None = None) -> bool:
    """Enqueue a WAITING copy of the finished (FAILed) ``trial``: same parameters, same
    seed, same budget slot. ``died``: its worker died (counted, bounded by
    :data:`MAX_ATTEMPTS`); otherwise it was cut short (Ctrl-C, a record not written) and
    always runs again. ``cause`` (one line) is kept on the copy. Returns whether a copy
    was enqueued.

    Example:
        >>> import optuna
        >>> optuna.logging.set_verbosity(optuna.logging.ERROR)
        >>> study = optuna.create_study()
        >>> trial = study.ask()
        >>> x = trial.suggest_float("x", 0, 1)
        >>> _ = study.tell(trial, state=optuna.trial.TrialState.FAIL)
        >>> run_again(study, study.trials[0], died=True)
        True
        >>> retry = study.trials[1]
        >>> retry.state.name, retry.system_attrs[FAILED_TRIAL], retry.system_attrs[DEATHS]
        ('WAITING', 0, 1)
    """
    import optuna

    if died and given_up(trial):
        return False
    deaths = trial.system_attrs.get(DEATHS, 0) + int(died)
    fixed = {**trial.system_attrs.get("fixed_params", {}), **trial.params}
    system = {
        FAILED_TRIAL: trial.system_attrs.get(FAILED_TRIAL, trial.number),
        RETRY_HISTORY: [*trial.system_attrs.get(RETRY_HISTORY, []), trial.number],
        DEATHS: deaths,
        "fixed_params": fixed,
    }
    if cause is not None:
        system[CAUSE] = cause
    user = {SEED: trial.user_attrs[SEED]} if SEED in trial.user_attrs else {}
    study.add_trial(
        optuna.trial.create_trial(
            state=optuna.trial.TrialState.WAITING, system_attrs=system, user_attrs=user
        )
    )
    return True


class RetryDeadTrial:
    """The ``heartbeat_stale_trial_callback`` of our RDB storages: :func:`run_again`.

    Optuna calls it after it failed a stale trial itself; :func:`fail_stale_trials` runs
    first in our workers and also leaves the reason on the trial.
    """

    def __call__(self, study: Any, trial: Any) -> None:
        run_again(study, trial, died=True, cause=STALE)


def fail_stale_trials(study: Any) -> int:
    """Fail the trials whose heartbeat went stale, each with its reason, and run them
    again (RDB storages with heartbeats; elsewhere a no-op). Returns how many it failed.

    Example:
        >>> import optuna
        >>> optuna.logging.set_verbosity(optuna.logging.ERROR)
        >>> fail_stale_trials(optuna.create_study())
        0
    """
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    storage = study._storage
    if not heartbeat_enabled(storage):
        return 0
    failed = 0
    for trial_id in storage._get_stale_trial_ids(study._study_id):
        try:
            trial = storage.get_trial(trial_id)
            storage.set_trial_user_attr(trial_id, REASON, death_reason(trial, STALE))
            if not storage.set_trial_state_values(trial_id, TrialState.FAIL):
                continue
        except UpdateFinishedTrialError:
            continue  # another worker failed it first: that one runs it again
        run_again(study, storage.get_trial(trial_id), died=True, cause=STALE)
        failed += 1
    return failed


def retried_numbers(trials: list[Any]) -> set[int]:
    """Numbers of the trials that some later trial runs again.

    Example:
        >>> retried_numbers([])
        set()
    """
    retried = set()
    for trial in trials:
        history = trial.system_attrs.get(RETRY_HISTORY)
        if history:
            retried.add(history[-1])
        elif FAILED_TRIAL in trial.system_attrs:
            retried.add(trial.system_attrs[FAILED_TRIAL])
    return retried


def quietly(function, *args, **kwargs):
    """Call ``function`` with Optuna's experimental warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


def failed_for_deaths(trial: Any) -> bool:
    """Whether ``trial`` is FAILed because its worker died (or with no reason at all): its
    copy runs it again, or, once :func:`given_up`, :func:`record_given_up` writes its FAIL
    record; a resume never reruns it as a trial that lost its record.

    Example:
        >>> from types import SimpleNamespace as T
        >>> failed_for_deaths(T(state=T(name="FAIL"), user_attrs={REASON: STALE + "; given up"}))
        True
        >>> failed_for_deaths(T(state=T(name="FAIL"), user_attrs={REASON: "ValueError: x"}))
        False
    """
    reason = str(trial.user_attrs.get(REASON) or "worker died")
    return trial.state.name == "FAIL" and reason.startswith("worker died")


def record_given_up(study: Any, runner: Any) -> int:
    """Write the FAIL record of each trial given up after its worker died too often
    (:func:`given_up`; see the module docstring). Returns how many it wrote."""
    trials = study.get_trials(deepcopy=False)
    retried = retried_numbers(trials)
    lost = [
        t
        for t in trials
        if failed_for_deaths(t)
        and given_up(t)
        and t.number not in retried
        and not any(t.user_attrs.get(key) for key in NOT_RESULTS)
    ]
    written = 0
    config = runner.config
    for trial in lost:
        original = trial.system_attrs.get(FAILED_TRIAL)
        slot = original if original is not None else trial.number
        deaths = trial.system_attrs.get(DEATHS, 0) + 1
        reason = trial.user_attrs.get(REASON) or f"{STALE}; given up after {deaths} attempts"
        params = {**config.params, **trial.system_attrs.get("fixed_params", {}), **trial.params}
        seed = trial.user_attrs.get("seed", config.seed + slot)
        record = study_trial_record(config, trial.number, "FAIL", params, seed, original, reason)
        written += append_record(runner.records_file, record, if_absent=True)
    return written
