"""Where a study lives: Optuna storages opened from a URL, and the study in one.

``sqlite:///FILE`` (the default), ``journal:///FILE`` (a journal file for several
processes on one machine), ``postgresql://...``, or ``grpc://HOST:PORT``: a storage proxy
(``harness storage-proxy``, :mod:`harness.study.proxy_server`) that holds the database
connections of many workers. RDB storages (SQLite, PostgreSQL) beat for every running
trial (``HARNESS_HEARTBEAT_SECONDS``, default 10) and a trial silent for three beats is
failed and run again (:class:`~harness.study.runtime.retries.RetryDeadTrial`), through a
proxy too (:mod:`harness.study.runtime.proxied`); journal files judge their workers by
file locks (:mod:`harness.study.runtime.liveness`).
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any

from harness.configs.study import StudyConfig
from harness.study.runtime.liveness import journal_path
from harness.study.runtime.proxied import open_proxy
from harness.study.runtime.retries import RetryDeadTrial
from harness.study.runtime.storage_urls import (
    check_storage_url,
    hide_secrets,
    mask_password,
    proxy_address,
)
from harness.study.samplers import create_pruner, create_sampler, directions

HEARTBEAT_SECONDS = int(os.environ.get("HARNESS_HEARTBEAT_SECONDS", "10"))


def open_storage(url: str):
    """An Optuna storage for a URL: ``sqlite:///...`` (default), ``journal:///path`` (a
    journal file for several processes on one machine), ``postgresql://...`` or
    ``grpc://HOST:PORT`` (a storage proxy; waits at most 10 s for it).

    Raises:
        ValueError: One line, password masked, if the storage cannot be opened.

    Example:
        >>> open_storage("sqlite:///")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: storage 'sqlite:///' is an in-memory database: the study would be lost...
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

    address = proxy_address(url)
    if address is not None:
        return open_proxy(*address, RetryDeadTrial())  # beats as often as the proxy says
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


def _sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL, else None."""
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None


def load_existing_study(config: StudyConfig, storage_url: str):
    """The study as it is in storage, creating nothing (for read-only commands).

    Raises:
        ValueError: One line, if the storage or the study in it does not exist yet.

    Example:
        >>> config = StudyConfig.model_validate({"name": "s", "task": "tracr-reverse"})
        >>> load_existing_study(config, "sqlite:///no/such/study.db")
        Traceback (most recent call last):
        ...
        ValueError: no study 's' yet: no/such/study.db does not exist
    """
    import optuna

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
    """The study named by ``config`` in the storage, created if it is not there yet: then
    it keeps the config and its hash, and enqueues the config's ``enqueue`` points.

    Example:
        >>> import tempfile
        >>> config = StudyConfig.model_validate({"name": "s", "task": "tracr-reverse"})
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     study = load_or_create_study(config, f"sqlite:///{tmp}/study.db")
        ...     study.study_name, study.user_attrs["config_hash"] == config.config_hash()
        ('s', True)
    """
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
