"""``harness run``: create or resume a study, run it, then its held-out runs and summary.

Everything refusable is refused before the storage or any directory is created; ``harness
worker`` shares these checks (:func:`check_trial_limits`, :func:`check_storage_and_records`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.errors import UsageError
from harness.cli.inputs import check_parallelism, load_study, writable_dir


def check_trial_limits(args: argparse.Namespace) -> None:
    """A UsageError unless ``--n-trials`` (if given) is >= 1 and ``--timeout`` > 0.

    Example:
        >>> check_trial_limits(argparse.Namespace(n_trials=0, timeout=None))
        Traceback (most recent call last):
        ...
        harness.cli.errors.UsageError: --n-trials must be >= 1, got 0
    """
    if args.n_trials is not None and args.n_trials < 1:
        raise UsageError(f"--n-trials must be >= 1, got {args.n_trials}")
    if args.timeout is not None and not args.timeout > 0:
        raise UsageError(f"--timeout must be > 0 seconds, got {args.timeout}")


def check_storage_and_records(args: argparse.Namespace, config, runs_dir: Path) -> None:
    """Refuse a bad ``--storage`` URL, an unwritable runs directory, a name a comparison or
    transfer holds, or a damaged records file (one line each) before anything is created."""
    from harness.records.check import check_records_file
    from harness.records.kinds import STUDY, check_kind
    from harness.study.driver import records_path
    from harness.study.runtime.storage_urls import check_storage_url

    check_storage_url(args.storage or config.storage_url(runs_dir))
    writable_dir(records_path(config, runs_dir).parent, "the runs directory")
    check_kind(records_path(config, runs_dir).parent, STUDY)
    check_records_file(records_path(config, runs_dir))


def _check_processes(args: argparse.Namespace, config) -> None:
    """``--jobs`` and ``--batch-trials``: both >= 1, not both > 1, and a batch SP can train."""
    check_parallelism("--jobs", args.jobs)
    if args.batch_trials < 1 or (args.batch_trials > 1 and args.jobs > 1):
        raise UsageError("--batch-trials K needs K >= 1 and --jobs 1")
    if args.batch_trials > 1:
        from harness.study.driver import check_batchable

        check_batchable(config)


def command(args: argparse.Namespace) -> int:
    """Run the study of ``args.study`` to ``--n-trials`` finished trials; print its best
    trial, held-out line, records and summary paths."""
    from harness.records.store import read_records
    from harness.reporting.study_summary import write_summary
    from harness.study.driver import RUNS_DIR, run_study
    from harness.study.heldout import heldout_line, heldout_lines

    config = load_study(args)
    runs_dir = args.runs_dir or RUNS_DIR
    check_trial_limits(args)
    _check_processes(args, config)
    check_storage_and_records(args, config, runs_dir)
    writable_dir(args.report_dir / config.name, "--report-dir")
    outcome = run_study(
        config,
        args.storage,
        args.n_trials,
        args.timeout,
        args.jobs,
        runs_dir,
        progress=not args.no_progress,
        batch_trials=args.batch_trials,
        allow_config_change=args.allow_config_change,
        heldout=not args.no_heldout,
    )
    records = read_records(outcome.records_path)
    heldout = heldout_lines(config, outcome.records_path)
    summary = write_summary(
        args.report_dir / config.name / "summary.md",
        config.name,
        records,
        config.ground_truth,
        heldout,
    )
    print(f"study {config.name}: {outcome.n_finished} finished trials in {outcome.storage}")
    if outcome.best_value is not None:
        print(f"best objective {outcome.best_value:.4f} with {outcome.best_params}")
    line = heldout_line(heldout)
    if line:
        print(line)
    print(f"records: {outcome.records_path}\nsummary: {summary}")
    return 0
