"""Which workers of a journal-file study are alive, from file locks on one machine.

Optuna's heartbeats exist for RDB storages only, so a worker killed while it runs a trial
of a journal-file study (``journal:///path``, several processes on one machine) leaves
that trial RUNNING for ever. Here each worker process holds an exclusive ``flock`` on a
file of its own for as long as it lives (the kernel releases it when the process dies,
however it dies) and tags every trial it starts with that file. Another worker that can
take the lock knows the owner is gone: it fails the trial and enqueues one retry with the
same parameters, as Optuna's heartbeat callback does for RDB storages, so the budget
logic in :mod:`harness.study` treats both alike.

The locks live beside the journal, in ``<journal>.workers/``; a trial tagged on another
host is never judged (its locks are not visible here).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import socket
import uuid
import warnings
from pathlib import Path
from typing import Any

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
    from optuna.storages import RetryHeartbeatStaleTrialCallback
    from optuna.trial import TrialState

    directory = _lock_dir(journal)
    directory.mkdir(parents=True, exist_ok=True)
    failed, dead = 0, set()
    with _exclusive(directory / "reaper.lock"):  # one reaper at a time: no double retries
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            owner = trial.system_attrs.get(OWNER_ATTR)
            if not owner or not _is_dead(owner):
                continue
            study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            frozen = study._storage.get_trial(trial._trial_id)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # marked experimental
                RetryHeartbeatStaleTrialCallback(max_retry=1)(study, frozen)
            failed += 1
            dead.add(owner.partition(":")[2])
    for path in dead:
        with contextlib.suppress(OSError):
            os.unlink(path)
    return failed


def _lock_dir(journal: Path) -> Path:
    return journal.parent / f"{journal.name}.workers"


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
