"""What the user typed, read and checked before any work: ``key=value`` assignments
(``--set``, ``--param``), directories to write to, and the study config a command names."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from harness.cli.errors import UsageError

PER_CPU = 4
"""``--jobs`` and ``--threads`` may be at most this many times the CPUs this process may
use: more only queues work on the same cores, while each worker costs about 0.4 GB and
torch crashes on absurd thread counts (100000 segfaulted)."""


def parallel_limit() -> int:
    """The most worker processes or threads the harness starts (see :data:`PER_CPU`)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return PER_CPU * cpus


def check_parallelism(flag: str, value: int) -> None:
    """A one-line UsageError unless 1 <= ``value`` <= :func:`parallel_limit`.

    Example:
        >>> check_parallelism("--jobs", 100_000)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        harness.cli.errors.UsageError: --jobs must be at most ... (4 per CPU ...), got 100000
    """
    if value < 1:
        raise UsageError(f"{flag} must be >= 1, got {value}")
    if value > parallel_limit():
        raise UsageError(
            f"{flag} must be at most {parallel_limit()} ({PER_CPU} per CPU this process may "
            f"use), got {value}"
        )


def writable_dir(path: Path, what: str) -> None:
    """A one-line UsageError naming ``what`` unless files can be written in ``path`` (or, if
    it does not exist yet, created under its nearest existing ancestor), so that a
    read-only or impossible directory is refused before any work is done. Creates nothing:
    it writes and removes a nameless probe file.

    Example:
        >>> import tempfile
        >>> writable_dir(Path(tempfile.mkdtemp()) / "new" / "dir", "--out")
        >>> a_file = Path(tempfile.mkstemp()[1])
        >>> writable_dir(a_file / "dir", "--out")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        harness.cli.errors.UsageError: cannot write to --out '.../dir': Not a directory
    """
    import tempfile

    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(20, "Not a directory", str(existing))
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise UsageError(f"cannot write to {what} {str(path)!r}: {reason}") from None


def parse_assignments(pairs: list[str] | None) -> dict[str, Any]:
    """``["lr=0.1", "mask_fn=sigmoid"]`` -> ``{"lr": 0.1, "mask_fn": "sigmoid"}`` (YAML values).

    Example:
        >>> parse_assignments(["epochs=5", "tree_optimisation=true", "ablation=zero"])
        {'epochs': 5, 'tree_optimisation': True, 'ablation': 'zero'}
    """
    from harness.configs.safe_yaml import load_yaml

    result: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"expected key=value, got {pair!r}")
        try:
            result[key.strip()] = load_yaml(value, key.strip()) if value.strip() else ""
        except ValueError as error:
            raise UsageError(f"cannot read the value of {key.strip()!r}: {error}") from None
    return result


def load_study(args: argparse.Namespace):
    """The study config ``args.study`` with ``--set`` (and ``--wandb``) applied, checked by
    the driver's preflight: a one-line ValueError or UsageError on bad input.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "s.yaml"
        >>> _ = path.write_text("name: s\\ntask: tracr-reverse\\nalgorithm: eap\\n")
        >>> args = argparse.Namespace(study=path, overrides=["n_trials=3"], wandb=None)
        >>> load_study(args).n_trials
        3
    """
    from harness.configs.study import load_config
    from harness.study.driver import preflight

    overrides = parse_assignments(getattr(args, "overrides", None))
    if getattr(args, "wandb", None):
        overrides["wandb.mode"] = args.wandb
    config = load_config(args.study, overrides)
    preflight(config)
    return config


def cell_options(args: argparse.Namespace, config) -> tuple[int, tuple[int, int] | None]:
    """``(jobs, shard)`` of a comparison or transfer: ``--jobs`` (else the config's
    ``jobs``) checked against :func:`parallel_limit`, and ``--shard I/N`` read; one line
    on bad input.

    Example:
        >>> args = argparse.Namespace(jobs=None, shard="1/4")
        >>> cell_options(args, argparse.Namespace(jobs=2))
        (2, (1, 4))
    """
    from harness.benchmark.cells import parse_shard

    jobs = config.jobs if args.jobs is None else args.jobs
    check_parallelism("--jobs" if args.jobs is not None else "jobs (in the config)", jobs)
    return jobs, parse_shard(args.shard) if args.shard else None
