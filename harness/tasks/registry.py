"""The task registry: every task this process knows, by slug, in the order registered.

A loader describes each of its tasks with a :class:`~harness.tasks.base.TaskSpec`;
:mod:`harness.tasks.catalog` puts the built-in ones here and reads the registry
(``harness.tasks.task_specs``), and users' task files add theirs. It imports no loader.

Example:
    >>> spec = TaskSpec("doc-task", "doc task", dict, ("truth",), False, "a doc task")
    >>> register(spec).slug in registered_specs()
    True
    >>> unregister("doc-task")
    >>> "doc-task" in registered_specs()
    False
"""

from __future__ import annotations

from harness.tasks.base import TaskSpec

_REGISTRY: dict[str, TaskSpec] = {}


def register(spec: TaskSpec) -> TaskSpec:
    """Add ``spec`` under its slug (replacing a task of that slug) and return it."""
    _REGISTRY[spec.slug] = spec
    return spec


def unregister(slug: str) -> None:
    """Forget a registered task (nothing if ``slug`` is not registered)."""
    _REGISTRY.pop(slug, None)


def registered_specs() -> dict[str, TaskSpec]:
    """Every task registered so far, by slug (a copy), without registering any."""
    return dict(_REGISTRY)
