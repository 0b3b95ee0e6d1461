"""``harness report``: tables and figures from studies' records."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.cli.inputs import writable_dir


def command(args: argparse.Namespace) -> int:
    """Write the report of ``args.studies`` (one or more) under ``--out``."""
    from harness.reporting.report import build_report, load_source
    from harness.study.driver import RUNS_DIR

    runs_dir = args.runs_dir or RUNS_DIR
    sources = [load_source(str(spec), runs_dir) for spec in args.studies]
    out = args.out or Path("reports") / "+".join(dict.fromkeys(s.name for s in sources))
    writable_dir(out, "the report directory")
    result = build_report(sources, out)
    if result.warning:
        print(f"harness: warning: {result.warning}", file=sys.stderr)
    per_figure = (
        f", {result.seconds_per_figure:.2f} s per static figure"
        if result.seconds_per_figure is not None
        else ""
    )
    print(f"report: {out / 'index.html'} and {out / 'report.md'}")
    print(f"{len(result.files)} files in {result.seconds:.1f} s{per_figure}")
    return 0
