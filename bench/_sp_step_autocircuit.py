"""One side of ``bench/compare_autocircuit.py``: time SP steps in auto-circuit 1.0.1.

Runs in ``bench/.venv-autocircuit`` (``make bench-env``: transformer-lens 2.x, since
auto-circuit does not import with 3.x) and prints one JSON line. This project's package
is not importable there, so the shared flags, model and prompts come from
``bench/bench_model.py``, which imports only torch and transformer_lens.

The model is built from the same ``HookedTransformerConfig`` (seed 0) and made patchable
with auto-circuit's own API (factorized graph, separate Q/K/V, last-position output).
One timed step does the work of one step of auto-circuit's ``subnetwork_probing_prune_scores``
(``kl_div`` target, ``hard_concrete`` masks, one batch): per-example hard-concrete masks
sampled inside its patch wrappers, one patched forward, KL to the clean logits at the last
position, the size term, ``loss.item()``, backward to the masks, one Adam step. The patch
activations are the clean run's source outputs and the input is the corrupt prompt, as in
the harness's resample mode (the values do not change the work).

``--check-sp`` also times auto-circuit's own ``subnetwork_probing_prune_scores`` (two
calls, ``warmup`` and ``warmup + steps`` epochs; the difference over ``steps``), as a check
that the loop here does the same work as theirs.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
import warnings

import torch
import torch.optim
from bench_model import add_model_flags, build_model, token_pair

# auto-circuit's SP calls ``torch.optim.adam.Adam``; on torch >= 2.13 that attribute is
# no longer the module, so bind it back before their code runs.
torch.optim.adam = sys.modules["torch.optim.adam"]


def parse_args(argv: list[str] | None, doc: str) -> argparse.Namespace:
    """The flags both sides (and the driver) share; keep in step with the other side."""
    parser = add_model_flags(argparse.ArgumentParser(description=doc.splitlines()[0]))
    parser.add_argument(
        "--check-sp", action="store_true", help="also time auto-circuit's own SP function"
    )
    return parser.parse_args(argv)


def build(args, device: torch.device):
    from auto_circuit.utils.graph_utils import patchable_model

    model = build_model(args, device)
    checksum = sum(p.detach().double().abs().sum().item() for p in model.parameters())
    model.set_use_attn_result(True)  # auto-circuit's factorized graph asserts these
    model.set_use_split_qkv_input(True)
    model.set_use_hook_mlp_in(True)
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)
    patchable = patchable_model(
        model, factorized=True, slice_output="last_seq", separate_qkv=True, device=device
    )
    return patchable, checksum


def main(argv: list[str] | None = None) -> dict:
    warnings.filterwarnings("ignore")
    args = parse_args(argv, __doc__)
    if args.threads:
        torch.set_num_threads(args.threads)

    from importlib.metadata import version

    from auto_circuit.types import AblationType
    from auto_circuit.utils.ablation_activations import src_ablations
    from auto_circuit.utils.graph_utils import (
        mask_fn_mode,
        patch_mode,
        set_all_masks,
        train_mask_mode,
    )
    from auto_circuit.utils.tensor_ops import multibatch_kl_div, sample_hard_concrete
    from torch.nn.functional import log_softmax

    device = torch.device(args.device)
    model, checksum = build(args, device)
    clean, corrupt = (tokens.to(device) for tokens in token_pair(args))

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    out_slice, n_edges = model.out_slice, model.n_edges
    with torch.inference_mode():
        clean_logits = model(clean)[out_slice]
    patch_src_outs = src_ablations(model, clean, AblationType.RESAMPLE)  # [srcs, b, s, d]
    init_val = math.log(5.0)  # hard-concrete mask ~0.9: a nearly full circuit
    regularize_lambda, learning_rate = 10.0, 0.1

    set_all_masks(model, val=init_val)
    torch.manual_seed(0)
    step_times: list[float] = []
    losses: list[float] = []
    with train_mask_mode(model) as patch_masks, mask_fn_mode(model, "hard_concrete", 0.0):
        mask_params = list(patch_masks.values())
        optim = torch.optim.Adam(mask_params, lr=learning_rate)
        for i in range(args.warmup + args.steps):
            sync()
            start = time.perf_counter()
            patch_outs = patch_src_outs.clone().detach()
            with patch_mode(model, patch_outs):
                logits = model(corrupt)[out_slice]
                faith = multibatch_kl_div(
                    log_softmax(logits, dim=-1), log_softmax(clean_logits, dim=-1)
                )
                masks = torch.cat([m.flatten() for m in mask_params])
                masks = sample_hard_concrete(masks, batch_size=1)
                loss = faith + masks.sum() / n_edges * regularize_lambda
                losses.append(loss.item())
                model.zero_grad()
                loss.backward()
                optim.step()
            sync()
            if i >= args.warmup:
                step_times.append(time.perf_counter() - start)

    result = {
        "side": "autocircuit",
        "median_step_s": round(statistics.median(step_times), 6),
        "min_step_s": round(min(step_times), 6),
        "n_edges": n_edges,
        "steps": len(step_times),
        "first_loss": round(losses[0], 6),
        "weights_checksum": round(checksum, 3),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformer_lens": version("transformer-lens"),
        "auto_circuit": version("auto-circuit"),
    }
    if args.check_sp:
        result["sp_call_step_s"] = round(time_their_sp(model, clean, corrupt, args, sync), 6)
    print(json.dumps(result), flush=True)
    return result


def time_their_sp(model, clean, corrupt, args, sync) -> float:
    """Per-step seconds of auto-circuit's own SP on one batch: the difference of two calls
    (their set-up, clean logits and ablations, cancels)."""
    from auto_circuit.data import PromptDataLoader, PromptDataset
    from auto_circuit.prune_algos.subnetwork_probing import subnetwork_probing_prune_scores

    answers = [a.reshape(1) for a in clean[:, -1].cpu()]
    wrong = [torch.zeros(0, dtype=torch.long) for _ in answers]
    dataset = PromptDataset(clean.cpu(), corrupt.cpu(), answers, wrong)
    loader = PromptDataLoader(dataset, seq_len=None, diverge_idx=0, batch_size=args.batch)

    def run(epochs: int) -> float:
        sync()
        start = time.perf_counter()
        subnetwork_probing_prune_scores(model, loader, None, epochs=epochs)
        sync()
        return time.perf_counter() - start

    run(1)  # warm
    return (run(args.warmup + args.steps) - run(args.warmup)) / args.steps


if __name__ == "__main__":
    sys.exit(main() and 0)
