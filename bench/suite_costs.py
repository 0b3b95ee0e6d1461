"""Seconds per method and task on the tracr suite; print one JSON line.

    python bench/suite_costs.py                       # every suite task, sp/acdc/eap
    python bench/suite_costs.py --tasks tracr-hist tracr-sort --repeats 3

Each (task, method) runs ``--repeats`` times (seeds 0, 1, ...) with the settings of
``studies/compare-tracr-suite.yaml`` (SP: the reference's hyperparameters in tree mode;
ACDC: 9 thresholds; EAP), resample ablation, on the CPU with one thread; the line gives
the median per task and method, the task's edge count, and the suite totals. Use it to
size comparisons and transfers before running them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings

import torch

METHODS = {
    "sp": ("sp", {"tree_optimisation": True, "ablation": "resample"}),
    "acdc": (
        "acdc",
        {"thresholds": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0], "ablation": "resample"},
    ),
    "eap": ("eap", {"ablation": "resample"}),
}


def main(argv: list[str] | None = None) -> dict:
    from harness.evaluation.run_one import run_algorithm
    from harness.tasks import load, suite_tasks

    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="*", help="default: every task of tracr-suite")
    parser.add_argument("--methods", nargs="*", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = {}
    for name in args.tasks or suite_tasks("tracr-suite"):
        task = load(name, device="cpu")
        row: dict = {"edges": task.patchable.n_edges}
        for method in args.methods:
            slug, params = METHODS[method]
            seconds = []
            for seed in range(args.repeats):
                start = time.perf_counter()
                run_algorithm(task, slug, params, seed)
                seconds.append(time.perf_counter() - start)
            row[method] = round(statistics.median(seconds), 3)
        rows[name] = row
    totals = {m: round(sum(r[m] for r in rows.values()), 2) for m in args.methods}
    result = {"bench": "suite_costs", "threads": 1, "totals_s": totals, "tasks": rows}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
