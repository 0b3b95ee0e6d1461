"""Optuna's trial heartbeats (RDB storages), as the study uses them outside ``optimize``.

A storage with heartbeats marks a RUNNING trial stale when its worker stops beating (see
:mod:`harness.study.runtime.retries`). ``Study.optimize`` beats for the trial it runs; the
study also needs to ask whether a storage beats at all, to beat once by hand, to beat
for the trials of a batch, which ``optimize`` does not run, and to give a storage proxy's
client heartbeats (:mod:`harness.study.runtime.proxied`). Optuna (5.1) has no public name
for the first, the third nor the last: they live in its private
``optuna.storages._heartbeat``, which only :func:`_optuna_heartbeat` below imports.
"""

from __future__ import annotations

from typing import Any


def _optuna_heartbeat():
    """Optuna's private heartbeat module (``is_heartbeat_enabled``, ``get_heartbeat_thread``,
    ``BaseHeartbeat``).

    Private: ``optuna.storages`` exports only ``fail_stale_trials`` of it, and the study
    needs the other three; this is the one place the study reaches into it.
    """
    from optuna.storages import _heartbeat

    return _heartbeat


def heartbeat_base() -> type:
    """Optuna's base class of the storages that record heartbeats (``BaseHeartbeat``):
    Optuna beats, and fails stale trials, only for storages of this class.

    Example:
        >>> from optuna.storages import InMemoryStorage
        >>> isinstance(InMemoryStorage(), heartbeat_base())
        False
    """
    return _optuna_heartbeat().BaseHeartbeat


def heartbeat_enabled(storage: Any) -> bool:
    """Whether ``storage`` records heartbeats (an RDB storage with an interval set).

    Example:
        >>> from optuna.storages import InMemoryStorage
        >>> heartbeat_enabled(InMemoryStorage())
        False
    """
    return _optuna_heartbeat().is_heartbeat_enabled(storage)


def heartbeat_thread(trial_id: int, storage: Any) -> Any:
    """A context manager that beats for the trial ``trial_id`` while it is entered (one that
    does nothing where ``storage`` has no heartbeats).

    Example:
        >>> from optuna.storages import InMemoryStorage
        >>> with heartbeat_thread(0, InMemoryStorage()):
        ...     pass
    """
    return _optuna_heartbeat().get_heartbeat_thread(trial_id, storage)


def record_heartbeat(trial: Any) -> None:
    """Beat once now, so a worker killed before its heartbeat thread's first beat still
    leaves a trial that goes stale (Optuna never fails a trial that has no heartbeat)."""
    storage = trial.study._storage
    if heartbeat_enabled(storage):
        storage.record_heartbeat(trial._trial_id)
