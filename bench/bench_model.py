"""The random model and batch every SP benchmark builds, in one place.

Imports only torch at module level (transformer_lens inside the functions), so both the
project's venv and auto-circuit's (transformer-lens 2.x) can use it; both build the same
weights from the same config and seed.
"""

from __future__ import annotations

import argparse

import torch


def add_model_flags(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The model, batch and timing flags the SP benchmarks share."""
    parser.add_argument("--n-layers", type=int, default=4)
    parser.add_argument("--n-heads", type=int, default=8)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--d-mlp", type=int, default=1024)
    parser.add_argument("--vocab", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=24)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (one GPU)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    return parser


def build_model(args: argparse.Namespace, device: torch.device):
    """A random HookedTransformer from the flags (seed 0, LayerNorm, GELU)."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

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
    return HookedTransformer(cfg)


def token_pair(args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded clean and corrupt prompts, ``[batch, seq]`` each, on the CPU."""
    generator = torch.Generator().manual_seed(0)
    clean = torch.randint(0, args.vocab, (args.batch, args.seq), generator=generator)
    corrupt = torch.randint(0, args.vocab, (args.batch, args.seq), generator=generator)
    return clean, corrupt


def time_harness_sp(patchable, batch, args: argparse.Namespace, device: torch.device, **sp_args):
    """Seconds of each SP step after ``args.warmup`` (one epoch over one batch is one step)
    and every epoch's loss, timed between the per-epoch callbacks (whose loss has synced)."""
    import itertools
    import time

    from harness.algorithms import subnetwork_probing_prune_scores

    stamps: list[float] = []
    losses: list[float] = []

    def on_epoch(_epoch: int, loss: float, _faithfulness: float) -> None:
        stamps.append(time.perf_counter())
        losses.append(loss)

    if device.type == "cuda":
        torch.cuda.synchronize()
    stamps.append(time.perf_counter())
    subnetwork_probing_prune_scores(
        patchable,
        [batch],
        epochs=args.warmup + args.steps,
        progress=False,
        callback=on_epoch,
        **sp_args,
    )
    return [b - a for a, b in itertools.pairwise(stamps)][args.warmup :], losses


def count_dispatched_ops(fn) -> int:
    """How many ATen operators ``fn()`` dispatches (views included): a device-independent
    measure of per-step overhead, since on a GPU most ops cost a launch whatever their size."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Counter(TorchDispatchMode):
        count = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Counter.count += 1
            return func(*args, **(kwargs or {}))

    with Counter():
        fn()
    return Counter.count
