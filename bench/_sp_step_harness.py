"""One side of ``bench/compare_autocircuit.py``: time SP steps in this project.

Runs in the project's venv and prints one JSON line. An SP step (one epoch over one batch
in ``subnetwork_probing_prune_scores``) is: per-example hard-concrete masks, one patched
forward, KL to the clean logits at the last position, backward to the mask logits, one
Adam step. Steps are timed between the per-epoch callbacks, as ``bench/sp_speed.py`` does.

    python bench/_sp_step_harness.py --n-layers 2 --n-heads 2 --steps 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import warnings

import torch
from bench_model import add_model_flags, build_model, time_harness_sp, token_pair


def parse_args(argv: list[str] | None, doc: str) -> argparse.Namespace:
    return add_model_flags(argparse.ArgumentParser(description=doc.splitlines()[0])).parse_args(
        argv
    )


def main(argv: list[str] | None = None) -> dict:
    warnings.filterwarnings("ignore")
    args = parse_args(argv, __doc__)
    if args.threads:
        torch.set_num_threads(args.threads)

    from importlib.metadata import version

    from harness.engine.batches import PromptBatch
    from harness.engine.patching import PatchableModel

    device = torch.device(args.device)
    model = build_model(args, device)
    weights_checksum = sum(p.detach().double().abs().sum().item() for p in model.parameters())
    patchable = PatchableModel.wrap(model)
    clean, corrupt = token_pair(args)
    batch = PromptBatch.create("bench", clean, corrupt, answers=clean[:, -1])
    step_times, losses = time_harness_sp(
        patchable,
        batch,
        args,
        device,
        mask_fn="hard_concrete",
        faithfulness_target="kl_div",
        ablation="resample",
        restore_clean=True,  # the corrupt run with clean values restored, as before
    )
    result = {
        "side": "harness",
        "median_step_s": round(statistics.median(step_times), 6),
        "min_step_s": round(min(step_times), 6),
        "n_edges": patchable.n_edges,
        "steps": len(step_times),
        "first_loss": round(losses[0], 6),
        "weights_checksum": round(weights_checksum, 3),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformer_lens": version("transformer-lens"),
    }
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    sys.exit(main() and 0)
