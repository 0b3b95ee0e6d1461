"""Finished trials whose record was lost run again, so that records = finished trials.

A worker appends a trial's record and only then tells Optuna, so a finished trial always
had its line written. A crash can still tear that line afterwards (a killed writer of the
next record, a power cut before the page reached the disk): the torn bytes are moved aside
on resume (:func:`harness.records.store.repair_torn_tail`), but the trial is finished in
the storage and would count against the budget with no result on disk. Here such a trial
is run again with the same parameters, seed and budget slot
(:func:`harness.study.runtime.retries.run_again`): the copy supersedes it, so the budget
counts the copy, and its record (``retry_of`` the lost one) takes the lost one's place.

Trials that are no result (surplus, interrupted, a record not written) have no record by
design, and a trial given up after its worker died again and again gets its FAIL record
from :func:`~harness.study.runtime.retries.record_given_up`: neither runs again here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optuna.trial import TrialState

from harness.records.store import read_records, records_locked
from harness.study.runtime.retries import RETRY_HISTORY, failed_for_deaths, run_again
from harness.study.status import missing_records

LOST = "its record was lost (a torn line?)"  # the copy's cause, shown by ``harness status``


def rerun_lost_records(study: Any, records_file: Path) -> dict[int, int]:
    """Enqueue a copy of every finished trial that has no record in ``records_file``
    (see the module docstring). Under the records' lock, so two workers starting at once
    enqueue one copy, not two. Returns ``{lost trial: its copy}``.

    Example:
        >>> import optuna, tempfile, pathlib
        >>> optuna.logging.set_verbosity(optuna.logging.ERROR)
        >>> study = optuna.create_study()
        >>> study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
        >>> records = pathlib.Path(tempfile.mkdtemp()) / "trials.jsonl"
        >>> rerun_lost_records(study, records)  # trial 0 never wrote a record
        {0: 1}
        >>> rerun_lost_records(study, records)  # its copy now stands in for it
        {}
    """
    finished = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    if not records_file.exists() and not study.get_trials(deepcopy=False, states=finished):
        return {}  # nothing can have lost its record (and the lock would make the file)
    with records_locked(records_file):
        trials = study.get_trials(deepcopy=False)  # before the records: see the docstring
        recorded = {r.get("trial"): r for r in read_records(records_file)}
        missing = set(missing_records(trials, recorded))
        lost = [t for t in trials if t.number in missing]
        rerun = [
            t.number for t in lost if not failed_for_deaths(t) and run_again(study, t, False, LOST)
        ]
    if not rerun:
        return {}
    copies = {}
    for trial in study.get_trials(deepcopy=False):
        history = trial.system_attrs.get(RETRY_HISTORY) or [None]
        if history[-1] in rerun:
            copies[history[-1]] = trial.number
    return copies
