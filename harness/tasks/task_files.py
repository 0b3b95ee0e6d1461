"""Users' task files: Python files that register tasks (``register_tracr_program``).

``harness --tasks-from FILE`` (repeatable) and the ``HARNESS_TASKS_FROM`` environment
variable (paths separated by ``:``) name them; the flag adds its files to the variable, so
the processes a sweep starts (``--jobs``, ``spawn``) run them too. Each file runs once per
process, the first time the task registry is read, after the built-in tasks exist.

Example:
    >>> task_files_from_env({"HARNESS_TASKS_FROM": "a.py:b.py"})
    ['a.py', 'b.py']
"""

from __future__ import annotations

import os
import runpy
from collections.abc import Mapping
from pathlib import Path

TASKS_FROM_ENV = "HARNESS_TASKS_FROM"
_RAN: set[str] = set()


def task_files_from_env(environ: Mapping[str, str] | None = None) -> list[str]:
    """The task files the environment names, in order (empty entries skipped)."""
    value = (os.environ if environ is None else environ).get(TASKS_FROM_ENV, "")
    return [part for part in value.split(os.pathsep) if part]


def add_task_files(paths: list[str]) -> None:
    """Check that every path is a readable Python file and add it to ``HARNESS_TASKS_FROM``
    (absolute), or raise a one-line ValueError naming the first that is not."""
    files = task_files_from_env()
    for path in paths:
        resolved = Path(path).expanduser().resolve()
        if not resolved.exists():
            raise ValueError(f"--tasks-from {path}: no such file")
        if not resolved.is_file():
            raise ValueError(f"--tasks-from {path}: not a file")
        if resolved.suffix != ".py":
            raise ValueError(f"--tasks-from {path}: not a Python file (.py)")
        if str(resolved) not in files:
            files.append(str(resolved))
    os.environ[TASKS_FROM_ENV] = os.pathsep.join(files)


def run_task_files() -> None:
    """Run every task file the environment names that this process has not run yet; a
    file that is missing or raises becomes a one-line ValueError naming it."""
    for path in task_files_from_env():
        if path in _RAN:
            continue
        _RAN.add(path)
        if not Path(path).is_file():
            raise ValueError(f"{TASKS_FROM_ENV}: task file {path} does not exist")
        try:
            runpy.run_path(path, run_name="harness_task_file")
        except SystemExit as stop:  # sys.exit() in a task file would end the harness quietly
            raise ValueError(
                f"task file {path} called sys.exit({stop.code!r}): a task file registers "
                "tasks and returns"
            ) from None
        except Exception as error:
            detail = " ".join(str(error).split())
            raise ValueError(f"task file {path}: {type(error).__name__}: {detail}") from None
