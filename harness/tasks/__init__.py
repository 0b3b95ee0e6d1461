"""Benchmark tasks with official circuits: ``harness.tasks.load(name, **options)``.

Example:
    >>> from harness.tasks import task_specs
    >>> "tracr-reverse" in task_specs()
    True
"""

from __future__ import annotations

from harness.tasks.base import Task, TaskSpec, get_task_spec, load, register, task_specs
from harness.tasks.suites import SUITES, expand_tasks, suite_names, suite_tasks
from harness.tasks.tracr.compile import TracrProgram


def _register_builtin() -> None:
    """Import the loader modules (each registers its tasks), then run the users' task
    files (:mod:`harness.tasks.task_files`); idempotent."""
    import harness.tasks.gpt2.tasks as _gpt2  # noqa: F401
    import harness.tasks.tracr.tasks as _tracr  # noqa: F401
    from harness.tasks.task_files import run_task_files

    run_task_files()


def register_tracr_program(program: TracrProgram) -> str:
    """Add a RASP program as the task ``tracr-<name>``: see
    :func:`harness.tasks.tracr.tasks.register_tracr_program`.

    Example:
        >>> register_tracr_program("not a program")
        Traceback (most recent call last):
        ...
        ValueError: register_tracr_program takes a TracrProgram, got str
    """
    from harness.tasks.tracr.tasks import register_tracr_program as register_program

    return register_program(program)


__all__ = [
    "SUITES",
    "Task",
    "TaskSpec",
    "TracrProgram",
    "expand_tasks",
    "get_task_spec",
    "load",
    "register",
    "register_tracr_program",
    "suite_names",
    "suite_tasks",
    "task_specs",
]
