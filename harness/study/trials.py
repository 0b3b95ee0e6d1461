"""What a study knows of its Optuna trials, below the objective and the study loop: the
parameters a trial suggests, the trial a retry stands in for, the trials that are no
result, and a failure's one-line reason."""

from __future__ import annotations

import traceback
import warnings
from pathlib import Path
from typing import Any

from harness.configs.study import Categorical, FloatRange, StudyConfig
from harness.records.schema import TrialRecord, git_commit, package_versions

SURPLUS = "surplus"  # user attr: a trial created after the budget was filled


def suggest(trial, config: StudyConfig) -> dict[str, Any]:
    """Searched parameters for one trial."""
    values: dict[str, Any] = {}
    for name, dist in config.search_space.items():
        if isinstance(dist, Categorical):
            values[name] = trial.suggest_categorical(name, dist.choices)
        elif isinstance(dist, FloatRange):
            values[name] = trial.suggest_float(
                name, dist.low, dist.high, log=dist.log, step=dist.step
            )
        else:
            values[name] = trial.suggest_int(
                name, dist.low, dist.high, log=dist.log, step=dist.step
            )
    return values


def study_trial_record(
    config: StudyConfig,
    number: int,
    state: str,
    params: dict[str, Any],
    seed: int,
    retry_of: int | None = None,
    fail_reason: str | None = None,
):
    """The record of one study trial, with what every record carries (versions, commit,
    the config's hash); the objective fills in its results.

    Example:
        >>> from harness.configs.study import load_config
        >>> config = load_config("studies/sp-tracr-reverse.yaml")
        >>> record = study_trial_record(config, 3, "FAIL", {}, 0, fail_reason="worker died")
        >>> record.study, record.trial, record.state, bool(record.versions)
        ('sp-tracr-reverse', 3, 'FAIL', True)
    """
    return TrialRecord(
        study=config.name,
        trial=number,
        state=state,
        algorithm=config.algorithm,
        task=config.task_label,
        ground_truth=config.ground_truth,
        params=params,
        seed=seed,
        versions=package_versions(),
        git_commit=git_commit(),
        config_hash=config.config_hash(),
        retry_of=retry_of,
        fail_reason=fail_reason,
        direction="maximize" if config.objective.maximize else "minimize",
    )


def retried_trial_number(trial) -> int | None:
    """The number of the trial a (frozen) trial retries after a dead worker, if any."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # marked experimental
        return RetryHeartbeatStaleTrialCallback.retried_trial_number(trial)


NOT_RESULTS = (SURPLUS, "interrupted", "record_error", "out_of_memory")  # no result, these


def failure_reason(error: BaseException) -> str:
    """One line: the exception's type and message, and where it was raised."""
    frames = traceback.extract_tb(error.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {message}{where}"[:500]
