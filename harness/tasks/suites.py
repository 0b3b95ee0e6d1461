"""Named suites of tasks: one name in a config for many tasks (``tasks: tracr-suite``).

``tracr-suite`` is every compiled tracr program of :mod:`harness.tasks.tracr.programs`
(they run anywhere, offline, with exact ground truth).

Example:
    >>> tasks = suite_tasks("tracr-suite")
    >>> len(tasks) >= 20, tasks[:2]
    (True, ['tracr-reverse', 'tracr-proportion'])
"""

from __future__ import annotations

from harness.tasks.catalog import task_specs
from harness.tasks.tracr.programs import SUITE, SUITE_NAME
from harness.util.did_you_mean import did_you_mean

SUITES: dict[str, tuple[str, ...]] = {
    SUITE_NAME: tuple(f"tracr-{program}" for program in SUITE),
}


def suite_names() -> list[str]:
    """Every named suite.

    Example:
        >>> suite_names()
        ['tracr-suite']
    """
    return list(SUITES)


def suite_tasks(name: str) -> list[str]:
    """The task slugs of a named suite, in a fixed order; a one-line ValueError (with a
    did-you-mean) for an unknown name.

    Example:
        >>> suite_tasks("tracr-suit")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: unknown suite 'tracr-suit' (known: tracr-suite); did you mean 'tracr-suite'?
    """
    if name not in SUITES:
        raise ValueError(
            f"unknown suite {name!r} (known: {', '.join(SUITES)}){did_you_mean(name, SUITES)}"
        )
    return list(SUITES[name])


def is_suite(name: str) -> bool:
    """Whether ``name`` names a suite (not a task).

    Example:
        >>> is_suite("tracr-suite"), is_suite("tracr-reverse")
        (True, False)
    """
    return name in SUITES


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
