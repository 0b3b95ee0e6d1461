"""Time Subnetwork Probing steps on a random model; print one JSON line.

    python bench/sp_speed.py                      # 4 layers, 8 heads, d_model 256, CPU
    python bench/sp_speed.py --device cuda --n-layers 12 --n-heads 12 --d-model 768 \\
        --d-mlp 3072 --vocab 50257 --batch 32 --seq 16

An SP step is: sample masks, one patched forward, loss, backward to the mask logits, an
Adam step. The floor is a plain forward + backward (to the weights) of the same model with
transformer_lens's per-head hooks on (attn result, split q/k/v input, mlp in) and no
patching; ``floor_without_attn_result_s`` leaves out the attn-result hook, which the
harness does not use (it computes per-head results from hook_z with one matmul).
``--count-ops`` adds the number of ATen ops each dispatches: on a GPU, where a small
model's step is mostly launch and Python overhead, that count is what the time follows.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
import warnings

import torch
from bench_model import (
    add_model_flags,
    build_model,
    count_dispatched_ops,
    time_harness_sp,
    token_pair,
)


def main(argv: list[str] | None = None) -> dict:
    warnings.filterwarnings("ignore")
    parser = add_model_flags(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument(
        "--no-floor",
        action="store_true",
        help="time SP only (the floor with the attn-result hook is slow on a CPU at batch 128)",
    )
    parser.add_argument(
        "--count-ops",
        action="store_true",
        help="also count the ATen ops one SP step and one floor step dispatch",
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from harness.engine.batches import PromptBatch
    from harness.engine.device import resolve_device
    from harness.engine.patching import PatchableModel

    device = resolve_device(args.device)
    model = build_model(args, device)
    patchable = PatchableModel.wrap(model)
    clean, corrupt = token_pair(args)
    batch = PromptBatch.create("bench", clean, corrupt, answers=clean[:, -1])

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    step_times, _ = time_harness_sp(patchable, batch, args, device)
    peak_mb = (
        torch.cuda.max_memory_allocated() / 2**20
        if device.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )

    tokens = clean.to(device)

    def floor_step() -> None:
        model.zero_grad(set_to_none=True)
        model(tokens)[:, -1].logsumexp(-1).mean().backward()

    def floor_median() -> float:
        times = []
        for i in range(args.warmup + args.steps):
            sync()
            start = time.perf_counter()
            floor_step()
            sync()
            if i >= args.warmup:
                times.append(time.perf_counter() - start)
        return statistics.median(times)

    ops = {}
    if args.count_ops:
        from harness.algorithms import subnetwork_probing_prune_scores

        def sp_ops(epochs: int) -> int:
            return count_dispatched_ops(
                lambda: subnetwork_probing_prune_scores(
                    patchable, [batch], epochs=epochs, progress=False
                )
            )

        ops = {
            "ops_per_sp_step": (sp_ops(3) - sp_ops(1)) // 2,  # set-up ops cancel out
            "ops_per_floor_step_without_attn_result": count_dispatched_ops(floor_step),
        }
    step = statistics.median(step_times)
    floors = dict.fromkeys(
        (
            "floor_median_s",
            "step_over_floor",
            "floor_without_attn_result_s",
            "step_over_floor_without_attn_result",
        )
    )
    if not args.no_floor:
        without_attn_result = floor_median()  # split q/k/v and mlp_in hooks, as SP runs
        model.set_use_attn_result(True)  # transformer_lens's per-head result hook as well
        floor = floor_median()
        if args.count_ops:
            ops["ops_per_floor_step"] = count_dispatched_ops(floor_step)
        floors = {
            "floor_median_s": round(floor, 6),
            "step_over_floor": round(step / floor, 3),
            "floor_without_attn_result_s": round(without_attn_result, 6),
            "step_over_floor_without_attn_result": round(step / without_attn_result, 3),
        }
    result = {
        "bench": "sp_speed",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch_threads": torch.get_num_threads(),
        "config": {
            k: getattr(args, k)
            for k in ("n_layers", "n_heads", "d_model", "d_mlp", "vocab", "batch", "seq")
        },
        "n_edges": patchable.n_edges,
        "steps": args.steps,
        "median_step_s": round(step, 6),
        **floors,
        "peak_memory_mb": round(peak_mb, 1),
        "peak_memory_kind": "cuda_max_allocated" if device.type == "cuda" else "process_max_rss",
        **ops,
    }
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    sys.exit(main() and 0)
