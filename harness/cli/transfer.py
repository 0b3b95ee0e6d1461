"""``harness transfer``: tune SP on train tasks, score it on test tasks (a ``kind: transfer``
config)."""

from __future__ import annotations

import argparse

from harness.cli.inputs import cell_options, parse_assignments, writable_dir


def command(args: argparse.Namespace) -> int:
    """Run the transfer study (``--jobs`` processes, ``--shard`` share); write
    ``transfer.md`` under ``--report-dir``/NAME and print the table and every failed run."""
    from harness.benchmark.transfer import preflight_transfer, run_transfer
    from harness.configs.transfer import load_transfer_config
    from harness.reporting.report import load_source, method_runs
    from harness.reporting.transfer_table import transfer_markdown
    from harness.study.driver import RUNS_DIR
    from harness.util.user_files import write_text_atomically

    config = load_transfer_config(args.study, parse_assignments(args.overrides))
    jobs, shard = cell_options(args, config)
    preflight_transfer(config)
    runs_dir = args.runs_dir or RUNS_DIR
    out = args.report_dir / config.name
    writable_dir(out, "--report-dir")
    writable_dir(runs_dir / config.name, "the runs directory")
    records = run_transfer(
        config,
        runs_dir,
        progress=not args.no_progress,
        jobs=jobs,
        shard=shard,
        allow_config_change=args.allow_config_change,
    )
    source = load_source(str(args.study), runs_dir)
    markdown = transfer_markdown(config, method_runs([source]), config.bootstrap_samples)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomically(out / "transfer.md", markdown)  # shards may write at once
    print(markdown)
    for r in records:
        if r["state"] == "FAIL":
            print(f"FAILED {r['method']} on {r['task']} (seed {r['seed']}): {r['fail_reason']}")
    print(f"table: {out / 'transfer.md'}; records: {runs_dir / config.name / 'transfer.jsonl'}")
    return 0
