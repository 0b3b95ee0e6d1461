"""Failures of the run itself, not of a trial: storage errors, trials given up.

A storage that fails (a full disk under SQLite, a lost database) stops the run with one
line (:class:`StorageError`, exit code 1 at the command line) instead of a traceback or a
trial counted as FAILed; the trial it interrupted is failed by its heartbeat (or lock) on
resume and runs again. A trial whose worker died :data:`~harness.study.runtime.retries.MAX_ATTEMPTS`
times gets its FAIL record here, with the reason.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from harness.records.store import RecordWriteError, append_record
from harness.study.runtime.retries import DEATHS, FAILED_TRIAL, REASON, STALE, retried_numbers
from harness.study.runtime.storage_urls import mask_password
from harness.study.trials import NOT_RESULTS, study_trial_record


class StorageError(Exception):
    """The study's storage failed: one line, the run stops (exit code 1)."""


@contextlib.contextmanager
def storage_failures(storage_url: str) -> Iterator[None]:
    """Turn an exception whose cause is the storage into a one-line :class:`StorageError`.

    Example:
        >>> with storage_failures("sqlite:///x.db"):
        ...     raise OSError(28, "No space left on device")
        Traceback (most recent call last):
        ...
        harness.study.runtime.failures.StorageError: storage sqlite:///x.db failed: No space ...
    """
    try:
        yield
    except (RecordWriteError, StorageError, ValueError):  # ValueError: bad input, one line
        raise
    except Exception as error:
        cause = storage_cause(error)
        if cause is None:
            raise
        raise StorageError(f"storage {mask_password(storage_url)} failed: {cause}") from None


def storage_cause(error: BaseException) -> str | None:
    """One line saying how the storage failed, if ``error`` (or what caused it) is a
    storage or OS error; else None.

    Example:
        >>> storage_cause(ValueError("bad")) is None
        True
        >>> storage_cause(OSError(30, "Read-only file system"))
        'Read-only file system'
    """
    found: str | None = None
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        line = _describe(current)
        if line is not None and any(c.isalnum() for c in line):  # not SQLAlchemy's "()"
            found = line  # the deepest cause says most
        suppressed = current.__suppress_context__  # raise ... from None: not a cause
        current = current.__cause__ or (None if suppressed else current.__context__)
    return found


def _describe(error: BaseException) -> str | None:
    name = type(error).__module__.split(".")[0]
    if isinstance(error, OSError):
        return error.strerror or _first_line(error)
    if name == "sqlalchemy":
        original = getattr(error, "orig", None)
        return _first_line(original if original is not None else error)
    if type(error).__name__ == "StorageInternalError":
        return _first_line(error)
    return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def record_given_up(study: Any, runner: Any) -> int:
    """Write the FAIL record of each trial that ended FAILed without one (a worker that
    died too often; see :mod:`harness.study.runtime.retries`). Returns how many it wrote."""
    trials = study.get_trials(deepcopy=False)
    retried = retried_numbers(trials)
    lost = [
        t
        for t in trials
        if t.state.name == "FAIL"
        and t.number not in retried
        and not any(t.user_attrs.get(key) for key in NOT_RESULTS)
        and str(t.user_attrs.get(REASON) or "worker died").startswith("worker died")
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
