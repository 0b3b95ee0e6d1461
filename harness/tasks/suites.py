"""Named suites of tasks: one name in a config for many tasks.

``tracr-suite`` is every compiled tracr task (they run anywhere, offline, with exact
ground truth).

Example:
    >>> suite_tasks("tracr-suite")[:2]
    ['tracr-reverse', 'tracr-proportion']
"""

from __future__ import annotations

from collections.abc import Callable

from harness.hints import did_you_mean
from harness.tasks.base import task_specs


def _tracr_tasks() -> list[str]:
    return [slug for slug in task_specs() if slug.startswith("tracr-")]


SUITES: dict[str, Callable[[], list[str]]] = {"tracr-suite": _tracr_tasks}


def suite_names() -> list[str]:
    """Every named suite.

    Example:
        >>> suite_names()
        ['tracr-suite']
    """
    return list(SUITES)


def suite_tasks(name: str) -> list[str]:
    """The tasks of a named suite, in registry order.

    Example:
        >>> suite_tasks("tracr-suit")
        Traceback (most recent call last):
        ...
        ValueError: unknown suite 'tracr-suit' (known: tracr-suite); did you mean 'tracr-suite'?
    """
    if name not in SUITES:
        hint = did_you_mean(name, SUITES)
        raise ValueError(f"unknown suite {name!r} (known: {', '.join(SUITES)}){hint}")
    return SUITES[name]()


def expand_tasks(names: list[str]) -> list[str]:
    """Task names with every named suite replaced by its tasks, each task once, in order;
    a name that is neither is a one-line ValueError.

    Example:
        >>> expand_tasks(["tracr-proportion", "tracr-suite"])[:2]
        ['tracr-proportion', 'tracr-reverse']
    """
    specs = task_specs()
    out: list[str] = []
    for name in names:
        if name in SUITES:
            members = suite_tasks(name)
        elif name in specs:
            members = [name]
        else:
            known = [*specs, *SUITES]
            hint = did_you_mean(name, known)
            raise ValueError(
                f"unknown task {name!r} (tasks: {', '.join(specs)}; suites: "
                f"{', '.join(SUITES)}){hint}"
            )
        out += [task for task in members if task not in out]
    return out
