"""MIB's CPR and CMD beside the score-based AUC for every method of a comparison config.

Runs each (task, ablation, method) of a ``kind: compare`` config once (one seed, the main
run only: no sweeps) with the parameters the comparison gives it, and prints a Markdown
table: AUC (score-trapezoid) per ground truth, CPR (edges ranked by signed score), CMD
(edges ranked by |score|), wall time and peak memory. The sweep-based AUCs come from
``harness compare`` itself.

Usage::

    python bench/mib_table.py studies/compare-tracr.yaml --seed 0 > table.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args(argv)

    from harness.benchmark.compare import (
        _method_params,
        preflight_compare,
        study_params,
    )
    from harness.cli import parse_assignments
    from harness.configs.compare import load_compare_config
    from harness.evaluation.mib import mib_metrics
    from harness.evaluation.run_one import run_algorithm
    from harness.tasks import load

    config = load_compare_config(args.config, parse_assignments(args.overrides))
    preflight_compare(config)
    print(
        "| task | ablation | method | AUC score-trapezoid per ground truth | "
        "CPR (signed ranking) | CMD (absolute ranking) | m | seconds | peak MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for task_name in config.tasks:
        task = load(task_name, **config.task_options)
        for ablation in config.ablations:
            for slug in config.methods:
                studied = study_params(config, slug, task_name, args.runs_dir)
                params = _method_params(config, slug, task, ablation, studied)
                run = run_algorithm(task, slug, params, args.seed)
                mib = mib_metrics(task.patchable, task.test, run.scores, ablation)
                aucs = ", ".join(f"{gt} {auc:.3f}" for gt, auc in run.aucs.items())
                print(
                    f"| {task_name} | {ablation} | {slug} | {aucs} | {mib.cpr:.3f} | "
                    f"{mib.cmd:.3f} | {mib.measure} | {run.seconds:.2f} | "
                    f"{run.peak_memory_mb:.0f} ({run.peak_memory_kind}) |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
