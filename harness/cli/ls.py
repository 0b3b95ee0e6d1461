"""``harness ls``: list the configs in a studies directory, the tasks, or the algorithms."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.errors import UsageError


def command(args: argparse.Namespace) -> int:
    """Print one row per study config (``studies``), task (``tasks``) or algorithm
    (``algorithms``)."""
    if args.what == "studies":
        _list_studies(args.studies_dir)
    elif args.what == "algorithms":
        _list_algorithms()
    else:
        _list_tasks()
    return 0


def _list_studies(studies_dir: Path) -> None:
    """Name, kind (or algorithm), tasks and path of every ``*.yaml`` in ``studies_dir``; an
    invalid file is a row that says why."""
    if not studies_dir.is_dir():
        raise UsageError(f"--studies-dir {str(studies_dir)!r} is not a directory")
    rows = []
    for path in sorted(studies_dir.glob("*.yaml")):
        try:
            rows.append(_study_row(path))
        except ValueError as error:
            rows.append((path.stem, "invalid", "", str(error)))
    widths = [max((len(str(row[i])) for row in rows), default=0) for i in range(3)]
    for *cells, last in rows:
        print(*(f"{cell:<{width}}" for cell, width in zip(cells, widths, strict=True)), last)


def _study_row(path: Path) -> tuple:
    """(name, kind or algorithm, tasks, path) of the config at ``path`` (ValueError if
    invalid)."""
    from harness.configs.loading import LOADERS, config_kind

    kind = config_kind(path)
    config = LOADERS[kind](path)
    if kind == "compare":
        return (config.name, "compare", _tasks_cell(config.tasks), path)
    if kind == "transfer":
        return (config.name, "transfer", _tasks_cell(config.train_tasks + config.test_tasks), path)
    return (config.name, config.algorithm, config.task_label, path)


def _tasks_cell(tasks: list[str]) -> str:
    """The tasks, comma-separated, or their count when more than three.

    Example:
        >>> _tasks_cell(["a", "b"]), _tasks_cell(["a", "b", "c", "d"])
        ('a,b', '4 tasks')
    """
    return ",".join(tasks) if len(tasks) <= 3 else f"{len(tasks)} tasks"


def _list_algorithms() -> None:
    from harness.algorithms import ALGORITHMS
    from harness.evaluation.run_one import algorithm_parameters

    for spec in ALGORITHMS.values():
        params = ", ".join(algorithm_parameters(spec))
        print(f"{spec.slug:<8} {spec.label:<24} {params}")


def _list_tasks() -> None:
    from harness.tasks import task_specs

    header = ("task", "layers", "heads", "edges", "ground truths (edges)", "runs here")
    print(f"{header[0]:<24} {header[1]:>6} {header[2]:>5} {header[3]:>6}  {header[4]:<28} "
          f"{header[5]:<13} description")  # fmt: skip
    for spec in task_specs().values():
        summary = spec.summary() if spec.summary is not None else {}
        sizes = summary.get("circuits", {})  # tracr files name acdc-zero "zero"
        counts = [
            sizes.get(name, sizes.get(name.removeprefix("acdc-"))) for name in spec.ground_truths
        ]
        truths = ", ".join(
            name if n is None else f"{name} ({n})"
            for name, n in zip(spec.ground_truths, counts, strict=True)
        )
        cells = [str(summary.get(key, "-")) for key in ("layers", "heads", "edges")]
        here = "needs weights" if spec.needs_weights else "yes"
        print(f"{spec.slug:<24} {cells[0]:>6} {cells[1]:>5} {cells[2]:>6}  {truths:<28} "
              f"{here:<13} {spec.description}")  # fmt: skip
