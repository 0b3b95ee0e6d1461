"""One side of ``bench/compare_autocircuit.py``: time SP steps in this project.

Runs in the project's venv and prints one JSON line. An SP step (one epoch over one batch
in ``subnetwork_probing_prune_scores``) is: per-example hard-concrete masks, one patched
forward, KL to the clean logits at the last position, backward to the mask logits, one
Adam step. Steps are timed between the per-epoch callbacks, as ``bench/sp_speed.py`` does.

    python bench/_sp_step_harness.py --n-layers 2 --n-heads 2 --steps 3
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
import warnings

import torch


def parse_args(argv: list[str] | None, doc: str) -> argparse.Namespace:
    """The flags both sides (and the driver) share; keep in step with the other side."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--n-layers", type=int, default=4)
    parser.add_argument("--n-heads", type=int, default=8)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--d-mlp", type=int, default=1024)
    parser.add_argument("--vocab", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=24)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    warnings.filterwarnings("ignore")
    args = parse_args(argv, __doc__)
    if args.threads:
        torch.set_num_threads(args.threads)

    from importlib.metadata import version

    from transformer_lens import HookedTransformer, HookedTransformerConfig

    from harness.algorithms import subnetwork_probing_prune_scores
    from harness.data import PromptBatch
    from harness.patching import PatchableModel

    device = torch.device(args.device)
    cfg = HookedTransformerConfig(
        n_layers=args.n_layers,
        n_heads=args.n_heads,
        d_model=args.d_model,
        d_head=args.d_model // args.n_heads,
        d_mlp=args.d_mlp,
        d_vocab=args.vocab,
        n_ctx=max(args.seq, 8),
        act_fn="gelu",
        normalization_type="LN",
        device=str(device),
        seed=0,
    )
    model = HookedTransformer(cfg)
    weights_checksum = sum(p.detach().double().abs().sum().item() for p in model.parameters())
    patchable = PatchableModel.wrap(model)
    generator = torch.Generator().manual_seed(0)
    clean = torch.randint(0, args.vocab, (args.batch, args.seq), generator=generator)
    corrupt = torch.randint(0, args.vocab, (args.batch, args.seq), generator=generator)
    batch = PromptBatch.create("bench", clean, corrupt, answers=clean[:, -1])

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    stamps: list[float] = []
    losses: list[float] = []

    def on_epoch(_epoch: int, loss: float, _faith: float) -> None:
        stamps.append(time.perf_counter())  # the epoch's .tolist() has synced
        losses.append(loss)

    sync()
    stamps.append(time.perf_counter())
    subnetwork_probing_prune_scores(
        patchable,
        [batch],
        epochs=args.warmup + args.steps,
        mask_fn="hard_concrete",
        faithfulness_target="kl_div",
        ablation="resample",
        progress=False,
        callback=on_epoch,
    )
    step_times = [b - a for a, b in itertools.pairwise(stamps)][args.warmup :]
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
