"""Benchmark tasks with official circuits: ``harness.tasks.load(name, **options)``.

Example:
    >>> from harness.tasks import task_specs
    >>> "tracr-reverse" in task_specs()
    True
"""

from __future__ import annotations

from harness.tasks.base import Task, TaskSpec
from harness.tasks.catalog import get_task_spec, load, register_tracr_program, task_specs
from harness.tasks.registry import register
from harness.tasks.suites import expand_tasks, suite_names, suite_tasks
from harness.tasks.tracr.program import TracrProgram

__all__ = [
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
