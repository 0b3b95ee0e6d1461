"""Throughput of K SP trainings in one pass vs one by one; prints one JSON line.

python bench/batched_trials.py --task tracr-reverse --k 16 --epochs 20 --device cpu

``--count-ops`` adds the ATen ops one batched step and one single-trial step dispatch:
where launches dominate (a GPU, a small model) their ratio bounds the throughput gain.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import torch


def main(argv: list[str] | None = None) -> dict:
    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="tracr-reverse")
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--random-weights",
        action="store_true",
        help="weights-needing tasks (ioi, ...) with random weights of their shape",
    )
    parser.add_argument("--n-train", type=int, default=None, help="training prompts (GPT-2 tasks)")
    parser.add_argument(
        "--count-ops",
        action="store_true",
        help="also count the ATen ops of one batched step and of one single-trial step",
    )
    args = parser.parse_args(argv)

    from harness.algorithms import subnetwork_probing_prune_scores
    from harness.algorithms.sp_batched import subnetwork_probing_batched
    from harness.tasks import load

    options = {"device": args.device}
    if args.random_weights:
        options["random_weights"] = True
    if args.n_train is not None:
        options["n_train"] = args.n_train
    task = load(args.task, **options)
    trials = [
        {"learning_rate": 10 ** (-2 + 2 * i / max(args.k - 1, 1)), "seed": i, "epochs": args.epochs}
        for i in range(args.k)
    ]
    shared = {"tree_optimisation": True, "faithfulness_target": task.faithfulness_target}

    def sync() -> None:
        if task.patchable.device.type == "cuda":
            torch.cuda.synchronize()

    subnetwork_probing_batched(task.patchable, task.train, trials[:2], **shared)  # warm-up
    sync()
    start = time.perf_counter()
    subnetwork_probing_batched(task.patchable, task.train, trials, **shared)
    sync()
    batched = time.perf_counter() - start
    start = time.perf_counter()
    for trial in trials:
        subnetwork_probing_prune_scores(
            task.patchable, task.train, progress=False, **trial, **shared
        )
    sync()
    sequential = time.perf_counter() - start
    ops = {}
    if args.count_ops:
        from bench_model import count_dispatched_ops

        def ops_per_epoch(train, epochs: int) -> int:
            return count_dispatched_ops(lambda: train(epochs))

        def batched_run(epochs: int) -> None:
            subnetwork_probing_batched(
                task.patchable, task.train, [{**t, "epochs": epochs} for t in trials], **shared
            )

        def single_run(epochs: int) -> None:
            subnetwork_probing_prune_scores(
                task.patchable,
                task.train,
                progress=False,
                **{**trials[0], "epochs": epochs},
                **shared,
            )

        steps = len(task.train)  # one step per batch per epoch; set-up ops cancel out
        ops = {
            "ops_per_batched_step": (ops_per_epoch(batched_run, 3) - ops_per_epoch(batched_run, 2))
            // steps,
            "ops_per_single_trial_step": (
                ops_per_epoch(single_run, 3) - ops_per_epoch(single_run, 2)
            )
            // steps,
        }
    result = {
        "bench": "batched_trials",
        "task": args.task,
        "device": str(task.patchable.device),
        "n_edges": task.patchable.n_edges,
        "batch": [b.size for b in task.train],
        "k": args.k,
        "epochs": args.epochs,
        "batched_s": round(batched, 4),
        "sequential_s": round(sequential, 4),
        "throughput_ratio": round(sequential / batched, 3),
        **ops,
    }
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
