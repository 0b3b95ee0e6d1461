"""``harness compare``: methods side by side on tasks (a ``kind: compare`` config)."""

from __future__ import annotations

import argparse

from harness.cli.inputs import cell_options, parse_assignments, writable_dir


def command(args: argparse.Namespace) -> int:
    """Run the comparison (``--jobs`` processes, ``--shard`` share); write ``comparison.md``
    and ``comparison.csv`` under ``--report-dir``/NAME and print the table and every
    failed run."""
    from harness.benchmark.compare import (
        comparison_markdown,
        comparison_table,
        preflight_compare,
        run_compare,
    )
    from harness.configs.compare import load_compare_config
    from harness.study.driver import RUNS_DIR
    from harness.util.user_files import write_text_atomically

    config = load_compare_config(args.study, parse_assignments(args.overrides))
    jobs, shard = cell_options(args, config)
    preflight_compare(config)
    out = args.report_dir / config.name
    writable_dir(out, "--report-dir")
    writable_dir((args.runs_dir or RUNS_DIR) / config.name, "the runs directory")
    records = run_compare(
        config,
        args.runs_dir or RUNS_DIR,
        progress=not args.no_progress,
        jobs=jobs,
        shard=shard,
        allow_config_change=args.allow_config_change,
    )
    failed = [r for r in records if r["state"] == "FAIL"]
    table = comparison_table(records, config.bootstrap_samples)
    markdown = comparison_markdown(config.name, table)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomically(out / "comparison.md", markdown)  # shards may write at once
    write_text_atomically(out / "comparison.csv", table.to_csv(index=False))
    print(markdown)
    for r in failed:
        print(
            f"FAILED {r['algorithm']} on {r['task']} ({r['params'].get('ablation')}, seed "
            f"{r['seed']}): {r['fail_reason']}"
        )
    print(f"table: {out / 'comparison.md'} and comparison.csv")
    return 0
