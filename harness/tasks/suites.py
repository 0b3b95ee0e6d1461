"""Named suites of tasks: one name in a config for many tasks (``tasks: tracr-suite``).

``tracr-suite`` is every compiled tracr program of :mod:`harness.tasks.tracr.programs`
(they run anywhere, offline, with exact ground truth). ``siit-suite`` is every trained
(SIIT) model shipped in the package that meets the targets of
:mod:`harness.tasks.siit.targets`, in the tracr suite's order.

Example:
    >>> tasks = suite_tasks("tracr-suite")
    >>> len(tasks) >= 20, tasks[:2]
    (True, ['tracr-reverse', 'tracr-proportion'])
"""

from __future__ import annotations

from functools import cache

from harness.tasks.catalog import task_specs
from harness.tasks.siit.targets import missed_targets
from harness.tasks.siit.weight_files import read_siit, shipped_programs, siit_path
from harness.tasks.tracr.programs import SUITE, SUITE_NAME
from harness.util.did_you_mean import did_you_mean

SIIT_SUITE_NAME = "siit-suite"


@cache
def _suites() -> dict[str, tuple[str, ...]]:
    shipped = set(shipped_programs())
    trained = tuple(
        f"siit-{program}"
        for program in SUITE
        if program in shipped and not missed_targets(read_siit(siit_path(program)))
    )
    return {SUITE_NAME: tuple(f"tracr-{program}" for program in SUITE), SIIT_SUITE_NAME: trained}


def suite_names() -> list[str]:
    """Every named suite.

    Example:
        >>> suite_names()
        ['tracr-suite', 'siit-suite']
    """
    return list(_suites())


def suite_tasks(name: str) -> list[str]:
    """The task slugs of a named suite, in a fixed order; a one-line ValueError (with a
    did-you-mean) for an unknown name.

    Example:
        >>> suite_tasks("tracr-suit")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: unknown suite 'tracr-suit' (known: ...); did you mean 'tracr-suite'?
    """
    suites = _suites()
    if name not in suites:
        raise ValueError(
            f"unknown suite {name!r} (known: {', '.join(suites)}){did_you_mean(name, suites)}"
        )
    return list(suites[name])


def is_suite(name: str) -> bool:
    """Whether ``name`` names a suite (not a task).

    Example:
        >>> is_suite("tracr-suite"), is_suite("tracr-reverse")
        (True, False)
    """
    return name in _suites()


def expand_tasks(names: list[str]) -> list[str]:
    """Task names with every named suite replaced by its tasks, each task once, in order;
    a name that is neither is a one-line ValueError.

    Example:
        >>> expand_tasks(["tracr-proportion", "tracr-suite"])[:2]
        ['tracr-proportion', 'tracr-reverse']
    """
    specs = task_specs()
    suites = _suites()
    out: list[str] = []
    for name in names:
        if name in suites:
            members = suite_tasks(name)
            if not members:
                raise ValueError(
                    f"the suite {name!r} has no tasks here (no trained model in the package "
                    "meets the targets; harness tasks train)"
                )
        elif name in specs:
            members = [name]
        else:
            known = [*specs, *suites]
            hint = did_you_mean(name, known)
            raise ValueError(
                f"unknown task {name!r} (tasks: {', '.join(specs)}; suites: "
                f"{', '.join(suites)}){hint}"
            )
        out += [task for task in members if task not in out]
    return out
