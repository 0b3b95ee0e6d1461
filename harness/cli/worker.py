"""``harness worker``: join a running study (``--storage`` required) from another process."""

from __future__ import annotations

import argparse

from harness.cli.inputs import load_study
from harness.cli.run import check_storage_and_records, check_trial_limits


def command(args: argparse.Namespace) -> int:
    """Run trials of ``args.study`` in this process until the study has enough."""
    from harness.study.driver import RUNS_DIR, run_worker

    config = load_study(args)
    runs_dir = args.runs_dir or RUNS_DIR
    check_trial_limits(args)
    check_storage_and_records(args, config, runs_dir)
    run_worker(
        config,
        args.storage,
        args.n_trials,
        args.timeout,
        runs_dir,
        allow_config_change=args.allow_config_change,
    )
    print(f"worker done: study {config.name}")
    return 0
