"""Benchmark tasks with official circuits: ``harness.tasks.load(name, **options)``.

Example:
    >>> from harness.tasks import task_specs
    >>> "tracr-reverse" in task_specs()
    True
"""

from __future__ import annotations

from harness.tasks.base import Task, TaskSpec, get_task_spec, load, register, task_specs
from harness.tasks.suites import SUITES, expand_tasks, suite_names, suite_tasks


def _register_builtin() -> None:
    """Import the loader modules (each registers its tasks); idempotent."""
    import harness.tasks.gpt2 as _gpt2  # noqa: F401
    import harness.tasks.tracr as _tracr  # noqa: F401


__all__ = [
    "SUITES",
    "Task",
    "TaskSpec",
    "expand_tasks",
    "get_task_spec",
    "load",
    "register",
    "suite_names",
    "suite_tasks",
    "task_specs",
]
