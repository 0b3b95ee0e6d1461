"""Time MIB's metrics (22 circuits: full, empty, 10 sizes × 2 rankings) on tracr tasks,
several circuits to a forward pass (the default) and one per pass; print one JSON line.

    python bench/mib_speed.py                     # tracr-reverse and tracr-sort, CPU
    python bench/mib_speed.py --tasks tracr-hist tracr-sort-freq --device cuda --repeats 9
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

import harness.engine.patching
import harness.evaluation.mib as mib
from harness.algorithms import eap_prune_scores
from harness.tasks import load


def median_seconds(task, scores, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        mib.mib_metrics(task.patchable, task.test, scores, "resample")
        if task.patchable.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["tracr-reverse", "tracr-sort"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result: dict = {"bench": "mib_speed", "device": args.device, "threads": args.threads}
    for name in args.tasks:
        task = load(name, device=args.device)
        scores = eap_prune_scores(task.patchable, task.train)
        per_pass = task.patchable.circuits_per_pass(task.test[0].clean, 22)
        together = median_seconds(task, scores, args.repeats)
        default_bytes, harness.engine.patching.PASS_BYTES = (
            harness.engine.patching.PASS_BYTES,
            1,
        )  # one a pass
        alone = median_seconds(task, scores, args.repeats)
        harness.engine.patching.PASS_BYTES = default_bytes
        result[name] = {
            "circuits_per_pass": per_pass,
            "median_s": round(together, 4),
            "median_s_one_per_pass": round(alone, 4),
            "speedup": round(alone / together, 2),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
