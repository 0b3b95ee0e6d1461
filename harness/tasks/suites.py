"""Named suites of tasks: a config can say ``tasks: tracr-suite``.

Example:
    >>> tasks = suite_tasks("tracr-suite")
    >>> len(tasks) >= 20, tasks[:2]
    (True, ['tracr-reverse', 'tracr-proportion'])
"""

from __future__ import annotations

from harness.hints import did_you_mean
from harness.tasks.tracr_programs import SUITE

SUITES: dict[str, tuple[str, ...]] = {
    "tracr-suite": tuple(f"tracr-{program}" for program in SUITE),
}


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
