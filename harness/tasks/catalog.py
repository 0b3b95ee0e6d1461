"""The tasks by name: the built-in ones, then the users', registered on first reading.

The built-in tasks are IOI, Greater-Than and Docstring (:mod:`harness.tasks.gpt2.tasks`)
and the tracr suite (:mod:`harness.tasks.tracr.tasks`); :func:`task_specs` puts them in
:mod:`harness.tasks.registry` the first time the tasks are read, then runs the users' task
files (:mod:`harness.tasks.task_files`), which register theirs after them. Nothing here
loads a model: a tracr task reads its shipped weights when it is loaded, without JAX.

Example:
    >>> get_task_spec("tracr-revers")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown task 'tracr-revers' (known: ioi, ...); did you mean 'tracr-reverse'?
"""

from __future__ import annotations

from functools import cache
from typing import Any

from harness.tasks.base import Task, TaskSpec
from harness.tasks.gpt2.tasks import TASK_SPECS as GPT2_TASK_SPECS
from harness.tasks.registry import register, registered_specs
from harness.tasks.siit.tasks import siit_task_specs
from harness.tasks.task_files import run_task_files
from harness.tasks.tracr.program import TracrProgram
from harness.tasks.tracr.tasks import register_tracr_program as register_program
from harness.tasks.tracr.tasks import suite_task_specs
from harness.util.did_you_mean import did_you_mean


@cache
def register_builtin_tasks() -> None:
    """Register the GPT-2 tasks, the tracr suite, then the trained (SIIT) tracr tasks
    shipped in the package (once per process)."""
    for spec in (*GPT2_TASK_SPECS, *suite_task_specs(), *siit_task_specs()):
        register(spec)


def task_specs() -> dict[str, TaskSpec]:
    """Every registered task, by slug: the built-in ones, then those of the users' task
    files (each file run once per process) and of :func:`register_tracr_program`.

    Example:
        >>> list(task_specs())[:4]
        ['ioi', 'greaterthan', 'docstring', 'tracr-reverse']
    """
    register_builtin_tasks()
    run_task_files()
    return registered_specs()


def get_task_spec(name: str) -> TaskSpec:
    """The registered task ``name``; a one-line ValueError (with a did-you-mean) for an
    unknown one."""
    specs = task_specs()
    if name in specs:
        return specs[name]
    hint = did_you_mean(name, specs)
    raise ValueError(f"unknown task {name!r} (known: {', '.join(specs)}){hint}")


def load(name: str, **options: Any) -> Task:
    """Load a task by name and validate its official circuits against its graph.

    Example:
        >>> load("tracr-reverse", device="cpu").patchable.n_edges
        77
    """
    task = get_task_spec(name).loader(**options)
    task.validate()
    return task


def register_tracr_program(program: TracrProgram) -> str:
    """Add a RASP program as the task ``tracr-<name>``, after the built-in tasks: see
    :func:`harness.tasks.tracr.tasks.register_tracr_program`.

    Example:
        >>> register_tracr_program("not a program")
        Traceback (most recent call last):
        ...
        ValueError: register_tracr_program takes a TracrProgram, got str
    """
    register_builtin_tasks()
    return register_program(program)
