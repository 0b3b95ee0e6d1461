"""A study's budget of trials, counted from its storage.

``n_trials`` counts the study's finished trials (COMPLETE, PRUNED, FAIL), across every
worker and every resume; a trial cut short by Ctrl-C or by a record not written is no
result and does not count, nor does a surplus trial (:data:`~harness.study.trials.SURPLUS`).
Each trial has a slot: its number, or, for a retry, the number of the trial it runs again
(:mod:`harness.study.runtime.retries`). Trials are admitted in the order of their slots,
so several workers never overshoot: a trial created once ``n_trials`` trials with lower
slots exist is surplus.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.study.runtime.retries import retried_numbers
from harness.study.trials import NOT_RESULTS, retried_trial_number


class Surplus(Exception):
    """A trial created after the budget was filled by trials with lower numbers."""


@dataclass(frozen=True)
class TrialCounts:
    """The study's trials as the budget sees them."""

    finished: int  # COMPLETE, PRUNED or FAIL, not superseded by a retry, not surplus
    in_flight: int  # RUNNING, not superseded
    waiting: int  # WAITING (enqueued, e.g. a retry or the paper defaults)
    slots: dict[int, int]  # trial number -> budget slot (a retry takes its original's)


def count_trials(study: Any) -> TrialCounts:
    """Count the study's trials against its budget (see the module docstring).

    Example:
        >>> import optuna
        >>> optuna.logging.set_verbosity(optuna.logging.ERROR)
        >>> study = optuna.create_study()
        >>> _ = study.ask(), study.ask()
        >>> study.enqueue_trial({})
        >>> count_trials(study)
        TrialCounts(finished=0, in_flight=2, waiting=1, slots={0: 0, 1: 1, 2: 2})
    """
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
    return TrialCounts(finished, in_flight, waiting, slots)


def beyond_budget(study: Any, number: int, budget: int) -> bool:
    """Whether the trial ``number`` comes after ``budget`` trials with lower slots (it is
    then surplus: it must not run).

    Example:
        >>> import optuna
        >>> optuna.logging.set_verbosity(optuna.logging.ERROR)
        >>> study = optuna.create_study()
        >>> _ = [study.ask() for _ in range(3)]
        >>> beyond_budget(study, 1, budget=2), beyond_budget(study, 2, budget=2)
        (False, True)
    """
    slots = count_trials(study).slots
    mine = slots.get(number, number)
    return sum(1 for slot in slots.values() if slot < mine) >= budget
