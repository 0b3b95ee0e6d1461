"""What ``harness status`` says about a trial beyond its numbers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.study.runtime.retries import CAUSE, retried_numbers
from harness.study.trials import NOT_RESULTS


def trial_detail(trial: Any, trials: list[Any], record: Mapping[str, Any]) -> str:
    """Parameters of a trial that ran, else why it failed and which trial runs it again.

    Example:
        >>> from types import SimpleNamespace as T
        >>> failed = T(number=0, state=T(name="FAIL"), params={"x": 1},
        ...            user_attrs={"interrupted": True}, system_attrs={})
        >>> retry = T(number=1, state=T(name="WAITING"), params={}, user_attrs={},
        ...           system_attrs={"retry_history": [0]})
        >>> trial_detail(failed, [failed, retry], {})
        'interrupted (Ctrl-C); runs again as trial 1'
    """
    successor = next(
        (t for t in trials if (t.system_attrs.get("retry_history") or [None])[-1] == trial.number),
        None,
    )
    if trial.state.name != "FAIL":
        shown = str(trial.params or trial.system_attrs.get("fixed_params", {}))
        if successor is None:
            return shown
        return (
            f"{shown}; {successor.system_attrs.get(CAUSE)}: runs again as trial {successor.number}"
        )
    cause = successor.system_attrs.get(CAUSE) if successor is not None else None
    if trial.user_attrs.get("interrupted"):
        reason = "interrupted (Ctrl-C)"
    elif cut := trial.user_attrs.get("record_error") or trial.user_attrs.get("out_of_memory"):
        reason = f"no result: {cut}"
    else:
        reason = (
            trial.user_attrs.get("fail_reason")
            or record.get("fail_reason")
            or cause
            or "no reason recorded (a worker that died?)"
        )
    if successor is not None:
        reason = reason.removesuffix("; retried") + f"; runs again as trial {successor.number}"
    return reason


def missing_records(trials: list[Any], records: Mapping[int, Any]) -> list[int]:
    """Numbers of finished trials (COMPLETE, PRUNED, or FAIL for good) with no record.

    Example:
        >>> from types import SimpleNamespace as T
        >>> done = T(number=3, state=T(name="COMPLETE"), user_attrs={}, system_attrs={})
        >>> missing_records([done], {}), missing_records([done], {3: {}})
        ([3], [])
    """
    retried = retried_numbers(trials)
    return [
        t.number
        for t in trials
        if t.state.name in ("COMPLETE", "PRUNED", "FAIL")
        and t.number not in retried
        and not any(t.user_attrs.get(key) for key in NOT_RESULTS)
        and t.number not in records
    ]
