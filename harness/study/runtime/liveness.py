"""Which workers of a journal-file study are alive, from file locks on one machine.

Optuna's heartbeats exist for RDB storages only, so a worker killed while it runs a trial
of a journal-file study (``journal:///path``, several processes on one machine) leaves
that trial RUNNING for ever. Here each worker process holds an exclusive ``flock`` on a
file of its own for as long as it lives (the kernel releases it when the process dies,
however it dies) and tags every trial it starts with that file. Another worker that can
take the lock knows the owner is gone: it fails the trial with the reason and enqueues a
retry with the same parameters (bounded, see :mod:`harness.study.runtime.retries`), as our
heartbeat callback does for RDB storages, so the budget logic in :mod:`harness.study.budget`
treats both alike.

The locks live beside the journal, in ``<journal>.workers/``; a trial tagged on another
host is never judged (its locks are not visible here).

A worker appends a trial's record and only then tells Optuna, so one killed between the
two leaves a RUNNING trial whose result is already on disk. :func:`settle_recorded_trials`
finishes such a trial from its record (any storage) before it would be failed and run a
second time.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import math
import os
import socket
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from harness.study.runtime.heartbeats import heartbeat_enabled
from harness.study.runtime.retries import LOCK_RELEASED, REASON, death_reason, run_again

SETTLED_ATTR = "settled_from_record"  # user attr of a dead worker's trial finished from its record
OWNER_ATTR = "harness:worker_lock"  # system attr: "<host>:<lock path>" of the trial's worker
_held: dict[str, tuple[int, int, str]] = {}  # journal path -> (pid, fd, lock path)


def journal_path(storage_url: str) -> Path | None:
    """The journal file of a ``journal://`` storage URL, else None.

    Example:
        >>> journal_path("journal:///tmp/s.journal"), journal_path("sqlite:///x.db")
        (PosixPath('/tmp/s.journal'), None)
    """
    if not storage_url.startswith("journal://"):
        return None
    return Path(storage_url.removeprefix("journal://"))


def claim(trial: Any, storage_url: str) -> None:
    """Tag ``trial`` with this process's lock (journal storages only; a no-op otherwise)."""
    journal = journal_path(storage_url)
    if journal is None:
        return
    owner = f"{socket.gethostname()}:{_own_lock(journal)}"
    trial.storage.set_trial_system_attr(trial._trial_id, OWNER_ATTR, owner)


def reap_dead_trials(study: Any, storage_url: str) -> int:
    """Fail the RUNNING trials whose worker died and enqueue a retry of each (once per
    trial, whichever worker gets there first). Returns how many were failed.

    Example:
        >>> import optuna
        >>> optuna.logging.set_verbosity(optuna.logging.ERROR)
        >>> reap_dead_trials(optuna.create_study(), "sqlite:///unused.db")
        0
    """
    journal = journal_path(storage_url)
    if journal is None:
        return 0
    from optuna.trial import TrialState

    failed, dead = 0, set()
    with _reaping(journal):  # one reaper at a time: no double retries
        for trial in _dead_by_lock(study):
            reason = death_reason(trial, LOCK_RELEASED)
            study._storage.set_trial_user_attr(trial._trial_id, REASON, reason)
            study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            frozen = study._storage.get_trial(trial._trial_id)
            run_again(study, frozen, died=True, cause=LOCK_RELEASED)
            failed += 1
            dead.add(trial.system_attrs[OWNER_ATTR].partition(":")[2])
    for path in dead:
        with contextlib.suppress(OSError):
            os.unlink(path)
    return failed


def settle_recorded_trials(
    study: Any, storage_url: str, read_records: Callable[[], Iterable[Mapping[str, Any]]]
) -> int:
    """Finish each dead worker's trial that already wrote its final record, with the state
    and objective of that record (the trial's parameters and seed must match it). Dead
    means a released lock (journal storages) or a stale heartbeat (RDB storages);
    ``read_records`` is called only when some trial is dead. Returns how many it finished.

    Example:
        >>> import optuna
        >>> optuna.logging.set_verbosity(optuna.logging.ERROR)
        >>> settle_recorded_trials(optuna.create_study(), "sqlite:///unused.db", list)
        0
    """
    journal = journal_path(storage_url)
    if journal is None:
        return _settle(study, _stale_by_heartbeat(study), read_records)
    with _reaping(journal):  # the reaper must not fail it meanwhile
        return _settle(study, _dead_by_lock(study), read_records)


def _stale_by_heartbeat(study: Any) -> list[Any]:
    storage = study._storage
    if not heartbeat_enabled(storage):
        return []
    return [storage.get_trial(i) for i in storage._get_stale_trial_ids(study._study_id)]


def _dead_by_lock(study: Any) -> list[Any]:
    from optuna.trial import TrialState

    return [
        trial
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if trial.system_attrs.get(OWNER_ATTR) and _is_dead(trial.system_attrs[OWNER_ATTR])
    ]


def _settle(
    study: Any, dead: list[Any], read_records: Callable[[], Iterable[Mapping[str, Any]]]
) -> int:
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    if not dead:
        return 0
    final = {"COMPLETE", "PRUNED", "FAIL"}
    by_number = {r["trial"]: r for r in read_records() if r.get("state") in final}
    storage, settled = study._storage, 0
    for trial in dead:
        record = by_number.get(trial.number)
        if record is None or not _same_trial(trial, record):
            continue
        state, values = TrialState[record["state"]], None
        if state == TrialState.COMPLETE:
            objective = record.get("objective")
            values = objective if isinstance(objective, list) else [objective]
            if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
                state, values = TrialState.FAIL, None
        try:
            storage.set_trial_user_attr(trial._trial_id, SETTLED_ATTR, True)
            if state == TrialState.FAIL and record.get("fail_reason"):
                storage.set_trial_user_attr(trial._trial_id, "fail_reason", record["fail_reason"])
            storage.set_trial_state_values(trial._trial_id, state, values)
        except UpdateFinishedTrialError:
            continue  # another worker finished it first
        settled += 1
    return settled


def _same_trial(trial: Any, record: Mapping[str, Any]) -> bool:
    """Whether ``record`` is this trial's (not a same-numbered one of an older study)."""
    params = record.get("params") or {}
    if trial.user_attrs.get("seed") != record.get("seed"):
        return False
    return all(params.get(name) == value for name, value in trial.params.items())


def _lock_dir(journal: Path) -> Path:
    return journal.parent / f"{journal.name}.workers"


def _reaping(journal: Path):
    """The lock that lets one worker at a time judge and finish dead workers' trials."""
    directory = _lock_dir(journal)
    directory.mkdir(parents=True, exist_ok=True)
    return _exclusive(directory / "reaper.lock")


def _own_lock(journal: Path) -> str:
    """This process's lock file for ``journal``, created and locked on first use."""
    key = str(journal)
    held = _held.get(key)
    if held is not None and held[0] == os.getpid():
        return held[2]
    directory = _lock_dir(journal)
    directory.mkdir(parents=True, exist_ok=True)
    path = str(directory / f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    _held[key] = (os.getpid(), fd, path)
    atexit.register(_release, path, fd)
    return path


def _release(path: str, fd: int) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
    with contextlib.suppress(OSError):
        os.close(fd)


def _is_dead(owner: str) -> bool:
    """Whether the worker behind ``"<host>:<lock path>"`` is gone (only judged on its host)."""
    host, _, path = owner.partition(":")
    if host != socket.gethostname():
        return False
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return True  # removed at its worker's exit: nobody holds it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # its worker still holds it (this process included: locks are per open)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


@contextlib.contextmanager
def _exclusive(path: Path):
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
